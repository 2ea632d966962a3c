"""One check of an experiment's whole config, run before any data is read or model is built.

Every problem names its config key and what is allowed; all problems are reported together.
"""

from __future__ import annotations

import inspect
import os
from typing import Mapping, Sequence

import pytorch_lightning as pl

from models.passt import patch_grid, patchout_problem
from models.registry import ARCHITECTURES, get_arch
from helpers.lightning1_keys import LIGHTNING1_KEYS, lightning1_problems, lightning2_options
from helpers.lightning_module import NONFINITE_LOSS_ACTIONS
from helpers.networks import load_training_checkpoint
from helpers.cluster import DDP_TIMEOUT_DEFAULT
from helpers.loaders import WORKER_START_METHODS
from helpers.preemption import signal_numbers
from models.weights import CheckpointError
from helpers.schedules import SCHEDULE_MODES
from helpers.swa import SWA_SNAPSHOTS

PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64-true")
PRECISION_ALIASES = {16: "16-mixed", "16": "16-mixed", 32: "32-true", "32": "32-true", 64: "64-true",
                     "64": "64-true", "bf16": "bf16-mixed"}
COMPILE_CHOICES = ("auto", True, False)
TRAINER_OWN_KEYS = {"callbacks", "logger", "plugins", "default_root_dir", "use_distributed_sampler"}


class ConfigError(ValueError):
    """The config cannot work; the message lists each offending key."""


def normalize_precision(precision) -> str:
    """Upstream's 16/32 and Lightning's names -> Lightning 2 names ("16-mixed", "32-true", ...)."""
    return "32-true" if precision is None else PRECISION_ALIASES.get(precision, precision)


def resume_path(resume: str | None) -> str | None:
    """The checkpoint `resume` names: a .ckpt file, or a run folder's checkpoints/last.ckpt."""
    if not resume:
        return None
    return os.path.join(resume, "checkpoints", "last.ckpt") if os.path.isdir(resume) else os.fspath(resume)


def _check_resume(resume, problems: list[str]) -> None:
    path = resume_path(resume)
    if not os.path.isfile(path):
        problems.append(f"resume: no checkpoint at {path!r}; allowed: a run folder holding checkpoints/last.ckpt, "
                        "or a .ckpt file")
        return
    try:
        load_training_checkpoint(path, mmap=True)
    except CheckpointError as error:
        problems.append(f"resume: {error}")


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_network(net: Mapping, problems: list[str], n_classes: int | None) -> None:
    arch_list = net.get("arch_list") or []
    members = [(entry[0], entry[1], entry[2]) for entry in arch_list if isinstance(entry, (list, tuple))
               and len(entry) >= 3] if arch_list else [(net.get("arch"), net.get("fstride"), net.get("tstride"))]
    if arch_list and len(members) != len(arch_list):
        problems.append("models.net.arch_list: entries must be (arch, fstride, tstride[, checkpoint])")
    for arch, fstride, tstride in members:
        if arch not in ARCHITECTURES:
            try:
                spec = get_arch(arch)
            except ValueError:
                problems.append(f"models.net.arch: unknown architecture {arch!r}; allowed: "
                                + ", ".join(sorted(ARCHITECTURES)))
                continue
        else:
            spec = get_arch(arch)
        fstride = spec.stride[0] if fstride is None else fstride
        tstride = spec.stride[1] if tstride is None else tstride
        input_fdim = net.get("input_fdim") or spec.input_size[0]
        input_tdim = net.get("input_tdim") or spec.input_size[1]
        if not (_is_positive_int(fstride) and _is_positive_int(tstride)):
            problems.append(f"models.net.fstride/tstride: must be positive integers, got {fstride!r}, {tstride!r}")
            continue
        if not (_is_positive_int(input_fdim) and _is_positive_int(input_tdim)) \
                or min(input_fdim, input_tdim) < spec.patch_size:
            problems.append(f"models.net.input_fdim/input_tdim: must be at least one patch ({spec.patch_size}), "
                            f"got {input_fdim!r}, {input_tdim!r}")
            continue
        grid_f, grid_t = patch_grid(input_fdim, input_tdim, spec.patch_size, (fstride, tstride))
        s_f, s_t, u = net.get("s_patchout_f", 0) or 0, net.get("s_patchout_t", 0) or 0, net.get("u_patchout", 0) or 0
        problem = patchout_problem((grid_f, grid_t), s_f, s_t, u)
        if problem:
            problems.append(f"models.net.s_patchout_f/s_patchout_t/u_patchout: ({s_f}, {s_t}, {u}) remove the whole "
                            f"{grid_f}x{grid_t} patch grid of {arch}; {problem}")
    if net.get("embed", "default") != "default":
        problems.append(f"models.net.embed: {net.get('embed')!r} is not available (upstream's 'overlap' and "
                        "'am_keepconv' name classes it never shipped); allowed: default")
    cut_depth = net.get("cut_depth", 0) or 0
    if not isinstance(cut_depth, int) or isinstance(cut_depth, bool):
        problems.append(f"models.net.cut_depth: must be an integer, got {cut_depth!r}")
    else:
        for arch, _, _ in members:
            try:
                depth = get_arch(arch).depth
            except ValueError:
                continue  # reported above
            if cut_depth > 0 and cut_depth > depth - 2:
                problems.append(f"models.net.cut_depth: {arch} has {depth} blocks, so cut_depth must lie in "
                                f"1..{depth - 2} (or <= 0), got {cut_depth}")
    if n_classes is not None and net.get("n_classes") != n_classes:
        problems.append(f"models.net.n_classes: the dataset has {n_classes} classes, got {net.get('n_classes')!r}")


def _check_trainer(trainer: Mapping, problems: list[str]) -> None:
    accepted = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"} - TRAINER_OWN_KEYS
    for key in sorted(set(trainer) - accepted - set(LIGHTNING1_KEYS)):
        problems.append(f"trainer.{key}: not a Lightning Trainer argument (or set by the experiment); allowed: "
                        + ", ".join(sorted(accepted)))
    legacy = lightning1_problems(trainer)
    problems += legacy
    if not legacy:
        trainer = lightning2_options(trainer)
    precision = normalize_precision(trainer.get("precision", "32-true"))
    if precision not in PRECISIONS:
        problems.append(f"trainer.precision: {trainer.get('precision')!r} is not a precision; allowed: "
                        + ", ".join(PRECISIONS) + " (or 16, 32, bf16)")
    elif precision.startswith("bf16") and _uses_cuda(trainer) and not _cuda_bf16():
        problems.append(f"trainer.precision: {precision} needs a GPU with bfloat16 support; allowed here: "
                        "16-mixed, 32-true")
    accelerator = trainer.get("accelerator", "auto")
    if accelerator in ("gpu", "cuda") and not _cuda_available():
        problems.append("trainer.accelerator: 'gpu' but no CUDA device is visible; allowed here: cpu, auto")


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def _cuda_bf16() -> bool:
    import torch
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _uses_cuda(trainer: Mapping) -> bool:
    return trainer.get("accelerator", "auto") in ("gpu", "cuda") or (
        trainer.get("accelerator", "auto") == "auto" and _cuda_available())


def check_config(config: Mapping, *, n_classes: int | None = None, files: Mapping[str, str] | None = None,
                 folders: Mapping[str, str] | None = None, training: bool = True,
                 choices: Mapping[str, Sequence] | None = None) -> None:
    """Raise `ConfigError` listing every problem of `config` (an experiment's `_config`).

    n_classes: the dataset's number of classes (checked against `models.net.n_classes` and
    `basedataset.num_of_classes`). files: config
    key -> path of each data file the command reads (they must exist); folders: the same for folders.
    training: check the training
    settings (learning rate, schedule, mixup, SWA) too. choices: an experiment's own top-level key -> its
    allowed values.
    """
    problems: list[str] = []
    for key, allowed in (choices or {}).items():
        if config.get(key) not in allowed:
            problems.append(f"{key}: {config.get(key)!r}; allowed: {', '.join(map(str, allowed))}")
    if training:
        if not (isinstance(config.get("lr"), (int, float)) and config["lr"] > 0):
            problems.append(f"lr: must be a number > 0, got {config.get('lr')!r}")
        if not (isinstance(config.get("weight_decay"), (int, float)) and config["weight_decay"] >= 0):
            problems.append(f"weight_decay: must be a number >= 0, got {config.get('weight_decay')!r}")
        if config.get("use_mixup") and not (isinstance(config.get("mixup_alpha"), (int, float))
                                            and config["mixup_alpha"] > 0):
            problems.append(f"mixup_alpha: must be > 0 when use_mixup, got {config.get('mixup_alpha')!r}")
        if config.get("schedule_mode") not in SCHEDULE_MODES:
            problems.append(f"schedule_mode: {config.get('schedule_mode')!r}; allowed: {', '.join(SCHEDULE_MODES)}")
        for key in ("warm_up_len", "ramp_down_start", "ramp_down_len"):
            if not (isinstance(config.get(key), int) and config[key] >= 0):
                problems.append(f"{key}: must be an integer >= 0, got {config.get(key)!r}")
        if config.get("schedule_mode") == "cos_cyc" and not config.get("warm_up_len"):
            problems.append("warm_up_len: is the cycle length of schedule_mode='cos_cyc' and must be >= 1")
        if config.get("swa"):
            for key in ("swa_epoch_start", "swa_freq"):
                if not _is_positive_int(config.get(key)):
                    problems.append(f"{key}: must be an integer >= 1 when swa, got {config.get(key)!r}")
        if config.get("nonfinite_loss") not in NONFINITE_LOSS_ACTIONS:
            problems.append(f"nonfinite_loss: {config.get('nonfinite_loss')!r}; allowed: "
                            + ", ".join(NONFINITE_LOSS_ACTIONS))
        if config.get("compile") not in COMPILE_CHOICES:
            problems.append(f"compile: {config.get('compile')!r}; allowed: auto, True, False")
        if config.get("resume") and config["resume"] != "auto":
            _check_resume(config["resume"], problems)
        ddp_timeout = config.get("ddp_timeout", DDP_TIMEOUT_DEFAULT)
        if not (isinstance(ddp_timeout, (int, float)) and not isinstance(ddp_timeout, bool) and ddp_timeout > 0):
            problems.append(f"ddp_timeout: must be a number of seconds > 0, got {ddp_timeout!r}")
        try:
            signal_numbers(config.get("preempt_signals"))
        except ValueError as error:
            problems.append(f"preempt_signals: {error}; allowed: a list of signal names such as SIGTERM, SIGUSR1 "
                            "(or [] for none)")
        if config.get("swa") and config.get("swa_snapshot", "epoch_start") not in SWA_SNAPSHOTS:
            problems.append(f"swa_snapshot: {config.get('swa_snapshot')!r}; allowed: {', '.join(SWA_SNAPSHOTS)}")
        for key in ("save_last_n", "save_best"):
            if config.get(key) is not None and not _is_positive_int(config[key]):
                problems.append(f"{key}: must be None or an integer >= 1, got {config[key]!r}")
        kd = config.get("kd") or {}
        if kd and not (isinstance(kd.get("teacher_weight"), (int, float)) and 0 <= kd["teacher_weight"] <= 1):
            problems.append(f"kd.teacher_weight: must lie in [0, 1], got {kd.get('teacher_weight')!r}")
        if kd and not (isinstance(kd.get("temperature"), (int, float)) and kd["temperature"] > 0):
            problems.append(f"kd.temperature: must be a number > 0, got {kd.get('temperature')!r}")
    if config.get("dyn_norm"):
        problems.append("dyn_norm: True is not supported (upstream never implemented dynamic normalisation and "
                        "stops with 'no dynamic norm supported yet'); allowed: False")
    dataset = config.get("basedataset", {})
    if n_classes is not None and dataset.get("num_of_classes", n_classes) != n_classes:
        problems.append(f"basedataset.num_of_classes: the dataset has {n_classes} classes, got "
                        f"{dataset['num_of_classes']!r}; allowed: {n_classes}")
    if dataset.get("normalize"):
        problems.append("basedataset.normalize: True is not supported (upstream's dataset normalisation calls "
                        "functions that do not exist); allowed: False")
    subset = dataset.get("eval_subset")
    if subset is not None and not (isinstance(subset, str) and os.path.isfile(subset)):
        problems.append(f"basedataset.eval_subset: no id list at {subset!r}; allowed: None, or a file of clip ids "
                        "(one a line, e.g. a report's present_eval_ids.txt)")
    for name, loader in (config.get("datasets") or {}).items():
        if isinstance(loader, Mapping) and loader.get("persistent_workers"):
            problems.append(f"datasets.{name}.persistent_workers: True would keep the previous epoch's dataset state "
                            "in the workers (each epoch's data depend on (seed, epoch)); allowed: False")
        if isinstance(loader, Mapping) and loader.get("multiprocessing_context", "forkserver") not in WORKER_START_METHODS:
            problems.append(f"datasets.{name}.multiprocessing_context: {loader['multiprocessing_context']!r}; allowed: "
                            + ", ".join(WORKER_START_METHODS))
        if name != "training" and isinstance(loader, Mapping) and loader.get("drop_last"):
            problems.append(f"datasets.{name}.drop_last: True would leave evaluation clips out; allowed: False")
    net, mel = config["models"]["net"], config["models"]["mel"]
    _check_network(net, problems, n_classes)
    if net.get("input_fdim") not in (None, mel.get("n_mels")):
        problems.append(f"models.net.input_fdim: must equal models.mel.n_mels ({mel.get('n_mels')}), "
                        f"got {net.get('input_fdim')!r}")
    for key in ("freqm", "timem"):
        if not (isinstance(mel.get(key), int) and mel[key] >= 0):
            problems.append(f"models.mel.{key}: must be an integer >= 0, got {mel.get(key)!r}")
    _check_trainer(config["trainer"], problems)
    for key, path in (files or {}).items():
        if not path or not os.path.isfile(path):
            problems.append(f"{key}: data file {path!r} does not exist")
    for key, path in (folders or {}).items():
        if not path or not os.path.isdir(path):
            problems.append(f"{key}: folder {path!r} does not exist")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


