"""Upstream's Lightning-1 `trainer.*` keys on Lightning 2: each is in the config tree (None = not set) and is
either mapped to its Lightning-2 form or, where Lightning 2 has no equivalent here, refused before any work
with a message naming the replacement. A value equal to Lightning 1's own default is accepted as a no-op, so
a config written by upstream's `print_config` / `save_config` still runs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

NOT_SET = None


@dataclass(frozen=True)
class Lightning1Key:
    lightning1_default: Any  # a value equal to this is a no-op
    replacement: str  # named in the error for values that cannot be mapped
    mapping: Callable[[Any], dict | None] | None = None  # value -> Lightning-2 options; None: cannot map


def _gpus(value) -> dict | None:
    if value in (0, "0", []):
        return {"accelerator": "cpu"}
    if isinstance(value, bool):
        return None
    under_torchrun = "LOCAL_WORLD_SIZE" in os.environ  # DDP=N: one GPU per process, devices set by torchrun
    if isinstance(value, int) and (value > 0 or value == -1):
        return {"accelerator": "gpu"} if under_torchrun else {"accelerator": "gpu", "devices": value}
    if isinstance(value, (list, tuple)) or (isinstance(value, str) and value.replace(",", "").strip().isdigit()):
        devices = [int(v) for v in (value.split(",") if isinstance(value, str) else value) if str(v).strip()]
        return {"accelerator": "gpu"} if under_torchrun else {"accelerator": "gpu", "devices": devices}
    return None


def _weights_summary(value) -> dict | None:
    return {"top": {"enable_model_summary": True}, "full": {"enable_model_summary": True, "model_summary_depth": -1}
            }.get(value)


def _only(value_to_options: Mapping) -> Callable[[Any], dict | None]:
    return lambda value: value_to_options.get(value)


LIGHTNING1_KEYS: dict[str, Lightning1Key] = {
    "gpus": Lightning1Key(None, "trainer.devices=N with trainer.accelerator=gpu", _gpus),
    "weights_summary": Lightning1Key("top", "trainer.enable_model_summary=False (no summary), or top | full",
                                     _weights_summary),
    "reload_dataloaders_every_epoch": Lightning1Key(False, "trainer.reload_dataloaders_every_n_epochs=1",
                                                    _only({True: {"reload_dataloaders_every_n_epochs": 1}})),
    "progress_bar_refresh_rate": Lightning1Key(
        None, "trainer.enable_progress_bar", lambda value: {"enable_progress_bar": False} if value == 0 else (
            {"progress_bar_refresh_rate": value} if isinstance(value, int) and value > 0 else None)),
    "checkpoint_callback": Lightning1Key(True, "trainer.enable_checkpointing",
                                         _only({False: {"enable_checkpointing": False}})),
    "distributed_backend": Lightning1Key(None, "trainer.strategy (ddp, ...)", lambda value: {"strategy": value}
                                         if value in ("ddp", "ddp_spawn", "dp") else None),
    "amp_backend": Lightning1Key("native", "trainer.precision=16-mixed (native AMP is the only backend)"),
    "amp_level": Lightning1Key("O2", "trainer.precision=16-mixed (apex AMP is gone)"),
    "terminate_on_nan": Lightning1Key(False, "nonfinite_loss=stop (the default: a NaN/inf loss stops the run) "
                                             "or nonfinite_loss=skip", _only({True: {}})),
    "resume_from_checkpoint": Lightning1Key(None, "resume=<run folder or .ckpt>"),
    "stochastic_weight_avg": Lightning1Key(False, "swa=True (with swa_epoch_start, swa_freq)"),
    "num_processes": Lightning1Key(1, "DDP=N python ex_*.py with trainer.accelerator=cpu"),
    "tpu_cores": Lightning1Key(None, "trainer.accelerator=tpu with trainer.devices=N"),
    "ipus": Lightning1Key(None, "nothing: Lightning 2 has no IPU accelerator"),
    "auto_select_gpus": Lightning1Key(False, "trainer.devices (e.g. -1 for every GPU)"),
    "log_gpu_memory": Lightning1Key(None, "nothing here (Lightning 2's DeviceStatsMonitor callback)"),
    "track_grad_norm": Lightning1Key(-1, "nothing here (Lightning 2's grad_norm utility)"),
    "auto_lr_find": Lightning1Key(False, "nothing here (Lightning 2's Tuner)"),
    "auto_scale_batch_size": Lightning1Key(False, "nothing here (Lightning 2's Tuner)"),
    "replace_sampler_ddp": Lightning1Key(True, "nothing: the experiments' samplers shard by rank themselves"),
    "truncated_bptt_steps": Lightning1Key(None, "nothing: PaSST is not recurrent"),
    "weights_save_path": Lightning1Key(None, "-F DIR (checkpoints go to the run folder)"),
    "process_position": Lightning1Key(0, "nothing: Lightning 2 places progress bars itself"),
    "flush_logs_every_n_steps": Lightning1Key(100, "nothing: Lightning 2's loggers flush themselves"),
    "move_metrics_to_cpu": Lightning1Key(False, "nothing: metrics are computed on gathered CPU copies"),
    "multiple_trainloader_mode": Lightning1Key("max_size_cycle", "nothing: every experiment has one training loader"),
    "prepare_data_per_node": Lightning1Key(True, "nothing: the experiments have no prepare_data step"),
}

# Lightning 1 also took a distributed backend as the accelerator (upstream's DDP runs set trainer.accelerator=ddp)
LIGHTNING1_ACCELERATOR_STRATEGIES = ("ddp", "ddp_spawn", "dp", "ddp_cpu")


def _translate(key: str, value) -> dict | None:
    spec = LIGHTNING1_KEYS[key]
    if value is NOT_SET or value == spec.lightning1_default:
        return {}
    return spec.mapping(value) if spec.mapping else None


def lightning1_problems(trainer: Mapping) -> list[str]:
    """One line per Lightning-1 key whose value has no Lightning-2 form, naming the replacement."""
    problems = []
    for key, spec in LIGHTNING1_KEYS.items():
        if key in trainer and _translate(key, trainer[key]) is None:
            problems.append(f"trainer.{key}={trainer[key]!r}: a Lightning 1 argument that Lightning 2 dropped; "
                            f"use {spec.replacement}")
    return problems


def lightning2_options(trainer: Mapping) -> dict:
    """The `trainer` config with every Lightning-1 key replaced by its Lightning-2 form (call
    `lightning1_problems` first). May hold `model_summary_depth` and `progress_bar_refresh_rate`, which the
    trainer builder turns into callbacks."""
    options = {key: value for key, value in trainer.items() if key not in LIGHTNING1_KEYS}
    for key in LIGHTNING1_KEYS:
        options.update(_translate(key, trainer.get(key, NOT_SET)) or {})
    if options.get("accelerator") in LIGHTNING1_ACCELERATOR_STRATEGIES:
        strategy = options.pop("accelerator")
        options["strategy"] = "ddp" if strategy == "ddp_cpu" else strategy
        options["accelerator"] = "cpu" if strategy == "ddp_cpu" else "auto"
    return options
