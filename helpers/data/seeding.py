"""Reproducible randomness for data loading.

DataLoader gives every worker a seed derived from its base seed, which it draws afresh each epoch from
torch's global generator (or the loader's `generator`). `WorkerRandom` turns that worker seed plus a
dataset's own `seed` into a numpy Generator, so augmentation draws depend only on (base seed, epoch,
worker) and the order of indices a worker receives -- never on a process-global numpy state.
"""

from __future__ import annotations

import os
import random

import numpy as np
from torch.utils.data import get_worker_info


class WorkerRandom:
    """Lazily creates one numpy Generator per process.

    In a DataLoader worker it is seeded with `(seed, worker_info.seed)`; in the main process
    (num_workers=0) with `seed` alone, and then keeps drawing across epochs.
    """

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self._rng = None
        self._key = None

    def __call__(self) -> np.random.Generator:
        info = get_worker_info()
        key = (os.getpid(), None if info is None else info.seed)
        if self._rng is None or key != self._key:
            entropy = [self.seed] if info is None else [self.seed, info.seed]
            self._rng = np.random.default_rng(entropy)
            self._key = key
        return self._rng

    def __getstate__(self):
        return {"seed": self.seed, "_rng": None, "_key": None}


def seed_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: seed Python's and numpy's global generators from the worker seed.

    The data core itself never uses global generators; this is for any other code running in workers.
    """
    info = get_worker_info()
    seed = info.seed if info is not None else worker_id
    random.seed(seed)
    np.random.seed(seed % 2**32)
