"""AudioSet specifics: file names, 527 classes, and the factories the experiment layer calls.

Files live in `base_dir + "mp3/"`: balanced_train_segments_mp3.hdf, unbalanced_train_segments_mp3.hdf and
eval_segments_mp3.hdf (see audioset/README.md for preparing them, or the demo generator).
"""

from __future__ import annotations

import os

import numpy as np
from torch.utils.data import Dataset

from helpers.data import (DistributedWeightedSampler, HDF5AudioDataset, make_evaluation_set, make_training_set,
                          preload_files, shared_class_balanced_weights)

NUM_CLASSES = 527
BALANCED_TRAIN_FILE = "balanced_train_segments_mp3.hdf"
UNBALANCED_TRAIN_FILE = "unbalanced_train_segments_mp3.hdf"
EVAL_FILE = "eval_segments_mp3.hdf"


def hdf5_paths(base_dir: str = "audioset_hdf5s/") -> dict[str, str]:
    """The three file paths under `base_dir/mp3/`, keyed by their config names."""
    return {
        "balanced_train_hdf5": os.path.join(base_dir, "mp3", BALANCED_TRAIN_FILE),
        "unbalanced_train_hdf5": os.path.join(base_dir, "mp3", UNBALANCED_TRAIN_FILE),
        "eval_hdf5": os.path.join(base_dir, "mp3", EVAL_FILE),
    }


class AudioSetDataset(HDF5AudioDataset):
    """AudioSet clips: `(waveform float32 (1, sample_rate * clip_length), audio_name, target float32 (527,))`.

    Extra keyword options (training, in_mem, gain_augment, ir_augment, ir_path, seed, ...) go to
    `HDF5AudioDataset`.
    """

    def __init__(self, hdf5_file: str | os.PathLike, sample_rate: int = 32000, classes_num: int = NUM_CLASSES,
                 clip_length: float | None = 10, augment: bool = False, **options):
        super().__init__(hdf5_file, sample_rate=sample_rate, classes_num=classes_num, clip_length=clip_length,
                         augment=augment, **options)


def get_base_training_set(balanced_train_hdf5: str, classes_num: int = NUM_CLASSES, **options) -> Dataset:
    """The balanced training set with per-clip augmentation only (no roll, no mixup)."""
    return make_training_set([balanced_train_hdf5], classes_num, dataset_class=AudioSetDataset,
                             **{**options, "roll": False, "wavmix": False})


def get_training_set(balanced_train_hdf5: str, classes_num: int = NUM_CLASSES, roll: bool = True,
                     roll_conf: dict | None = None, wavmix: bool | dict = False, **options) -> Dataset:
    """The balanced training set with augmentation, roll (`roll_conf`) and waveform mixup (`wavmix`).

    options: sample_rate, clip_length, gain_augment (dB, default 7), ir_augment, ir_path, in_mem, seed.
    """
    return make_training_set([balanced_train_hdf5], classes_num, roll=roll, roll_conf=roll_conf, wavmix=wavmix,
                             dataset_class=AudioSetDataset, **options)


def get_full_training_set(balanced_train_hdf5: str, unbalanced_train_hdf5: str, classes_num: int = NUM_CLASSES,
                          roll: bool = True, roll_conf: dict | None = None, wavmix: bool | dict = False,
                          **options) -> Dataset:
    """Balanced + unbalanced (in this order, matching `get_ft_cls_balanced_sample_weights`), augmented."""
    return make_training_set([balanced_train_hdf5, unbalanced_train_hdf5], classes_num, roll=roll,
                             roll_conf=roll_conf, wavmix=wavmix, dataset_class=AudioSetDataset, **options)


def get_test_set(eval_hdf5: str, classes_num: int = NUM_CLASSES, sample_rate: int = 32000,
                 clip_length: float | None = 10, in_mem: bool = False) -> AudioSetDataset:
    """The evaluation set; clips that fail to decode come back as None (use `collate_drop_failed`)."""
    return make_evaluation_set(eval_hdf5, classes_num, sample_rate=sample_rate, clip_length=clip_length,
                               in_mem=in_mem, dataset_class=AudioSetDataset)


def get_ft_cls_balanced_sample_weights(balanced_train_hdf5: str, unbalanced_train_hdf5: str,
                                       classes_num: int = NUM_CLASSES, sample_weight_offset: float = 100,
                                       sample_weight_sum: bool = True) -> np.ndarray:
    """Class-balanced weights (1000 / (class count + offset), summed or max over a clip's labels) for
    every clip of the full training set, balanced first; computed once per run under DDP (see
    `helpers.data.shared_class_balanced_weights`)."""
    return shared_class_balanced_weights([balanced_train_hdf5, unbalanced_train_hdf5], classes_num,
                                         sample_weight_offset, sample_weight_sum)


def get_ft_weighted_sampler(samples_weights: np.ndarray, epoch_len: int = 100000, sampler_replace: bool = False,
                            num_replicas: int | None = None, rank: int | None = None,
                            seed: int = 0) -> DistributedWeightedSampler:
    """`epoch_len` clips per epoch drawn by weight, sharded disjointly over DDP ranks; call `set_epoch`."""
    return DistributedWeightedSampler(samples_weights, num_samples=epoch_len, num_replicas=num_replicas, rank=rank,
                                      replacement=sampler_replace, seed=seed)


def preload_mp3(balanced_train_hdf5: str, unbalanced_train_hdf5: str) -> int:
    """Read both training files sequentially (warms a network file cache); returns bytes read."""
    return preload_files([balanced_train_hdf5, unbalanced_train_hdf5])
