"""Clip ids: what names a clip across a lab's HDF5 files and an official list, its split's fingerprint, and the
restriction of an evaluation set to a list of ids (the common subset two labs score on).

The id of a stored `audio_name` (or of a name in a list) is, in this order:

1. the name without its audio extension (`.mp3`, `.wav`, ...: a dot followed by a letter;
   `Y--4gqARaEJE_30.000_40.000` keeps its `.000`), `\\` written as `/`;
2. for AudioSet names, `Y<YouTube id>` optionally followed by `_<start>_<end>` seconds
   (`Y--4gqARaEJE.mp3`, `Y--4gqARaEJE_30.000_40.000.mp3`, `--4gqARaEJE_30_40.wav`): the 11-character
   YouTube id;
3. any other name: the name of step 1 (ESC-50's `1-100032-A-0`, FSD50K's `64760`, your own data's relative
   path `dogs/bark_01`: a directory is kept, so equal file names in two folders stay two clips).

Ids are handled as numpy byte-string arrays (UTF-8), one row per clip, never one Python object per clip.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re

import h5py
import numpy as np

from helpers.data.hdf5 import AUDIO_NAME_KEY, HDF5FormatError

logger = logging.getLogger(__name__)

_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,4}$")
_YOUTUBE = re.compile(r"^Y?([A-Za-z0-9_-]{11})(?:_\d+(?:\.\d+)?_\d+(?:\.\d+)?)?$")
FINGERPRINT_CHARS = 12
READ_CHUNK = 262144


def clip_id(name: str | bytes) -> str:
    """The id of one clip name (see the module's rule)."""
    name = name.decode("utf-8") if isinstance(name, bytes) else str(name)
    stem = _EXTENSION.sub("", name.replace("\\", "/").strip())
    match = _YOUTUBE.match(stem)
    return match.group(1) if match else stem


def clip_ids(names) -> np.ndarray:
    """Ids of many names (bytes or str) as a byte-string array."""
    return np.array([clip_id(name).encode("utf-8") for name in names], dtype=np.bytes_)


def file_clip_ids(hdf5_file: str | os.PathLike, rows: np.ndarray | None = None) -> np.ndarray:
    """Ids of the clips of an HDF5-mp3 file (all rows in file order, or `rows`), read in chunks."""
    path = os.fspath(hdf5_file)
    with h5py.File(path, "r") as file:
        if AUDIO_NAME_KEY not in file:
            raise HDF5FormatError(f"{path!r} lacks dataset {AUDIO_NAME_KEY!r} (the clip names)")
        names = file[AUDIO_NAME_KEY]
        parts = [clip_ids(names[start:start + READ_CHUNK]) for start in range(0, len(names), READ_CHUNK)]
    ids = np.concatenate(parts) if parts else np.array([], dtype="S1")
    return ids if rows is None else ids[np.asarray(rows, dtype=np.int64)]


def fingerprint(ids: np.ndarray) -> str:
    """A short digest of the sorted ids (repeats included): equal for the same clips in any order."""
    return sorted_fingerprint(np.sort(np.asarray(ids, dtype=np.bytes_)))


def sorted_fingerprint(ordered: np.ndarray) -> str:
    """`fingerprint` of ids that are sorted already (no copy)."""
    digest = hashlib.sha256()
    for start in range(0, len(ordered), READ_CHUNK):
        digest.update(b"".join(clip + b"\n" for clip in ordered[start:start + READ_CHUNK].tolist()))
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def read_id_list(path: str | os.PathLike) -> np.ndarray:
    """The ids of a list file: one clip id or name per line (spaces belong to it); blank lines and `#`
    comments are skipped.

    Raises FileNotFoundError, or ValueError naming the file and line of a line with a comma or tab (a CSV or
    TSV row rather than an id).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"id list {path!r} does not exist")
    ids = []
    with open(path, encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            if "," in text or "\t" in text:
                raise ValueError(f"id list {path!r} line {line_number}: expected one clip id, found {text!r}")
            ids.append(clip_id(text).encode("utf-8"))
    return np.array(ids, dtype=np.bytes_)


def subset_rows(present: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions in `present` whose id is in `wanted` (every repeat), the distinct wanted ids not present)."""
    present, wanted = np.asarray(present, dtype=np.bytes_), np.unique(np.asarray(wanted, dtype=np.bytes_))
    positions = np.flatnonzero(np.isin(present, wanted))
    missing = wanted[~np.isin(wanted, present)]
    return positions, missing
