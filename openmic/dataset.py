"""OpenMIC-2018 specifics: 20 instruments, partially labelled.

Targets are 40 wide, as in upstream's files: the first 20 values are the labels (the release's
aggregated confidence in [0, 1]), the last 20 a mask that is 1 where the label is known. Losses and
metrics must only use masked positions (`split_labels_and_mask`).
"""

from __future__ import annotations

import os

import numpy as np
from torch.utils.data import Dataset

from helpers.data import DenseTargets, HDF5AudioDataset, make_evaluation_set, make_training_set, mix_targets_linear

NUM_INSTRUMENTS = 20
TARGET_WIDTH = 2 * NUM_INSTRUMENTS
TARGET_CODEC = DenseTargets(TARGET_WIDTH)
TRAIN_FILE = "openmic_train.csv_mp3.hdf"
TEST_FILE = "openmic_test.csv_mp3.hdf"


def hdf5_paths(base_dir: str = "audioset_hdf5s/") -> dict[str, str]:
    """The train/test file paths under `base_dir/mp3/`, keyed by their config names."""
    return {"openmic_train_hdf5": os.path.join(base_dir, "mp3", TRAIN_FILE),
            "openmic_test_hdf5": os.path.join(base_dir, "mp3", TEST_FILE)}


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

    def __init__(self, hdf5_file: str | os.PathLike, sample_rate: int = 32000, classes_num: int = TARGET_WIDTH,
                 clip_length: float | None = 10, augment: bool = False, **options):
        if classes_num != TARGET_WIDTH:
            raise ValueError(f"OpenMIC targets are {TARGET_WIDTH} wide (labels + mask), got classes_num={classes_num}")
        options.setdefault("target_decoder", TARGET_CODEC)
        super().__init__(hdf5_file, sample_rate=sample_rate, classes_num=classes_num, clip_length=clip_length,
                         augment=augment, **options)


def get_training_set(openmic_train_hdf5: str, roll: bool = True, roll_conf: dict | None = None,
                     wavmix: bool | dict = False, known_label_mixup: bool = False, **options) -> Dataset:
    """Training set with augmentation, roll and waveform mixup: of the 40-wide targets, labels and mask alike,
    as upstream, or with `known_label_mixup` mask-aware (`mix_openmic_targets`).

    options: sample_rate, clip_length, gain_augment, ir_augment, ir_path, cut_irs_offset, in_mem, seed.
    """
    return make_training_set([openmic_train_hdf5], TARGET_WIDTH, roll=roll, roll_conf=roll_conf, wavmix=wavmix,
                             target_decoder=TARGET_CODEC,
                             mix_targets=mix_openmic_targets if known_label_mixup else mix_targets_linear,
                             dataset_class=OpenMICDataset, **options)


def get_test_set(openmic_test_hdf5: str, sample_rate: int = 32000, clip_length: float | None = 10,
                 in_mem: bool = False) -> OpenMICDataset:
    """Test set; clips that fail to decode come back as None (use `collate_drop_failed`)."""
    return make_evaluation_set(openmic_test_hdf5, TARGET_WIDTH, sample_rate=sample_rate, clip_length=clip_length,
                               in_mem=in_mem, target_decoder=TARGET_CODEC, dataset_class=OpenMICDataset)
