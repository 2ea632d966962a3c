"""The experiments' DataLoaders: training batches whose epoch depends on (seed, epoch) alone, and evaluation
batches that cover each clip once over all ranks."""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import threading
import time
from typing import Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from helpers.data import (DistributedShardSampler, HDF5AudioDataset, collate_drop_failed, restrict_to_ids, seed_worker,
                          set_dataset_epoch)
from helpers.process_tree import alive

log = logging.getLogger(__name__)


class _ResumableSampler(Sampler[int]):
    """Wraps a training sampler so that one iteration can start after its first `skip` indices (a run
    continued mid-epoch); `set_epoch`, `epoch` and the rest are the wrapped sampler's."""

    def __init__(self, sampler: Sampler):
        self.sampler, self.skip = sampler, 0

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def __getattr__(self, name):
        if name == "sampler":
            raise AttributeError(name)
        return getattr(self.sampler, name)

    def __iter__(self):
        skip, self.skip = self.skip, 0
        return itertools.islice(iter(self.sampler), skip, None)

    def __len__(self) -> int:
        return len(self.sampler)


class EpochLoader(DataLoader):
    """A training DataLoader whose epoch is a function of (seed, epoch) alone: nothing carries over from
    one epoch to the next, so a run resumed at an epoch boundary repeats the uninterrupted run.

    Each iteration starts (lazily, at the first batch, after Lightning has called the sampler's
    `set_epoch`) by passing the sampler's epoch to the dataset pipeline (`set_dataset_epoch`: augmentation
    draws from (seed, epoch, clip)) and seeding the loader's own generator, from which the workers' seeds
    are drawn, with (seed, epoch). torch's global generator is not touched. `resume_within_epoch` makes
    the next iteration of an epoch start after the batches a pre-empted run had trained.
    """

    def __init__(self, dataset: Dataset, seed: int, sampler: Sampler, **options):
        if not hasattr(sampler, "set_epoch") or not hasattr(sampler, "epoch"):
            raise TypeError(f"{type(sampler).__name__} has no set_epoch/epoch; the epoch seeds the data")
        if options.get("persistent_workers"):
            raise ValueError("persistent workers would keep the previous epoch's dataset state")
        super().__init__(dataset, sampler=_ResumableSampler(sampler), generator=torch.Generator(), **options)
        self.seed = int(seed)
        self._resume_at: tuple[int, int] | None = None

    def resume_within_epoch(self, epoch: int, batches: int) -> None:
        """The next iteration, if it is of `epoch`, leaves out its first `batches` batches (without loading
        them): the sampler's order, the clips' augmentation and the workers' seeds stay those of the epoch."""
        self._resume_at = (int(epoch), int(batches))

    def __iter__(self):
        epoch = int(self.sampler.epoch)
        if self._resume_at is not None:
            resume_epoch, batches = self._resume_at
            self._resume_at = None
            if resume_epoch == epoch:
                self.sampler.skip = batches * self.batch_size
        set_dataset_epoch(self.dataset, epoch)
        self.generator.manual_seed(int(np.random.SeedSequence([self.seed, epoch]).generate_state(1, np.uint64)[0] >> 1))
        yield from super().__iter__()


WORKER_START_METHODS = ("forkserver", "fork", "spawn")


def worker_context(method: str = "forkserver"):
    """How DataLoader workers start. "forkserver" (the default): forked from a server process that started
    single-threaded and imported the data core once, because a worker forked from a rank that runs other
    threads (the process group's, sacred's heartbeat, TensorBoard's writer) can inherit a lock held by one of
    them and never deliver a batch; "fork" is upstream's (torch's default), "spawn" a fresh interpreter."""
    if method not in WORKER_START_METHODS:
        raise ValueError(f"multiprocessing_context={method!r}; allowed: {', '.join(WORKER_START_METHODS)}")
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["helpers.data", "helpers.loaders"])  # before its first start; then no-op
    return context


class WorkerStart:
    """DataLoader `worker_init_fn`: `seed_worker`, then a daemon thread that ends the worker once the training
    process that made the loader is gone. torch's own check watches the worker's parent, which under a
    forkserver is the server, and the server lives as long as any worker it forked: without this, a rank
    killed by SIGKILL (or the OOM killer) would leave its server and workers running for ever."""

    def __init__(self, poll_seconds: float = 1.0):
        self.owner, self.poll_seconds = os.getpid(), poll_seconds

    def __call__(self, worker_id: int) -> None:
        seed_worker(worker_id)
        if os.getppid() != self.owner:
            threading.Thread(target=self._end_with_owner, name="end-with-owner", daemon=True).start()

    def _end_with_owner(self) -> None:
        while alive(self.owner):
            time.sleep(self.poll_seconds)
        os._exit(1)


def _with_worker_context(options: dict, num_workers: int) -> dict:
    context = options.get("multiprocessing_context", "forkserver")
    if num_workers == 0:
        return {key: value for key, value in options.items() if key != "multiprocessing_context"}
    return {**options, "multiprocessing_context": worker_context(context) if isinstance(context, str) else context}


def loader_options(loader: Mapping) -> dict:
    """The DataLoader arguments of a `datasets.<loader>` config entry (`training_loader` / `evaluation_loader`
    keyword arguments); pin_memory None = on CUDA machines; prefetch_factor only with workers."""
    options = {"batch_size": loader["batch_size"], "num_workers": loader["num_workers"],
               "drop_last": bool(loader.get("drop_last", False)), "timeout": loader.get("timeout", 0) or 0}
    if loader.get("pin_memory") is not None:
        options["pin_memory"] = bool(loader["pin_memory"])
    if loader.get("prefetch_factor") is not None and loader["num_workers"] > 0:
        options["prefetch_factor"] = int(loader["prefetch_factor"])
    if loader.get("persistent_workers"):
        options["persistent_workers"] = True
    if loader.get("multiprocessing_context"):
        options["multiprocessing_context"] = loader["multiprocessing_context"]
    return options


def training_loader(dataset: Dataset, batch_size: int, num_workers: int, seed: int,
                    sampler: Sampler | None = None, shuffle: bool = True, **options) -> DataLoader:
    """Batches for training (an `EpochLoader`); without a `sampler`, every clip once per epoch, shuffled
    by (seed, epoch) (or in file order without `shuffle`) and sharded over DDP ranks. Lightning calls the
    sampler's `set_epoch` every epoch. options: other DataLoader arguments (`loader_options`)."""
    sampler = sampler or DistributedShardSampler(len(dataset), shuffle=bool(shuffle), seed=seed, even=True)
    options = _with_worker_context({"drop_last": False, "pin_memory": torch.cuda.is_available(), **options}, num_workers)
    return EpochLoader(dataset, seed, sampler, batch_size=batch_size, num_workers=num_workers,
                       worker_init_fn=WorkerStart(), **options)


def evaluation_loader(dataset: Dataset, batch_size: int, num_workers: int, drop_last: bool = False,
                      subset: str | None = None, **options) -> DataLoader:
    """Batches for evaluation: each clip exactly once over all ranks, failed clips dropped (so `drop_last`
    is refused). Its own generator keeps validation from drawing on torch's global one (which training's
    randomness uses). `subset`: an id list (`basedataset.eval_subset`); only its clips are scored
    (`helpers.data.restrict_to_ids`). options: other DataLoader arguments (`loader_options`)."""
    if drop_last:
        raise ValueError("drop_last=True would leave evaluation clips out; it applies to training loaders only")
    if subset:
        dataset = restrict_to_ids(dataset, subset)
    options = _with_worker_context({"pin_memory": torch.cuda.is_available(), **options}, num_workers)
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_drop_failed,
                      sampler=DistributedShardSampler(len(dataset), shuffle=False, even=False),
                      worker_init_fn=WorkerStart(), generator=torch.Generator().manual_seed(0), **options)


def eval_subset(config: Mapping) -> str | None:
    """The id list `basedataset.eval_subset` names (the clips the eval set is restricted to), or None."""
    return (config.get("basedataset") or {}).get("eval_subset") or None


def clip_set_name(prefix: str) -> str:
    """The name of an evaluation set in the run's figures: its metric prefix, `eval_` for the unprefixed one."""
    return prefix or "eval_"


def record_clip_sets(run, loaders: Mapping[str, DataLoader]) -> dict:
    """Per evaluation set: its clip count and fingerprint (`<set>clips`, `<set>fingerprint`, e.g.
    `eval_fingerprint`) and, when `basedataset.eval_subset` restricted it, the listed clips it lacks
    (`<set>subset_missing`: their count; `_run.info` also gets their names). Logged, stored in `run.info`,
    and returned for the run's result and closing line."""
    figures, info = {}, getattr(run, "info", None)
    for prefix, loader in loaders.items():
        dataset = loader.dataset
        if not isinstance(dataset, HDF5AudioDataset):
            continue
        name = clip_set_name(prefix)
        figures[name + "clips"], figures[name + "fingerprint"] = len(dataset), dataset.fingerprint()
        described = f"{len(dataset)} clips, fingerprint {figures[name + 'fingerprint']}"
        if dataset.subset is not None:
            figures[name + "subset_missing"] = len(dataset.subset.missing)
            described += (f"; eval_subset {dataset.subset.path}: {dataset.subset.listed} ids listed, "
                          f"{len(dataset.subset.missing)} not in {dataset.hdf5_file}")
            if isinstance(info, dict):
                info[name + "subset"] = dataset.subset.path
                info[name + "subset_missing_clips"] = dataset.subset.missing_names()
        log.info("evaluation set %s: %s", name.rstrip("_"), described)
    if isinstance(info, dict):
        info.update(figures)
    return figures
