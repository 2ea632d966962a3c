"""save_logits: a network's (release model, checkpoint or ensemble) logits of every clip of an HDF5 file, in
file order and without augmentation, as evaluation computes them, into a teacher logits file
(`helpers.data.teacher`'s format). Under `DDP=N` each rank computes a share of the rows and writes them into
the one file in place; a killed run continues where it stopped; rows go out in chunks."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from helpers.config_checks import ConfigError
from helpers.data import HDF5FormatError, collate_drop_failed
from helpers.data.teacher import (LogitsRowWriter, SourceIdentity, check_logits_file, check_resumable,
                                  create_logits_file, logits_file_name, unwritten_rows)
from helpers.loaders import WorkerStart, worker_context
from helpers.lightning_module import PaSSTModule
from helpers.trainer import resolve_precision, trainer_accelerator

log = logging.getLogger(__name__)

CHUNK_ROWS = 1024  # rows per write (and sync): 1 MiB of 527-class float16 logits
TEACHER_NET_KEYS = ("arch", "arch_list", "checkpoint", "checkpoint_weights", "pretrained", "n_classes", "fstride",
                    "tstride", "input_fdim", "input_tdim", "cut_depth", "in_channels")


@dataclass(frozen=True)
class LogitsSources:
    """What `save_logits` reads in an experiment: `splits`, the `basedataset` keys naming its HDF5 files;
    `dataset(config, path)`, an evaluation set over a whole file (the experiment's dataset class, evaluation
    clip length); `loader`, the `datasets.<loader>` entry whose batch_size and num_workers are used."""

    splits: Sequence[str]
    dataset: Callable[[Mapping, str], Dataset]
    loader: str = "test"


def random_weights(net: Mapping) -> bool:
    """Whether a `models.net` config leaves (some of) the weights at their seeded random initialisation."""
    if net.get("pretrained"):
        return False
    members = net.get("arch_list") or [[None, None, None, net.get("checkpoint")]]
    return any(len(member) < 4 or not member[3] for member in members)


def teacher_description(config: Mapping, clip_seconds: float | None) -> str:
    """The `teacher` attribute: what computes the logits (network, mel frontend, clip length; the seed when
    weights are random), as JSON. A run continues a file only with the same description."""
    net = config["models"]["net"]
    description = {"net": {key: net.get(key) for key in TEACHER_NET_KEYS}, "mel": dict(config["models"]["mel"]),
                   "clip_seconds": clip_seconds}
    if random_weights(net):
        description["seed"] = config["seed"]
    return json.dumps(description, sort_keys=True)


def output_files(config: Mapping, sources: LogitsSources, training_files: Sequence[str], out: str | None,
                 split: str | None) -> list[tuple[str, str]]:
    """(source file, logits file) pairs of a command line: `out` a file (one split) or a folder (`out=dir/`, or
    an existing folder) receiving `<file stem>.logits.hdf` of `split`, or without `split` of every training file."""
    problems = []
    if not out:
        problems.append("out: save_logits needs out=FILE.hdf (with split=) or out=FOLDER/")
    if split is not None:
        split = split.removeprefix("basedataset.")
        if split not in sources.splits:
            problems.append(f"split: {split!r}; allowed: {', '.join(sources.splits)}")
    folder = bool(out) and (out.endswith(os.sep) or os.path.isdir(out))
    if out and split is None and not training_files:
        problems.append(f"split: name the file to compute ({', '.join(sources.splits)})")
    elif out and not folder and split is None and len(training_files) != 1:
        problems.append(f"split: out={out!r} is one file; name the split to compute ({', '.join(sources.splits)}) "
                        "or give out= a folder (ending in /) for every training file")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    inputs = [config["basedataset"][split]] if split is not None else list(training_files)
    pairs = [(os.fspath(path), os.path.join(out, logits_file_name(path)) if folder else out) for path in inputs]
    problems = [f"{'basedataset.' + split if split else 'training file'}: data file {source!r} does not exist"
                for source, _ in pairs if not os.path.isfile(source)]
    problems += [f"out: {target!r} is the data file itself" for source, target in pairs
                 if os.path.abspath(source) == os.path.abspath(target)]
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    return pairs


@contextlib.contextmanager
def process_group():
    """(rank, world size): under torchrun (`DDP=N`) a gloo process group for the barriers, made here unless
    one exists; (0, 1) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world == 1:
        yield 0, 1
        return
    made = not dist.is_initialized()
    if made:
        dist.init_process_group("gloo", timeout=datetime.timedelta(hours=12))  # ranks may finish far apart
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        if made:
            dist.destroy_process_group()


def _on_all_ranks(world: int, rank: int, action: Callable[[], object]):
    """Run `action` on rank 0 and share its result; an error there is raised on every rank."""
    outcome = [None, None]
    if rank == 0:
        try:
            outcome = [action(), None]
        except (OSError, ValueError) as error:
            outcome = [None, error]
    if world > 1:
        dist.broadcast_object_list(outcome, src=0)
    if outcome[1] is not None:
        raise outcome[1]
    return outcome[0]


def prepare_file(out: str, source: str, classes: int, teacher: str) -> int:
    """Create `out` for `source`, or check that an existing `out` can be continued (ConfigError naming the file
    otherwise); returns the rows still to be written."""
    identity = SourceIdentity.of(source)
    if os.path.exists(out):
        try:
            remaining = check_resumable(out, identity, classes, teacher)
        except HDF5FormatError as error:
            raise ConfigError(f"invalid config:\n  out: {error}") from error
        log.info("%s: continuing, %d of %d rows still to compute", out, remaining, identity.rows)
        return remaining
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    create_logits_file(out, identity, classes, teacher)
    return identity.rows


class _FileRows(Dataset):
    """(row, item) of the given file rows of an evaluation set (item None: the clip did not decode)."""

    def __init__(self, dataset: Dataset, rows: np.ndarray):
        self.dataset, self.rows = dataset, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        row = int(self.rows[index])
        return row, self.dataset[row]


def _collate_rows(batch: list):
    """(file rows, which of them decoded, the decoded clips collated or None)."""
    rows = np.array([row for row, _ in batch], dtype=np.int64)
    decoded = np.array([item is not None for _, item in batch])
    return rows, decoded, collate_drop_failed([item for _, item in batch])


def precision_context(precision: str, device: torch.device):
    """What evaluation under `precision` runs the network in: autocast for the mixed precisions, else nothing
    (the "-true" precisions convert the module and input instead, see `true_dtype`)."""
    dtype = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(precision)
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()


def true_dtype(precision: str) -> torch.dtype | None:
    return {"64-true": torch.float64, "16-true": torch.float16, "bf16-true": torch.bfloat16}.get(precision)


def compute_rows(module: PaSSTModule, dataset: Dataset, rows: np.ndarray, writer: LogitsRowWriter,
                 batch_size: int, num_workers: int, device: torch.device, precision: str, chunk_rows: int,
                 progress: tqdm | None = None) -> None:
    """Logits of `rows` (file rows of `dataset`) written through `writer` every `chunk_rows` rows; clips that
    do not decode are written as missing."""
    loader = DataLoader(_FileRows(dataset, rows), batch_size=batch_size, num_workers=num_workers,
                        collate_fn=_collate_rows, pin_memory=device.type == "cuda",
                        multiprocessing_context=worker_context() if num_workers else None,
                        worker_init_fn=WorkerStart())
    dtype = true_dtype(precision)
    pending_rows, pending_logits, pending_missing = [], [], []

    def flush():
        if pending_rows:
            writer.write(np.concatenate(pending_rows), np.concatenate(pending_logits), np.concatenate(pending_missing))
            pending_rows.clear(), pending_logits.clear(), pending_missing.clear()

    with torch.inference_mode():
        for batch_rows, decoded, batch in loader:
            logits = np.full((len(batch_rows), writer.classes), np.nan, dtype=np.float16)
            if batch is not None:
                waveforms = batch[0].to(device, non_blocking=True)
                with precision_context(precision, device):
                    output = module.evaluation_logits(waveforms.to(dtype) if dtype else waveforms)
                if output.shape[1] != writer.classes:
                    raise ValueError(f"the network gives {output.shape[1]} logits per clip, {writer.path} holds "
                                     f"{writer.classes}")
                logits[decoded] = output.float().cpu().numpy().astype(np.float16)
            pending_rows.append(batch_rows), pending_logits.append(logits), pending_missing.append(~decoded)
            if sum(map(len, pending_rows)) >= chunk_rows:
                flush()
            if progress is not None:
                progress.update(len(batch_rows))
        flush()


def save_logits(config: Mapping, sources: LogitsSources, training_files: Sequence[str], out: str | None,
                split: str | None, build_module: Callable[[], torch.nn.Module],
                chunk_rows: int = CHUNK_ROWS) -> dict:
    """The `save_logits` command: for each (source, logits file) of `output_files`, check or create the file
    (rank 0, before any work: an existing file of another source, class count or teacher is refused naming
    it), then compute the rows not written yet, shared out over the ranks in contiguous blocks, with the network
    `build_module()` gives (mel frontend + net, eval mode) on the configured accelerator and precision. Returns
    per logits file its rows, missing clips, rows computed now and seconds."""
    pairs = output_files(config, sources, training_files, out, split)
    if not (isinstance(chunk_rows, int) and chunk_rows > 0):
        raise ConfigError(f"invalid config:\n  chunk_rows: must be an integer > 0, got {chunk_rows!r}")
    classes = int(config["models"]["net"]["n_classes"])
    datasets = {source: sources.dataset(config, source) for source, _ in pairs}
    loader_config = config["datasets"][sources.loader]
    accelerator = trainer_accelerator(config["trainer"])
    precision = resolve_precision(config["trainer"].get("precision", "32-true"), accelerator)
    show_progress = config["trainer"].get("enable_progress_bar") is not False
    results = {}
    with process_group() as (rank, world):
        for source, target in pairs:
            dataset = datasets[source]
            clip_samples = getattr(dataset, "clip_samples", None)
            seconds = None if clip_samples is None else clip_samples / dataset.sample_rate
            _on_all_ranks(world, rank, lambda: prepare_file(target, source, classes,
                                                            teacher_description(config, seconds)))
        if accelerator == "gpu":
            local_rank = int(os.environ.get("LOCAL_RANK", 0))
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        else:
            device = torch.device("cpu")
        torch.manual_seed(_on_all_ranks(world, rank, lambda: int(config["seed"])))  # one random init on all ranks
        module = build_module().eval().to(device)
        if true_dtype(precision):
            module = module.to(true_dtype(precision))
        for source, target in pairs:
            remaining = unwritten_rows(target)
            if world > 1:
                dist.barrier()  # every rank has read the same rows before any writes
            share = np.array_split(remaining, world)[rank]
            started = time.perf_counter()
            progress = tqdm(total=len(share), desc=f"logits of {os.path.basename(source)}"
                            + (f" (rank 0's share of {world})" if world > 1 else ""), unit="clip", dynamic_ncols=True,
                            disable=rank != 0 or not show_progress)
            with progress, LogitsRowWriter(target) as writer:
                compute_rows(module, datasets[source], share, writer, loader_config["batch_size"],
                             loader_config["num_workers"], device, precision, chunk_rows, progress)
            if world > 1:
                dist.barrier()
            elapsed = time.perf_counter() - started
            counts = _on_all_ranks(world, rank, lambda: check_logits_file(target, source, classes))
            results[target] = {"source": source, "rows": counts["rows"], "missing": counts["missing"],
                               "computed": int(len(remaining)), "seconds": round(elapsed, 2)}
            if rank == 0:
                rate = len(remaining) / elapsed if elapsed > 0 else float("nan")
                print(f"{target}: {counts['rows']} clips of {source} ({counts['missing']} missing: no decodable "
                      f"audio), {len(remaining)} computed now in {elapsed:.1f} s ({rate:.1f} clips/s, {world} "
                      f"process{'es' if world > 1 else ''}, {device.type}, {precision})")
    return results
