"""ESC-50 specifics: 2000 clips of 5 s, 50 classes, 5 folds (train on four, test on `fold`).

All clips live in one HDF5-mp3 file with an extra dataset `fold` (1..5 per clip). Targets are one-hot
float vectors of 50 classes (use them with cross-entropy on probabilities, or argmax for the index).
"""

from __future__ import annotations

import os

import h5py
import numpy as np
from torch.utils.data import Dataset

from helpers.data import DataOptions, HDF5AudioDataset, HDF5FormatError, make_evaluation_set, make_training_set, validate_hdf5

NUM_CLASSES = 50
NUM_FOLDS = 5
FOLD_KEY = "fold"
DATA_FILE = "esc50_mp3.hdf"
CLIP_SECONDS = 5


def read_folds(esc50_hdf5: str | os.PathLike) -> np.ndarray:
    """The fold number of every clip; errors name the file when the `fold` dataset is missing or bad."""
    validate_hdf5(esc50_hdf5, NUM_CLASSES)
    with h5py.File(esc50_hdf5, "r") as file:
        if FOLD_KEY not in file:
            raise HDF5FormatError(f"{os.fspath(esc50_hdf5)!r} lacks dataset {FOLD_KEY!r} (fold of each clip)")
        folds = file[FOLD_KEY][:].astype(np.int64)
        clips = file["target"].shape[0]
    if folds.shape != (clips,) or not np.isin(folds, np.arange(1, NUM_FOLDS + 1)).all():
        raise HDF5FormatError(f"{os.fspath(esc50_hdf5)!r}: dataset {FOLD_KEY!r} must hold one value in "
                              f"1..{NUM_FOLDS} per clip ({clips} clips), found shape {folds.shape} "
                              f"values {np.unique(folds)[:10]}")
    return folds


def fold_indices(esc50_hdf5: str | os.PathLike, fold: int, training: bool) -> np.ndarray:
    """Rows of the training folds (all but `fold`) or of the test fold `fold`."""
    if fold not in range(1, NUM_FOLDS + 1):
        raise ValueError(f"ESC-50 fold must be 1..{NUM_FOLDS}, got {fold}")
    folds = read_folds(esc50_hdf5)
    return np.flatnonzero(folds != fold if training else folds == fold)


def training_set(path: str, fold: int, options: DataOptions) -> Dataset:
    """The four training folds (all but `fold`), augmented as `options` say."""
    return make_training_set([path], NUM_CLASSES, options, indices=fold_indices(path, fold, training=True))


def evaluation_set(path: str, fold: int | None, options: DataOptions) -> HDF5AudioDataset:
    """The test fold (`fold=None`: every clip, in file order); clips that fail to decode come back as None
    (use `collate_drop_failed`)."""
    indices = None if fold is None else fold_indices(path, fold, training=False)
    return make_evaluation_set(path, NUM_CLASSES, options, indices=indices)
