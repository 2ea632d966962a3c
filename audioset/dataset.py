"""AudioSet specifics: file names, 527 classes, and the factories the experiment layer calls.

Files live in `base_dir + "mp3/"`: balanced_train_segments_mp3.hdf, unbalanced_train_segments_mp3.hdf and
eval_segments_mp3.hdf (see audioset/README.md for preparing them, or the demo generator).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from torch.utils.data import Dataset

from helpers.data import (DataOptions, DistributedWeightedSampler, HDF5AudioDataset, make_evaluation_set, make_training_set,
                          preload_files, shared_class_balanced_weights)

NUM_CLASSES = 527
BALANCED_TRAIN_FILE = "balanced_train_segments_mp3.hdf"
UNBALANCED_TRAIN_FILE = "unbalanced_train_segments_mp3.hdf"
EVAL_FILE = "eval_segments_mp3.hdf"


class AudioSetDataset(HDF5AudioDataset):
    """AudioSet clips: `(waveform float32 (1, sample_rate * clip_length), audio_name, target float32 (527,))`.

    `options` and the other settings (training, augment, ...) go to `HDF5AudioDataset`.
    """

    def __init__(self, hdf5_file: str | os.PathLike, classes_num: int = NUM_CLASSES, options: DataOptions | None = None,
                 **settings):
        super().__init__(hdf5_file, classes_num, options, **settings)


def training_set(files: Sequence[str], options: DataOptions, classes_num: int = NUM_CLASSES) -> Dataset:
    """The balanced file alone, or balanced + unbalanced (in this order, matching
    `get_ft_cls_balanced_sample_weights`), augmented as `options` say."""
    return make_training_set(list(files), classes_num, options, dataset_class=AudioSetDataset)


def evaluation_set(path: str, options: DataOptions, classes_num: int = NUM_CLASSES) -> AudioSetDataset:
    """The evaluation set; clips that fail to decode come back as None (use `collate_drop_failed`)."""
    return make_evaluation_set(path, classes_num, options, dataset_class=AudioSetDataset)


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
