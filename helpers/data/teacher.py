"""Teacher logits for knowledge distillation: one HDF5 file per dataset file, row i = clip i of that file.

Format (written by `helpers.logits.save_logits`, checked by `check_logits_file`):
- `logits`: (N, C) float16, the teacher's logits of each clip (rows not `written`, or `missing`, hold no data)
- `audio_name`: (N,) the source file's clip names, copied
- `written`: (N,) bool, the row has been processed (a resumed run keeps these rows)
- `missing`: (N,) bool, the clip did not decode: it has no teacher row (never zeros)
- attributes: `kind` = LOGITS_KIND, `classes` = C, the source file's identity (`source_path`, `source_size`,
  `source_rows`, `source_names_sha256`) and what produced the logits (`teacher`).
- `logits`, `written`, `missing` are contiguous and allocated when the file is created (`create_logits_file`):
  save_logits writes rows in place (`LogitsRowWriter`, several DDP ranks at once; a kill never leaves HDF5's
  structures half-written), and a reader's random row is one small read.

A DataLoader worker reads the rows it needs (`TeacherTargets`): it holds no copy of the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from typing import Callable

import h5py
import numpy as np

from helpers.data.atomic import AtomicWrite
from helpers.data.augment import mix_targets_linear
from helpers.data.hdf5 import AUDIO_NAME_KEY, HDF5FormatError, as_str

LOGITS_KIND = "passt-teacher-logits"
LOGITS_KEY, WRITTEN_KEY, MISSING_KEY = "logits", "written", "missing"
NAMES_CHUNK = 1 << 16


def logits_file_name(dataset_file: str | os.PathLike) -> str:
    """The name save_logits gives the teacher logits of `dataset_file` in an output folder."""
    return os.path.splitext(os.path.basename(os.fspath(dataset_file)))[0] + ".logits.hdf"


def names_digest(path: str | os.PathLike) -> str:
    """sha256 of the file's clip names, each as utf-8 followed by a newline, read and hashed a chunk at a time."""
    digest = hashlib.sha256()
    with h5py.File(path, "r") as file:
        names = file[AUDIO_NAME_KEY]
        for start in range(0, len(names), NAMES_CHUNK):
            chunk = names[start:start + NAMES_CHUNK].tolist()
            try:
                joined = b"\n".join(chunk)  # HDF5 gives bytes: hashed as stored (utf-8)
            except TypeError:
                joined = "\n".join(map(as_str, chunk)).encode("utf-8")
            digest.update(joined + b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class SourceIdentity:
    """What a logits file was computed from."""

    path: str
    size: int
    rows: int
    names_sha256: str

    @classmethod
    def of(cls, hdf5_file: str | os.PathLike) -> "SourceIdentity":
        path = os.path.abspath(os.fspath(hdf5_file))
        with h5py.File(path, "r") as file:
            rows = len(file[AUDIO_NAME_KEY])
        return cls(path, os.path.getsize(path), rows, names_digest(path))

    def attributes(self) -> dict:
        return {"source_path": self.path, "source_size": self.size, "source_rows": self.rows,
                "source_names_sha256": self.names_sha256}


def _first_differing_name(logits_file: h5py.File, dataset_file: str) -> tuple[int, str, str] | None:
    with h5py.File(dataset_file, "r") as source:
        theirs, ours = logits_file[AUDIO_NAME_KEY], source[AUDIO_NAME_KEY]
        for start in range(0, min(len(theirs), len(ours)), NAMES_CHUNK):
            a, b = theirs[start:start + NAMES_CHUNK], ours[start:start + NAMES_CHUNK]
            differ = np.flatnonzero(a != b)
            if len(differ):
                row = start + int(differ[0])
                return row, as_str(a[differ[0]]), as_str(b[differ[0]])
    return None


@contextlib.contextmanager
def _open_logits_file(path: str, classes: int, advice: str = ""):
    """`path` open for reading once it is a logits file of `classes` classes; else HDF5FormatError naming it
    (`advice` appended)."""
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise HDF5FormatError(f"{path!r} is not a readable HDF5 file ({error}){advice}") from error
    with file:
        if file.attrs.get("kind") != LOGITS_KIND or LOGITS_KEY not in file:
            raise HDF5FormatError(f"{path!r} is not a teacher logits file (written by save_logits){advice}")
        width = file[LOGITS_KEY].shape[1]
        if width != classes:
            raise HDF5FormatError(f"{path!r} has logits of {width} classes, the network's head has {classes}{advice}")
        yield file


def check_logits_file(path: str | os.PathLike, dataset_file: str | os.PathLike, classes: int) -> dict:
    """Check that `path` holds teacher logits for every clip of `dataset_file` with `classes` classes; raise
    HDF5FormatError naming the file and the first difference. Returns counts (`rows`, `missing`, `unwritten`)."""
    path, dataset_file = os.fspath(path), os.fspath(dataset_file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"teacher logits file {path!r} does not exist")
    with _open_logits_file(path, classes) as file:
        rows = file[LOGITS_KEY].shape[0]
        with h5py.File(dataset_file, "r") as source:
            source_rows = len(source[AUDIO_NAME_KEY])
        if rows != source_rows:
            raise HDF5FormatError(f"{path!r} has {rows} rows, {dataset_file!r} has {source_rows} clips")
        if file.attrs.get("source_names_sha256") != names_digest(dataset_file):
            difference = _first_differing_name(file, dataset_file)
            where = (f"first differing clip: row {difference[0]} is {difference[1]!r} there, {difference[2]!r} in "
                     f"the dataset" if difference else "the clip names differ")
            raise HDF5FormatError(f"{path!r} was not computed from {dataset_file!r}: {where}")
        written, missing = file[WRITTEN_KEY][:], file[MISSING_KEY][:]
    unwritten = int((~written).sum())
    if unwritten:
        raise HDF5FormatError(f"{path!r} is incomplete: {unwritten} of {rows} rows were never written "
                              "(resume save_logits with the same out=)")
    return {"rows": int(rows), "missing": int(missing.sum())}


class TeacherTargets:
    """Row -> the teacher's targets for a clip, then a has-teacher flag: softmax or sigmoid of logits / T
    (C + 1 float32 values; all zeros when the row has no teacher: missing, or never written). Opens the file
    lazily in each process and keeps only its row flags (2 bytes a clip); each call reads one logits row."""

    ACTIVATIONS = ("sigmoid", "softmax")

    def __init__(self, path: str | os.PathLike, temperature: float = 1.0, activation: str = "sigmoid"):
        if activation not in self.ACTIVATIONS:
            raise ValueError(f"activation={activation!r}; allowed: {', '.join(self.ACTIVATIONS)}")
        if not temperature > 0:
            raise ValueError(f"kd.temperature must be > 0, got {temperature}")
        self.path, self.temperature, self.activation = os.fspath(path), float(temperature), activation
        self._file, self._pid, self._has_teacher = None, None, None
        with h5py.File(self.path, "r") as file:
            self.classes = int(file[LOGITS_KEY].shape[1])

    def __getstate__(self):
        return {**self.__dict__, "_file": None, "_pid": None, "_has_teacher": None}

    def _open(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
            self._has_teacher = self._file[WRITTEN_KEY][:] & ~self._file[MISSING_KEY][:]
        return self._file

    def __call__(self, row: int) -> np.ndarray:
        file = self._open()
        if not self._has_teacher[row]:
            return np.zeros(self.classes + 1, dtype=np.float32)
        scaled = file[LOGITS_KEY][row].astype(np.float64) / self.temperature
        if self.activation == "sigmoid":
            probabilities = 1.0 / (1.0 + np.exp(-scaled))
        else:
            exponentials = np.exp(scaled - scaled.max())
            probabilities = exponentials / exponentials.sum()
        return np.append(probabilities, 1.0).astype(np.float32)


@dataclass(frozen=True)
class MixWithTeacher:
    """Waveform mixup of targets that carry the teacher's (`TeacherTargets`): the dataset's own `width`
    values mixed by `mix_base`, the teacher's targets with the same weight, and the has-teacher flag the
    smaller of the two (a mix has a teacher target only if both clips have one)."""

    mix_base: Callable[[np.ndarray, np.ndarray, float], np.ndarray]
    width: int

    def __call__(self, target_1: np.ndarray, target_2: np.ndarray, weight: float) -> np.ndarray:
        base = self.mix_base(target_1[:self.width], target_2[:self.width], weight)
        teacher = mix_targets_linear(target_1[self.width:-1], target_2[self.width:-1], weight)
        return np.concatenate([base, teacher, [min(target_1[-1], target_2[-1])]]).astype(np.float32)


# --- writing (helpers.logits.save_logits) ------------------------------------------------------------
LOGITS_DTYPE = np.dtype("<f2")


def _allocated_dataset(file: h5py.File, name: str, shape: tuple, dtype, fill: bool) -> h5py.Dataset:
    """A contiguous dataset whose file space is allocated at creation (with `fill`, zeroed; without, left
    unwritten: a sparse file), so that its rows can be written in place later without HDF5 changing the file's
    structure (`LogitsRowWriter`). Contiguous rows also make a reader's random row one small read."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC if fill else h5py.h5d.FILL_TIME_NEVER)
    return file.create_dataset(name, shape=shape, dtype=dtype, dcpl=dcpl)


def create_logits_file(path: str | os.PathLike, source: SourceIdentity, classes: int, teacher: str) -> None:
    """A logits file for `source` with no row written yet: the names copied in chunks, `logits` allocated
    (rows x classes float16), `written` and `missing` all False, the attributes. Written through `AtomicWrite`:
    `path` is never half-made, and a failure leaves no temporary."""
    with AtomicWrite(path) as temporary, h5py.File(temporary, "w") as file, \
            h5py.File(source.path, "r") as dataset:
        names = dataset[AUDIO_NAME_KEY]
        copy = file.create_dataset(AUDIO_NAME_KEY, shape=names.shape, dtype=names.dtype)
        for start in range(0, len(names), NAMES_CHUNK):
            copy[start:start + NAMES_CHUNK] = names[start:start + NAMES_CHUNK]
        _allocated_dataset(file, LOGITS_KEY, (source.rows, int(classes)), LOGITS_DTYPE, fill=False)
        for key in (WRITTEN_KEY, MISSING_KEY):
            _allocated_dataset(file, key, (source.rows,), np.bool_, fill=True)
        file.attrs.update({"kind": LOGITS_KIND, "classes": int(classes), "teacher": teacher, **source.attributes()})


def _contiguous_offset(file: h5py.File, key: str, dtype: np.dtype) -> int:
    dataset = file[key] if key in file else None
    offset = dataset.id.get_offset() if dataset is not None else None
    if (dataset is None or dataset.dtype != dtype or offset is None
            or dataset.id.get_create_plist().get_layout() != h5py.h5d.CONTIGUOUS):
        raise HDF5FormatError(f"{file.filename!r}: dataset {key!r} is not a contiguous, allocated {dtype} dataset "
                              "as save_logits creates it; it cannot be continued")
    return int(offset)


def check_resumable(path: str | os.PathLike, source: SourceIdentity, classes: int, teacher: str) -> int:
    """An existing file `path` that save_logits may continue: a logits file it created from `source` (same
    size, rows and names; the path may differ), with `classes` classes, by the same `teacher`. Otherwise
    HDF5FormatError naming the file and what differs. Returns how many rows are still to be written."""
    path = os.fspath(path)
    advice = "; save_logits continues only its own files: choose another out= or remove the file"
    with _open_logits_file(path, classes, advice) as file:
        differences = [f"{key} {file.attrs.get(key)!r} there, {value!r} now"
                       for key, value in source.attributes().items()
                       if key != "source_path" and file.attrs.get(key) != value]
        if differences:
            raise HDF5FormatError(f"{path!r} was computed from another source than {source.path!r} "
                                  f"({'; '.join(differences)}){advice}")
        if file.attrs.get("teacher") != teacher:
            raise HDF5FormatError(f"{path!r} holds logits of another teacher ({file.attrs.get('teacher')}; now "
                                  f"{teacher}){advice}")
        _contiguous_offset(file, LOGITS_KEY, LOGITS_DTYPE)
        for key in (WRITTEN_KEY, MISSING_KEY):
            _contiguous_offset(file, key, np.dtype(np.bool_))
        return int((~file[WRITTEN_KEY][:]).sum())


def unwritten_rows(path: str | os.PathLike) -> np.ndarray:
    """The rows of a logits file not written yet, in file order."""
    with h5py.File(path, "r") as file:
        return np.flatnonzero(~file[WRITTEN_KEY][:])


class LogitsRowWriter:
    """Writes rows of a file made by `create_logits_file` in place, with `os.pwrite` at the byte offsets of its
    contiguous datasets: several processes may write disjoint rows of one file at once (DDP ranks), and
    HDF5's structures are never touched after creation. Each `write` puts the rows' logits (NaN for `missing`
    rows: never zeros) and missing flags, syncs, then sets their `written` flags: a process killed at any moment
    leaves a readable file in which every written row is complete."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        with h5py.File(self.path, "r") as file:
            self.rows, self.classes = file[LOGITS_KEY].shape
            self._offsets = {LOGITS_KEY: _contiguous_offset(file, LOGITS_KEY, LOGITS_DTYPE),
                             **{key: _contiguous_offset(file, key, np.dtype(np.bool_))
                                for key in (WRITTEN_KEY, MISSING_KEY)}}
        self._row_bytes = self.classes * LOGITS_DTYPE.itemsize
        self._fd = os.open(self.path, os.O_RDWR)

    def _put(self, data: bytes, offset: int) -> None:
        view = memoryview(data)
        while len(view):
            count = os.pwrite(self._fd, view, offset)
            view, offset = view[count:], offset + count

    def write(self, rows, logits, missing) -> None:
        """Rows `rows` (file rows, any order) get `logits` (len(rows) x classes) and the `missing` flags."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        logits = np.array(logits, dtype=LOGITS_DTYPE).reshape(len(order), self.classes)[order]
        missing = np.asarray(missing, dtype=np.bool_).reshape(-1)[order]
        if len(rows) and (rows[0] < 0 or rows[-1] >= self.rows or (np.diff(rows) == 0).any()):
            raise IndexError(f"{self.path}: rows must be distinct and in [0, {self.rows})")
        logits[missing] = np.nan
        runs = np.split(np.arange(len(rows)), np.flatnonzero(np.diff(rows) != 1) + 1) if len(rows) else []
        for run in runs:
            first, last = run[0], run[-1] + 1
            self._put(logits[first:last].tobytes(), self._offsets[LOGITS_KEY] + int(rows[first]) * self._row_bytes)
            self._put(missing[first:last].view(np.uint8).tobytes(), self._offsets[MISSING_KEY] + int(rows[first]))
        os.fsync(self._fd)
        for run in runs:
            self._put(b"\x01" * len(run), self._offsets[WRITTEN_KEY] + int(rows[run[0]]))

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "LogitsRowWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
