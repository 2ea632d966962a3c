"""OpenMIC-2018 specifics: 20 instruments, partially labelled.

Targets are 40 wide, as in upstream's files: the first 20 values are the labels (the release's
aggregated confidence in [0, 1]), the last 20 a mask that is 1 where the label is known. Losses and
metrics must only use masked positions (`split_labels_and_mask`).
"""

from __future__ import annotations

import os

import numpy as np
from torch.utils.data import Dataset

from helpers.data import DataOptions, DenseTargets, HDF5AudioDataset, make_evaluation_set, make_training_set, mix_targets_linear

NUM_INSTRUMENTS = 20
TARGET_WIDTH = 2 * NUM_INSTRUMENTS
TARGET_CODEC = DenseTargets(TARGET_WIDTH)
TRAIN_FILE = "openmic_train.csv_mp3.hdf"
TEST_FILE = "openmic_test.csv_mp3.hdf"


def split_labels_and_mask(target):
    """(labels, mask) views of 40-wide targets (numpy or torch, any leading dimensions)."""
    if target.shape[-1] != TARGET_WIDTH:
        raise ValueError(f"OpenMIC targets must be {TARGET_WIDTH} wide, got shape {tuple(target.shape)}")
    return target[..., :NUM_INSTRUMENTS], target[..., NUM_INSTRUMENTS:]


def mix_openmic_targets(target_1: np.ndarray, target_2: np.ndarray, weight: float) -> np.ndarray:
    """Mix two clips' targets for waveform mixup: unknown labels count as 0, labels are mixed with
    `weight`, and a label is known in the mix if it is known in either clip."""
    labels_1, mask_1 = split_labels_and_mask(np.asarray(target_1, dtype=np.float32))
    labels_2, mask_2 = split_labels_and_mask(np.asarray(target_2, dtype=np.float32))
    known_1, known_2 = (mask_1 > 0.5).astype(np.float32), (mask_2 > 0.5).astype(np.float32)
    labels = labels_1 * known_1 * weight + labels_2 * known_2 * (1.0 - weight)
    return np.concatenate([labels, np.maximum(known_1, known_2)]).astype(np.float32)


class OpenMICDataset(HDF5AudioDataset):
    """OpenMIC clips: `(waveform (1, sample_rate * clip_length), audio_name, target float32 (40,))`."""

    def __init__(self, hdf5_file: str | os.PathLike, classes_num: int = TARGET_WIDTH,
                 options: DataOptions | None = None, **settings):
        if classes_num != TARGET_WIDTH:
            raise ValueError(f"OpenMIC targets are {TARGET_WIDTH} wide (labels + mask), got classes_num={classes_num}")
        settings.setdefault("target_decoder", TARGET_CODEC)
        super().__init__(hdf5_file, classes_num, options, **settings)


def training_set(path: str, options: DataOptions, known_label_mixup: bool = False) -> Dataset:
    """The training set, augmented as `options` say; waveform mixup mixes the 40-wide targets, labels and mask
    alike, as upstream, or with `known_label_mixup` mask-aware (`mix_openmic_targets`)."""
    return make_training_set([path], TARGET_WIDTH, options, target_decoder=TARGET_CODEC,
                             mix_targets=mix_openmic_targets if known_label_mixup else mix_targets_linear,
                             dataset_class=OpenMICDataset)


def evaluation_set(path: str, options: DataOptions) -> OpenMICDataset:
    """The test set; clips that fail to decode come back as None (use `collate_drop_failed`)."""
    return make_evaluation_set(path, TARGET_WIDTH, options, target_decoder=TARGET_CODEC, dataset_class=OpenMICDataset)
