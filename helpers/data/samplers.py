"""Class-balanced sample weights, distributed-aware samplers and sequential file preloading."""

from __future__ import annotations

import logging
import math
import os
from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler
from tqdm import tqdm

from helpers.data.hdf5 import PackedBitsTargets, TargetCodec, read_targets

logger = logging.getLogger(__name__)


def class_balanced_sample_weights(targets: np.ndarray, sample_weight_offset: float = 100,
                                  sample_weight_sum: bool = True) -> np.ndarray:
    """Weight each clip by the rarity of its classes.

    With per-class counts n_c over all clips, class weight w_c = 1000 / (n_c + sample_weight_offset);
    a clip's weight is the sum (or, with `sample_weight_sum=False`, the max) of w_c over its labels.
    The offset keeps very rare classes from dominating. Returns float64 of shape (N,).
    """
    targets = np.asarray(targets, dtype=np.float64)
    if targets.ndim != 2:
        raise ValueError(f"targets must be (clips, classes), got shape {targets.shape}")
    per_class = (targets > 0.5).sum(axis=0) + sample_weight_offset
    if np.any(per_class <= 0):
        raise ValueError(f"sample_weight_offset={sample_weight_offset} leaves classes with no weight")
    weighted = (targets > 0.5) * (1000.0 / per_class)
    return weighted.sum(axis=1) if sample_weight_sum else weighted.max(axis=1)


def class_balanced_weights_from_hdf5(hdf5_files: Sequence[str | os.PathLike], classes_num: int,
                                     sample_weight_offset: float = 100, sample_weight_sum: bool = True,
                                     target_codec: TargetCodec | None = None) -> np.ndarray:
    """`class_balanced_sample_weights` over the clips of several files, concatenated in the given order
    (which must match the order of the ConcatDataset they index)."""
    codec = target_codec or PackedBitsTargets(classes_num)
    targets = np.concatenate([read_targets(path, codec) for path in hdf5_files], axis=0)
    weights = class_balanced_sample_weights(targets, sample_weight_offset, sample_weight_sum)
    logger.info("class-balanced weights for %d clips (offset %s, %s)", len(weights), sample_weight_offset,
                "sum" if sample_weight_sum else "max")
    return weights


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
