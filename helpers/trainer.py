"""The Lightning Trainer from an experiment's `trainer` config: its defaults, loggers (sacred run metrics through
a Lightning logger), callbacks, atomic checkpoints, accelerator and precision."""

from __future__ import annotations

import inspect
import logging
import os
from typing import Mapping

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint, ModelSummary, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only

from helpers.data.atomic import atomic_open
from helpers.cluster import DDP_TIMEOUT_DEFAULT, ddp_strategy, ddp_trainer_defaults
from helpers.lightning1_keys import LIGHTNING1_KEYS, NOT_SET, lightning2_options
from helpers.networks import load_training_checkpoint
from helpers.plots import SpectrogramPictures, TrainingCurves
from helpers.preemption import PreemptionCallback

log = logging.getLogger(__name__)


PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64-true")
PRECISION_ALIASES = {16: "16-mixed", "16": "16-mixed", 32: "32-true", "32": "32-true", 64: "64-true",
                     "64": "64-true", "bf16": "bf16-mixed"}
TRAINER_OWN_KEYS = {"callbacks", "logger", "plugins", "default_root_dir", "use_distributed_sampler"}


def normalize_precision(precision) -> str:
    """Upstream's 16/32 and Lightning's names -> Lightning 2 names ("16-mixed", "32-true", ...)."""
    return "32-true" if precision is None else PRECISION_ALIASES.get(precision, precision)


def trainer_config(**overrides) -> dict:
    """Every Lightning Trainer argument with its default (so each is overridable as `trainer.<name>=...`),
    except those the experiment sets itself, and upstream's Lightning-1 arguments (unset; see
    `helpers.lightning1_keys`), updated with `overrides` and the DDP defaults."""
    signature = inspect.signature(pl.Trainer.__init__).parameters
    config = {name: parameter.default for name, parameter in signature.items()
              if name != "self" and name not in TRAINER_OWN_KEYS}
    config.update({name: NOT_SET for name in LIGHTNING1_KEYS})
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(f"not Trainer arguments: {', '.join(sorted(unknown))}")
    return {**config, **ddp_trainer_defaults(), **overrides}


class SacredLogger(Logger):
    """Sends logged metrics to the sacred run (`run.log_scalar`), with the epoch as step."""

    def __init__(self, run):
        super().__init__()
        self.run = run

    @property
    def name(self) -> str:
        return "sacred"

    @property
    def version(self) -> str:
        return str(self.run._id)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        epoch = metrics.get("epoch")
        for key, value in metrics.items():
            if key != "epoch":
                self.run.log_scalar(key, float(value), int(epoch if epoch is not None else step or 0))

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs) -> None:
        """The sacred run records the whole config already."""


class RunProgressBar(TQDMProgressBar):
    """Lightning's progress bar, naming the sacred run (`run=7`) instead of the joined logger versions."""

    def __init__(self, run_id, refresh_rate: int = 1):
        super().__init__(refresh_rate=refresh_rate)
        self.run_id = run_id

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return {"run": self.run_id, **metrics} if self.run_id is not None else metrics


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint with `helpers.data.atomic.atomic_open` (temporary file, sync, rename), so a
    process killed (or a write failing) while saving leaves the previous checkpoint intact; a failed write
    removes its temporary file. Reads checkpoints with `weights_only=True` (`load_training_checkpoint`)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        with atomic_open(path) as file:
            torch.save(checkpoint, file)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return load_training_checkpoint(os.fspath(path))


def trainer_accelerator(trainer_config: Mapping) -> str:
    """"gpu" or "cpu" (or another Lightning accelerator) that a `trainer` config trains on."""
    return resolve_accelerator(lightning2_options(trainer_config).get("accelerator", "auto"))


def resolve_accelerator(accelerator: str) -> str:
    if accelerator in ("auto", None):
        return "gpu" if torch.cuda.is_available() else "cpu"
    return "gpu" if accelerator == "cuda" else accelerator


def resolve_precision(precision, accelerator: str) -> str:
    """The precision to use; 16-bit AMP asked for on CPU falls back (logged) to 32-true."""
    precision = normalize_precision(precision)
    if accelerator == "cpu" and precision == "16-mixed":
        log.warning("trainer.precision=16-mixed needs a GPU; training in 32-true on CPU "
                    "(set trainer.precision=bf16-mixed for bfloat16 autocast on CPU)")
        return "32-true"
    return precision


def build_trainer(trainer_config: Mapping, run, run_dir: str | None, monitor: str, swa_callback=None,
                  spectrogram_batches: int = 2, wandb: Mapping | None = None, checkpoints: bool = True,
                  save_last_n: int | None = None, save_best: int = 1, ddp_timeout: float = DDP_TIMEOUT_DEFAULT,
                  preempt_signals=()) -> pl.Trainer:
    """A Trainer from the `trainer` config with this project's loggers (TensorBoard, CSV, sacred,
    optionally Weights & Biases) and callbacks (checkpoints: last, the `save_best` best by `monitor`, and
    with `save_last_n` those of the last N epochs; SWA; pictures; with `preempt_signals` and checkpoints a
    `PreemptionCallback` first, writing checkpoints/last.ckpt). A DDP strategy's collectives wait at most
    `ddp_timeout` seconds. Upstream's Lightning-1 keys are translated (`helpers.lightning1_keys`)."""
    options = lightning2_options(trainer_config)
    options["strategy"] = ddp_strategy(options.get("strategy", "auto"), ddp_timeout)
    summary_depth = options.pop("model_summary_depth", None)
    refresh_rate = options.pop("progress_bar_refresh_rate", 1)
    checkpoints = checkpoints and options.pop("enable_checkpointing", True) is not False
    options["accelerator"] = resolve_accelerator(options.get("accelerator", "auto"))
    options["precision"] = resolve_precision(options.get("precision", "32-true"), options["accelerator"])
    logs_dir = run_dir or os.path.join("runs", "ddp-rank-logs-unused")
    loggers = [TensorBoardLogger(logs_dir, name="tensorboard", version=""),
               CSVLogger(logs_dir, name="csv", version=""), SacredLogger(run)]
    if wandb and wandb.get("enabled"):
        try:
            from pytorch_lightning.loggers import WandbLogger
            import wandb as _  # noqa: F401  (WandbLogger imports it lazily; fail here with a clear message)
        except ImportError as error:
            raise RuntimeError("wandb.enabled=True but the wandb package is not installed (pip install wandb)") from error
        loggers.append(WandbLogger(project=wandb.get("project"), save_dir=logs_dir,
                                   **{k: v for k, v in wandb.items() if k not in ("enabled", "project")}))
    callbacks = ([RunProgressBar(getattr(run, "_id", None), refresh_rate)]
                 if options.get("enable_progress_bar") is not False else [])
    if summary_depth is not None:
        callbacks.append(ModelSummary(max_depth=summary_depth))
    if checkpoints:  # (Lightning's save_last only writes when the best one changes)
        directory = os.path.join(run_dir, "checkpoints") if run_dir else None
        if preempt_signals:  # first: it positions the loader of a continued epoch before any other callback runs
            callbacks.insert(0, PreemptionCallback(preempt_signals, directory and os.path.join(directory, "last.ckpt"),
                                                   run_dir))
        callbacks += [ModelCheckpoint(dirpath=directory, filename="best-epoch{epoch:03d}", monitor=monitor,
                                      mode="max", save_top_k=save_best, auto_insert_metric_name=False),
                      ModelCheckpoint(dirpath=directory, filename="last", enable_version_counter=False)]
        if save_last_n:
            callbacks.append(ModelCheckpoint(dirpath=directory, filename="epoch{epoch:03d}", monitor="epoch",
                                             mode="max", save_top_k=int(save_last_n), auto_insert_metric_name=False))
    if swa_callback is not None:
        callbacks.append(swa_callback)
    if run_dir:
        callbacks += [SpectrogramPictures(os.path.join(run_dir, "spectrograms"), spectrogram_batches),
                      TrainingCurves(os.path.join(run_dir, "training_curves.png"), monitor)]
    return pl.Trainer(**options, logger=loggers, callbacks=callbacks, plugins=[AtomicCheckpointIO()],
                      default_root_dir=logs_dir, use_distributed_sampler=False)


