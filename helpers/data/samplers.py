"""Distributed-aware samplers and sequential file preloading (the class-balanced weights are in `weights`)."""

from __future__ import annotations

import logging
import math
import os
from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler
from tqdm import tqdm

logger = logging.getLogger(__name__)


def _resolve_replicas(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    if num_replicas is None or rank is None:
        import torch.distributed as dist  # only to ask for the world size/rank of a running job

        if dist.is_available() and dist.is_initialized():
            world, current = dist.get_world_size(), dist.get_rank()
        else:
            world, current = int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0))
        num_replicas = world if num_replicas is None else num_replicas
        rank = current if rank is None else rank
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError(f"invalid rank {rank} for num_replicas {num_replicas}")
    return num_replicas, rank


class DistributedWeightedSampler(Sampler[int]):
    """Draws `num_samples` indices per epoch with probability proportional to `weights`, split so that
    each of `num_replicas` ranks takes a disjoint shard of the same epoch-seeded draw.

    All ranks draw the same ceil(num_samples / num_replicas) * num_replicas indices from a generator
    seeded with (seed, epoch); rank r keeps positions r, r + R, r + 2R, ... Call `set_epoch` every epoch.
    Without replacement, the draw holds distinct clips, so the shards are disjoint as clip sets too.
    num_replicas/rank default to the running torch.distributed job (or WORLD_SIZE/RANK, else 1/0).
    """

    def __init__(self, weights: Sequence[float], num_samples: int, num_replicas: int | None = None,
                 rank: int | None = None, replacement: bool = True, seed: int = 0):
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim != 1 or len(weights) == 0 or np.any(weights < 0) or not np.isfinite(weights).all() \
                or weights.sum() <= 0:
            raise ValueError("weights must be a non-empty 1-D array of finite non-negative values with a positive sum")
        self.num_replicas, self.rank = _resolve_replicas(num_replicas, rank)
        self.probabilities = weights / weights.sum()
        self.num_samples = int(num_samples)
        self.samples_per_replica = math.ceil(self.num_samples / self.num_replicas)
        self.total_size = self.samples_per_replica * self.num_replicas
        self.replacement = replacement
        if not replacement and self.total_size > np.count_nonzero(weights):
            raise ValueError(f"cannot draw {self.total_size} distinct clips without replacement from "
                             f"{np.count_nonzero(weights)} clips with non-zero weight")
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def global_draw(self) -> np.ndarray:
        """The indices drawn for the current epoch, before sharding (identical on every rank)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        return rng.choice(len(self.probabilities), size=self.total_size, replace=self.replacement,
                          p=self.probabilities)

    def __iter__(self) -> Iterator[int]:
        return iter(self.global_draw()[self.rank::self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.samples_per_replica


class DistributedShardSampler(Sampler[int]):
    """Every index of a dataset once per epoch (shuffled with (seed, epoch) if `shuffle`), sharded
    over ranks by position. With `even=True` the list is padded by wrapping around so all ranks get
    the same count (needed for training under DDP); with `even=False` (evaluation) nothing is repeated.
    """

    def __init__(self, dataset_length: int, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = False, seed: int = 0, even: bool = True):
        self.dataset_length = int(dataset_length)
        self.num_replicas, self.rank = _resolve_replicas(num_replicas, rank)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.even = even
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _order(self) -> np.ndarray:
        order = np.arange(self.dataset_length)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.dataset_length)
        if self.even and self.dataset_length:
            total = math.ceil(self.dataset_length / self.num_replicas) * self.num_replicas
            order = np.resize(order, total)
        return order

    def __iter__(self) -> Iterator[int]:
        return iter(self._order()[self.rank::self.num_replicas].tolist())

    def __len__(self) -> int:
        if self.even:
            return math.ceil(self.dataset_length / self.num_replicas)
        return len(range(self.rank, self.dataset_length, self.num_replicas))


def preload_files(paths: Sequence[str | os.PathLike], chunk_bytes: int = 64 * 2**20) -> int:
    """Read files front to back once (fills the page cache of a network or slow disk before random
    access starts), with a progress bar; returns the number of bytes read."""
    paths = [os.fspath(path) for path in paths]
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"cannot preload {path!r}: no such file")
    total = sum(os.path.getsize(path) for path in paths)
    read = 0
    with tqdm(total=total, unit="B", unit_scale=True, desc="preloading") as progress:
        for path in paths:
            logger.info("preloading %s", path)
            with open(path, "rb", buffering=0) as file:
                while chunk := file.read(chunk_bytes):
                    read += len(chunk)
                    progress.update(len(chunk))
    return read
