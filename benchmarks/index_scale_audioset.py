"""An index-scale full AudioSet in upstream's HDF5 layout: the balanced (20,550 rows), unbalanced (2,021,239)
and eval (20,371) files, `audio_name` S20, `mp3` variable-length uint8, `target` np.packbits of 527 classes,
contiguous datasets; every row holds the same 0.1 s real mp3 (the index is full size, the audio is not) and
AudioSet-like labels (1-4 per clip, long-tailed; every class in the balanced file). Used by
benchmarks/scale.py and benchmarks/report_scale.py."""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import h5py
import numpy as np

from benchmarks.process_memory import mib

FULL_BALANCED, FULL_UNBALANCED, FULL_EVAL = 20550, 2021239, 20371
CLASSES = 527
EPOCH_LEN = 100_000  # the AudioSet config's clips per epoch


def epoch_len(clips: int) -> int:
    return min(EPOCH_LEN, clips // 2)
FILES = {"balanced": "balanced_train_segments_mp3.hdf", "unbalanced": "unbalanced_train_segments_mp3.hdf",
         "eval": "eval_segments_mp3.hdf"}
WRITE_CHUNK = 100_000
# a long tail like AudioSet's (Speech and Music in a large share of clips, hundreds of rare classes)
CLASS_PROBABILITIES = 1.0 / (np.arange(CLASSES) + 10.0)
CLASS_PROBABILITIES /= CLASS_PROBABILITIES.sum()


def short_mp3() -> np.ndarray:
    """The bytes of one real 0.1 s mp3 (a 440 Hz tone at 32 kHz), reused for every row."""
    from helpers.data import encode_mp3

    t = np.arange(3200) / 32000
    return np.frombuffer(encode_mp3((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 32000), np.uint8)


def packed_labels(start: int, count: int, rng: np.random.Generator, balanced: bool) -> np.ndarray:
    """AudioSet-like multi-hot labels for rows start.., packed as upstream stores them (66 bytes a row)."""
    labels = np.zeros((count, CLASSES), dtype=bool)
    rows = np.arange(count)
    first = (start + rows) % CLASSES if balanced else rng.choice(CLASSES, count, p=CLASS_PROBABILITIES)
    labels[rows, first] = True
    extra = rng.binomial(3, 0.4, count)
    for k in range(3):
        more = rows[extra > k]
        labels[more, rng.choice(CLASSES, len(more), p=CLASS_PROBABILITIES)] = True
    return np.packbits(labels, axis=1)


def write_upstream_layout(path: str, rows: int, mp3: np.ndarray, seed: int, balanced: bool) -> None:
    """One file in upstream's layout, written in chunks (through `AtomicWrite`: it appears when complete)."""
    from helpers.data.atomic import AtomicWrite

    rng = np.random.default_rng(seed)
    vlen = h5py.vlen_dtype(np.uint8)
    with AtomicWrite(path) as temporary, h5py.File(temporary, "w") as file:
        names = file.create_dataset("audio_name", shape=(rows,), dtype="S20")
        audio = file.create_dataset("mp3", shape=(rows,), dtype=vlen)
        target = file.create_dataset("target", shape=(rows, (CLASSES + 7) // 8), dtype=np.uint8)
        for start in range(0, rows, WRITE_CHUNK):
            count = min(WRITE_CHUNK, rows - start)
            names[start:start + count] = np.array([f"Y{index:011d}.mp3".encode() for index in range(start, start + count)],
                                                  dtype="S20")
            clips = np.empty(count, dtype=vlen)
            for row in range(count):
                clips[row] = mp3
            audio.write_direct(clips, dest_sel=np.s_[start:start + count])
            target[start:start + count] = packed_labels(start, count, rng, balanced)


def make_index_scale_audioset(directory: str, clips: int, eval_clips: int) -> dict[str, str]:
    """The three files under `directory`/mp3/ (kept when they already have the asked-for row counts)."""
    balanced = max(1, round(clips * FULL_BALANCED / (FULL_BALANCED + FULL_UNBALANCED)))
    rows = {"balanced": balanced, "unbalanced": clips - balanced, "eval": eval_clips}
    os.makedirs(os.path.join(directory, "mp3"), exist_ok=True)
    paths = {key: os.path.join(directory, "mp3", name) for key, name in FILES.items()}
    mp3 = short_mp3()
    for number, (key, path) in enumerate(paths.items()):
        if os.path.exists(path):
            with h5py.File(path, "r") as file:
                if file["target"].shape[0] == rows[key]:
                    continue
        started = time.perf_counter()
        write_upstream_layout(path, rows[key], mp3, seed=number, balanced=key == "balanced")
        print(f"wrote {path}: {rows[key]:,} rows, {mib(os.path.getsize(path)):,.0f} MiB in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    return paths



def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """The generated dataset's options, shared by the benchmarks that use it: --clips, --eval-clips, --dir."""
    parser.add_argument("--clips", type=int, default=FULL_BALANCED + FULL_UNBALANCED, help="training clips")
    parser.add_argument("--eval-clips", type=int, default=FULL_EVAL)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "passt_scale"),
                        help="where the files go (shared by the scale benchmarks, kept for the next run)")
