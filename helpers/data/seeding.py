"""Reproducible randomness for data loading.

Every random draw of the data core for one item comes from `ItemRandom(seed)(index)`: a numpy Generator
seeded with (dataset seed, epoch, index). So augmentation depends only on the seed, the epoch and which
clip is loaded -- not on the number of workers, which worker or rank loads the clip, or what was drawn
before (a resumed run repeats an uninterrupted one). The loader tells a dataset pipeline the epoch with
`set_dataset_epoch` before each epoch.
"""

from __future__ import annotations

import random

import numpy as np
from torch.utils.data import ConcatDataset, Dataset, Subset, get_worker_info


class ItemRandom:
    """numpy Generators for the items of one dataset: `self(index)` is seeded with (seed, epoch, index)."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __call__(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])


def set_dataset_epoch(dataset: Dataset, epoch: int) -> None:
    """Pass `epoch` to every part of a dataset pipeline: datasets with `set_epoch` (which pass it on to
    the datasets they wrap), and the parts of torch's ConcatDataset and Subset."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    elif isinstance(dataset, ConcatDataset):
        for part in dataset.datasets:
            set_dataset_epoch(part, epoch)
    elif isinstance(dataset, Subset):
        set_dataset_epoch(dataset.dataset, epoch)


def seed_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: seed Python's and numpy's global generators from the worker seed.

    The data core itself never uses global generators; this is for any other code running in workers.
    """
    info = get_worker_info()
    seed = info.seed if info is not None else worker_id
    random.seed(seed)
    np.random.seed(seed % 2**32)
