"""What the experiments' commands do: build the module from the config, fit, evaluate, time a training
step, and the run's closing line."""

from __future__ import annotations

import logging
import os
import time
from typing import Callable, Mapping, Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from helpers.cluster import DDP_TIMEOUT_DEFAULT
from helpers.launch import run_directory
from helpers.lightning_module import PaSSTModule
from helpers.loaders import clip_set_name, record_clip_sets
from helpers.networks import build_network, network_description
from helpers.plots import plot_frame_scores
from helpers.preemption import PreemptionCallback, fit_unless_preempted
from helpers.resuming import start_training
from helpers.schedules import make_lr_lambda
from helpers.sed import FrameScoreWriter
from helpers.swa import SWACallback
from helpers.trainer import build_trainer, resolve_precision, trainer_accelerator
from models.preprocess import AugmentMelSTFT

log = logging.getLogger(__name__)


def build_module(config: Mapping, task, training: bool = True) -> PaSSTModule:
    """The PaSSTModule of an experiment config: `models.mel` -> AugmentMelSTFT, `models.net` ->
    `helpers.networks.build_network`, top-level optimisation, mixup, SWA and schedule settings."""
    accelerator = trainer_accelerator(config["trainer"])
    compile_net = config.get("compile", "auto")
    compile_net = accelerator == "gpu" if compile_net == "auto" else bool(compile_net)
    module = PaSSTModule(
        net=build_network(**config["models"]["net"]), mel=AugmentMelSTFT(**config["models"]["mel"]), task=task,
        lr=config["lr"], weight_decay=config["weight_decay"], adamw=config.get("adamw", True),
        lr_lambda=make_lr_lambda(config["schedule_mode"], config["warm_up_len"], config["ramp_down_start"],
                                 config["ramp_down_len"], config["last_lr_value"]),
        mixup_alpha=config["mixup_alpha"] if config["use_mixup"] else None,
        with_swa=bool(config["swa"]) and training, nonfinite_loss=config.get("nonfinite_loss", "stop"),
        compile_net=compile_net and training, eval_windowing=bool(config.get("eval_windowing", False)))
    module.network_description = network_description(config["models"]["net"], config["models"]["mel"])
    return module


def train(config: Mapping, run, experiment_name: str, task,
          loaders: Callable[[Mapping], tuple[DataLoader, Mapping[str, DataLoader], Mapping[str, DataLoader]]]):
    """Fit the configured module, validating every epoch on the evaluation loaders (the first set's
    `task.monitor` picks the best checkpoint); returns the run's result (final and best figures, checkpoint
    paths). `loaders(config)` -> (training loader, {metric prefix: loader validated every epoch}, {metric
    prefix: loader that scores the best checkpoint after training}), built once every rank has the run's
    seed (`start_training`). A pre-empted fit raises `RunPreempted` after its checkpoint."""
    config, resumed = start_training(config, run, experiment_name)
    train_loader, eval_loaders, final_eval_loaders = loaders(config)
    pl.seed_everything(config["seed"], workers=True, verbose=False)
    run_dir = run_directory(run, experiment_name)
    module = build_module(config, task)
    module.validation_sets = tuple(eval_loaders)
    monitor = next(iter(eval_loaders)) + task.monitor
    swa = SWACallback(config["swa_epoch_start"], config["swa_freq"], config.get("swa_snapshot", "epoch_start"),
                      config.get("swa_validate_every_epoch", False)) if config["swa"] else None
    trainer = build_trainer(config["trainer"], run, run_dir, monitor, swa, config.get("spectrogram_batches", 2),
                            config.get("wandb"), save_last_n=config.get("save_last_n"),
                            save_best=config.get("save_best") or 1,  # None: the best one
                            ddp_timeout=config.get("ddp_timeout", DDP_TIMEOUT_DEFAULT),
                            preempt_signals=config.get("preempt_signals") or ())
    if config.get("watch_model", True):
        watch_gradients(trainer, module)
    clip_sets = record_clip_sets(run, {**eval_loaders, **final_eval_loaders})
    preemption = next((callback for callback in trainer.callbacks if isinstance(callback, PreemptionCallback)), None)
    fit_unless_preempted(trainer, preemption, module, train_loader, list(eval_loaders.values()),
                         ckpt_path=resumed and resumed["checkpoint"])
    checkpoint, last = trainer.checkpoint_callbacks[:2]
    result = {key: float(value) for key, value in trainer.callback_metrics.items()}
    result.update(epochs=trainer.current_epoch, run_dir=run_dir, best_checkpoint=checkpoint.best_model_path,
                  last_checkpoint=last.best_model_path)
    if checkpoint.best_model_score is not None:
        result["best_" + monitor] = float(checkpoint.best_model_score)
    if final_eval_loaders:
        module.validation_sets = tuple(final_eval_loaders)
        if hasattr(task, "layout"):  # a frame model: the best checkpoint's frame scores and a picture of them
            module.score_writer = FrameScoreWriter(os.path.join(run_dir, "scores"), task)
        trainer.validate(module, list(final_eval_loaders.values()), ckpt_path=result["best_checkpoint"] or None,
                         verbose=False)
        result.update({key: float(value) for key, value in trainer.callback_metrics.items()
                       if key.startswith(module.validation_sets)})
        if module.score_writer is not None and trainer.is_global_zero:
            for prefix in final_eval_loaders:
                folder = module.score_writer.folder(prefix)
                result[prefix + "frame_plot"] = plot_frame_scores(folder, folder + "_frames.png")
    result.update(clip_sets)
    if trainer.is_global_zero:
        print(final_line(result, task.monitor, [*eval_loaders, *final_eval_loaders]))
    return result


def watch_gradients(trainer: pl.Trainer, module: pl.LightningModule) -> None:
    """Upstream's `watch_model`: Weights & Biases logs gradients and weights every 1000 steps."""
    for logger in trainer.loggers:
        if hasattr(logger, "watch"):
            logger.watch(module, log="all", log_freq=1000)


def final_line(result: Mapping, monitor: str, sets: Sequence[str] = ("",)) -> str:
    """The run's closing line: the final (and SWA, best) figure of `monitor` on each validation set, and the
    set's clip count and fingerprint when `result` has them (`record_clip_sets`)."""
    name = {"ap": "mAP", "acc": "accuracy"}.get(monitor, monitor)
    parts = []
    for prefix in dict.fromkeys(sets):
        label = f"{prefix.rstrip('_')} " if prefix else ""
        key = prefix + monitor
        part = f"final {label}{name}: {result.get(key, float('nan')):.4f}"
        if prefix + "swa_" + monitor in result:
            part += f"  SWA {name}: {result[prefix + 'swa_' + monitor]:.4f}"
        if "best_" + key in result:
            part += f"  best {name}: {result['best_' + key]:.4f}"
        clip_set = clip_set_name(prefix)
        if clip_set + "fingerprint" in result:
            part += f"  [{result[clip_set + 'clips']} clips, fingerprint {result[clip_set + 'fingerprint']}"
            if clip_set + "subset_missing" in result:
                part += f", {result[clip_set + 'subset_missing']} eval_subset clips missing"
            part += "]"
        parts.append(part)
    return "   ".join(parts)


def evaluate(config: Mapping, run, experiment_name: str, task, eval_loaders: Mapping[str, DataLoader]):
    """Validate the configured network (release model, checkpoint or ensemble) once on each of `eval_loaders`;
    `eval_loaders`: {metric prefix: loader}; returns the metrics and, per set, how many clips were left out (`<set>excluded_clips`)."""
    pl.seed_everything(config["seed"], verbose=False)
    run_dir = run_directory(run, experiment_name)
    module = build_module(config, task, training=False)
    module.validation_sets = tuple(eval_loaders)
    trainer = build_trainer(config["trainer"], run, run_dir, task.monitor, checkpoints=False)
    clip_sets = record_clip_sets(run, eval_loaders)
    if config.get("scores_out") and hasattr(task, "layout"):  # a frame model: every clip's scores to files
        module.score_writer = FrameScoreWriter(config["scores_out"], task)
    trainer.validate(module, list(eval_loaders.values()))
    result = {key: float(value) for key, value in trainer.callback_metrics.items()}
    result.update(clip_sets)
    counts = []
    for prefix, loader in eval_loaders.items():
        clips = len(loader.dataset)
        evaluated = int(result.get(prefix + "val.clips", clips))
        result[prefix + "excluded_clips"] = clips - evaluated
        counts.append(f"{prefix}{evaluated} clips evaluated, {clips - evaluated} excluded")
    if trainer.is_global_zero:
        print(final_line(result, task.monitor, list(eval_loaders)) + f"  ({'; '.join(counts)})")
    return result


def speed_test(config: Mapping, task, batch_size: int, steps: int = 20, warmup_steps: int = 3) -> float:
    """Training spectrograms per second of the configured network (forward, backward, AdamW step) on
    random input of the configured size and channels, on the configured accelerator and precision."""
    accelerator = trainer_accelerator(config["trainer"])
    device = torch.device("cuda" if accelerator == "gpu" else "cpu")
    precision = resolve_precision(config["trainer"].get("precision", "32-true"), accelerator)
    untrained = {**config["models"]["net"], "pretrained": False, "checkpoint": None}  # speed needs no weights
    module = build_module({**config, "models": {**config["models"], "net": untrained}}, task).to(device)
    net, mel_config, net_config = module.net.train(), config["models"]["mel"], config["models"]["net"]
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    frames = net_config.get("input_tdim") or 998
    x = torch.randn(batch_size, net_config.get("in_channels", 1), mel_config["n_mels"], frames, device=device)
    width = getattr(task, "target_width", None) or net_config["n_classes"] * (2 if hasattr(task, "n_labels") else 1)
    targets = torch.rand(batch_size, width, device=device).round()
    labels, mask = task.split(targets)
    autocast_dtype = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")

    def step():
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            loss = task.per_clip_loss(task.logits(net(x)), labels, mask).mean()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(warmup_steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    speed = steps * batch_size / (time.perf_counter() - started)
    print(f"model speed: {speed:.1f} training specs/s ({net_config.get('arch')}, batch {batch_size}, "
          f"{frames} frames, {device.type}, {precision})")
    return speed


def describe_batch(batch) -> str:
    """One line about a loader batch: shapes, dtypes and the first names."""
    if batch is None:
        return "batch: every clip failed to decode"
    waveforms, names, targets = batch
    return (f"waveforms {tuple(waveforms.shape)} {waveforms.dtype}, targets {tuple(targets.shape)} "
            f"{targets.dtype}, first clips: {', '.join(list(names)[:3])}")
