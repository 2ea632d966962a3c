"""What every experiment script shares: the default config scopes, the module from the config, and the
fit / evaluate / speed-test procedures and commands. Launching is `helpers.launch`, the Trainer
`helpers.trainer`, the loaders `helpers.loaders` (re-exported here for the scripts)."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Callable, Mapping, Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from helpers.cluster import DDP_TIMEOUT_DEFAULT, peer_failures_in_one_line
from helpers.config_checks import ConfigError
from helpers.data.teacher import TeacherTargets, check_logits_file, logits_file_name
from helpers.launch import launch, run_directory  # noqa: F401  (the scripts' entry point)
from helpers.lightning_module import PaSSTModule
from helpers.loaders import (eval_subset, evaluation_loader, loader_config, loader_options,  # noqa: F401
                             clip_set_name, record_clip_sets, train_and_test_loaders, training_loader)
from helpers.logits import CHUNK_ROWS, LogitsSources, save_logits as save_logits_procedure
from helpers.networks import build_network
from helpers.preemption import PREEMPT_SIGNALS_DEFAULT, PreemptionCallback, fit_unless_preempted
from helpers.resuming import start_training
from helpers.schedules import make_lr_lambda
from helpers.swa import SWACallback
from helpers.tasks import Distilled
from helpers.trainer import build_trainer, resolve_precision, trainer_accelerator, trainer_config
from models.preprocess import AugmentMelSTFT

log = logging.getLogger(__name__)


# The config every experiment starts from (upstream's AudioSet values and key names). A sacred config scope
# (no docstring: sacred would make it a config entry), so its comments document `print_config`; each ex_*.py
# adds a scope with what differs for its dataset.
def common_config():
    cmd = " ".join(sys.argv)  # what upstream records of the run: its command line, job ids and process id
    saque_cmd, saque_id = os.environ.get("SAQUE_CMD", "").strip(), os.environ.get("SAQUE_ID", "").strip()
    slurm_job_id = os.environ.get("SLURM_JOB_ID", "").strip()
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        slurm_job_id = os.environ["SLURM_ARRAY_JOB_ID"].strip() + "_" + os.environ.get("SLURM_ARRAY_TASK_ID", "").strip()
    process_id = os.getpid()
    lr, adamw, weight_decay = 2e-5, True, 1e-4
    use_mixup = True  # spectrogram mixup
    mixup_alpha = 0.3
    schedule_mode = "exp_lin"  # exp_lin | cos_cyc | constant, per epoch
    warm_up_len, ramp_down_start, ramp_down_len, last_lr_value = 5, 50, 50, 0.01
    swa = True  # stochastic weight averaging from epoch swa_epoch_start, every swa_freq epochs
    swa_epoch_start, swa_freq = 50, 5
    swa_snapshot = "epoch_start"  # epoch_start: upstream's timing (never the final weights) | epoch_end: one later
    swa_validate_every_epoch = False  # False: validate the average on its update epochs only (upstream)
    dyn_norm = False  # upstream's dynamic spectrogram normalisation, which upstream never implemented (True refused)
    save_last_n = None  # N: also keep the checkpoints of the last N epochs (upstream's save_last_n)
    watch_model = True  # with wandb.enabled: log gradients and weights every 1000 steps (upstream)
    compile = "auto"  # torch.compile the net: auto = on GPU only
    nonfinite_loss = "stop"  # stop | skip a batch whose loss is NaN/inf
    # knowledge distillation: per clip (1 - teacher_weight) * loss(labels) + teacher_weight * loss(teacher's
    # sigmoid (ESC-50: softmax) of logits / temperature); teacher_logits: save_logits' file(s) or folder
    kd = dict(teacher_logits=None, teacher_weight=0.9, temperature=1.0)
    resume = None  # run folder or .ckpt to continue from, or auto: the newest checkpoint of a run of this config
    ddp_timeout = DDP_TIMEOUT_DEFAULT  # seconds a rank waits in a collective for the others, then the job fails
    preempt_signals = PREEMPT_SIGNALS_DEFAULT  # stop at the next step with a checkpoint, INTERRUPTED ([]: off)
    speed_test_batch_size = 100
    spectrogram_batches = 2  # PNGs of the first training batches
    wandb = dict(enabled=False, project="passt", log_model=True)  # other keys go to Lightning's WandbLogger
    models = dict(
        mel=dict(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48, timem=192, htk=False,
                 fmin=0.0, fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000),
        # arch: upstream get_model's default, the distilled PaSST-S (mAP .486), is where fine-tuning starts
        net=dict(arch="passt_s_kd_p16_128_ap486", pretrained=True, n_classes=527, in_channels=1, fstride=10,
                 tstride=10, input_fdim=128, input_tdim=998, u_patchout=0, s_patchout_t=40, s_patchout_f=4,
                 drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0, arch_list=[], checkpoint=None,
                 checkpoint_weights="net",
                 cut_depth=0,  # upstream's lighten_model: N > 0 drops blocks 1..N, N < 0 keeps every -N-th
                 embed="default"))  # upstream's patch-embedding switch; only "default" exists
    trainer = trainer_config(max_epochs=130, precision="16-mixed", benchmark=True, num_sanity_val_steps=0)


# The `basedataset` ingredient's defaults shared by every dataset (a sacred config scope, like common_config);
# each ex_*.py adds a scope with its files and what differs.
def common_dataset_config():
    base_dir = "audioset_hdf5s/"  # holds mp3/*.hdf (see the dataset's README), or make a link
    sample_rate, clip_length, in_mem = 32000, 10, False
    gain_augment = 7  # random gain of +-7 dB
    ir_augment, ir_path = 0.0, base_dir + "irs/"
    cut_irs_offset = None  # N: use only impulse responses N..N+9 of the sorted files (upstream)
    roll = True  # random time roll of the waveform (roll_conf)
    roll_conf = dict(axis=1, shift=None, shift_range=50)
    wavmix = 1  # waveform mixup of clip pairs (0: off)
    normalize = False  # upstream's dataset normalisation, which upstream never implemented (True refused)
    subsample = False  # unused, as upstream
    fold = 1  # ESC-50's test fold; unused by the other datasets, as upstream
    eval_subset = None  # a file of clip ids (one a line): score only those clips of the eval set (README: Data report)


# --- knowledge distillation ------------------------------------------------------------------------
def teacher_files(config: Mapping, training_files: Sequence[str]) -> list[str] | None:
    """The teacher logits file of each training file (in order) that `kd.teacher_logits` names: a list of
    files, one file (one training file), or a folder holding save_logits' `<file stem>.logits.hdf`; None
    without distillation."""
    spec = (config.get("kd") or {}).get("teacher_logits")
    if not spec:
        return None
    if isinstance(spec, (list, tuple)):
        files = [os.fspath(path) for path in spec]
    elif os.path.isdir(spec):
        files = [os.path.join(spec, logits_file_name(path)) for path in training_files]
    else:
        files = [os.fspath(spec)]
    if len(files) != len(training_files):
        raise ConfigError(f"kd.teacher_logits: {len(files)} file(s) for {len(training_files)} training file(s) "
                          f"({', '.join(training_files)}); give one per training file, in that order, or a folder")
    return files


def check_teachers(config: Mapping, training_files: Sequence[str]) -> dict | None:
    """Before any work: every teacher file fits its training file (names, rows) and the head (classes), or
    ConfigError naming the file and the first difference. Returns the clip and missing-row counts."""
    files = teacher_files(config, training_files)
    if files is None:
        return None
    counts = {"clips": 0, "missing": 0}
    for logits, dataset in zip(files, training_files):
        try:
            found = check_logits_file(logits, dataset, config["models"]["net"]["n_classes"])
        except (OSError, ValueError) as error:
            raise ConfigError(f"invalid config:\n  kd.teacher_logits: {error}") from error
        counts["clips"] += found["rows"]
        counts["missing"] += found["missing"]
    log.info("distillation: teacher logits for %d training clips, %d without a teacher row (they get the label "
             "term only); teacher weight %s, temperature %s", counts["clips"], counts["missing"],
             config["kd"]["teacher_weight"], config["kd"]["temperature"])
    return counts


def teacher_targets(config: Mapping, training_files: Sequence[str], activation: str = "sigmoid"):
    """One `TeacherTargets` per training file (the `target_extensions` of `make_training_set`), or None."""
    files = teacher_files(config, training_files)
    if files is None:
        return None
    return [TeacherTargets(path, config["kd"]["temperature"], activation) for path in files]


def distilled(task, config: Mapping):
    """`task` with the distillation loss when `kd.teacher_logits` is set."""
    if not (config.get("kd") or {}).get("teacher_logits"):
        return task
    classes = config["models"]["net"]["n_classes"]
    own_width = 2 * task.n_labels if hasattr(task, "n_labels") else classes
    return Distilled(task, classes, config["kd"]["teacher_weight"], own_width)


# --- the module from the config ----------------------------------------------------------------------
def build_module(config: Mapping, task, training: bool = True) -> PaSSTModule:
    """The PaSSTModule of an experiment config: `models.mel` -> AugmentMelSTFT, `models.net` ->
    `helpers.networks.build_network`, top-level optimisation, mixup, SWA and schedule settings."""
    accelerator = trainer_accelerator(config["trainer"])
    compile_net = config.get("compile", "auto")
    compile_net = accelerator == "gpu" if compile_net == "auto" else bool(compile_net)
    return PaSSTModule(
        net=build_network(**config["models"]["net"]), mel=AugmentMelSTFT(**config["models"]["mel"]), task=task,
        lr=config["lr"], weight_decay=config["weight_decay"], adamw=config.get("adamw", True),
        lr_lambda=make_lr_lambda(config["schedule_mode"], config["warm_up_len"], config["ramp_down_start"],
                                 config["ramp_down_len"], config["last_lr_value"]),
        mixup_alpha=config["mixup_alpha"] if config["use_mixup"] else None,
        with_swa=bool(config["swa"]) and training, nonfinite_loss=config.get("nonfinite_loss", "stop"),
        compile_net=compile_net and training, eval_windowing=bool(config.get("eval_windowing", False)))


# --- procedures ------------------------------------------------------------------------------------
def named_loaders(loaders: DataLoader | Mapping[str, DataLoader]) -> dict[str, DataLoader]:
    """{metric prefix: loader}: one loader is the unprefixed set; a mapping names several (FSD50K's
    {"valid_": ..., "eval_": ...})."""
    return dict(loaders) if isinstance(loaders, Mapping) else {"": loaders}


def train(config: Mapping, run, experiment_name: str, task, loaders: Callable[[Mapping], tuple]):
    """Fit the configured module, validating every epoch on the evaluation loaders (the first set's
    `task.monitor` picks the best checkpoint); returns the run's result (final and best figures, checkpoint
    paths). `loaders(config)` -> (training loader, evaluation loader(s)[, loader(s) that score the best
    checkpoint after training]), built once every rank has the run's seed (`start_training`). A pre-empted
    fit raises `RunPreempted` after its checkpoint."""
    config, resumed = start_training(config, run, experiment_name)
    train_loader, eval_loaders, *final = loaders(config)
    final_eval_loaders = final[0] if final else None
    pl.seed_everything(config["seed"], workers=True, verbose=False)
    run_dir = run_directory(run, experiment_name)
    module = build_module(config, task)
    eval_loaders = named_loaders(eval_loaders)
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
    clip_sets = record_clip_sets(run, {**eval_loaders, **named_loaders(final_eval_loaders or {})})
    preemption = next((callback for callback in trainer.callbacks if isinstance(callback, PreemptionCallback)), None)
    fit_unless_preempted(trainer, preemption, module, train_loader, list(eval_loaders.values()),
                         ckpt_path=resumed and resumed["checkpoint"])
    checkpoint, last = trainer.checkpoint_callbacks[:2]
    result = {key: float(value) for key, value in trainer.callback_metrics.items()}
    result.update(epochs=trainer.current_epoch, run_dir=run_dir, best_checkpoint=checkpoint.best_model_path,
                  last_checkpoint=last.best_model_path)
    if checkpoint.best_model_score is not None:
        result["best_" + monitor] = float(checkpoint.best_model_score)
    if final_eval_loaders is not None:
        final_eval_loaders = named_loaders(final_eval_loaders)
        module.validation_sets = tuple(final_eval_loaders)
        trainer.validate(module, list(final_eval_loaders.values()), ckpt_path=result["best_checkpoint"] or None,
                         verbose=False)
        result.update({key: float(value) for key, value in trainer.callback_metrics.items()
                       if key.startswith(module.validation_sets)})
    result.update(clip_sets)
    if trainer.is_global_zero:
        print(final_line(result, task.monitor, [*eval_loaders, *(final_eval_loaders or {})]))
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


def evaluate(config: Mapping, run, experiment_name: str, task,
             eval_loaders: DataLoader | Mapping[str, DataLoader]):
    """Validate the configured network (release model, checkpoint or ensemble) once on each of `eval_loaders`;
    returns the metrics and, per set, how many clips were left out (`<set>excluded_clips`)."""
    pl.seed_everything(config["seed"], verbose=False)
    run_dir = run_directory(run, experiment_name)
    module = build_module(config, task, training=False)
    eval_loaders = named_loaders(eval_loaders)
    module.validation_sets = tuple(eval_loaders)
    trainer = build_trainer(config["trainer"], run, run_dir, task.monitor, checkpoints=False)
    clip_sets = record_clip_sets(run, eval_loaders)
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
    targets = torch.rand(batch_size, net_config["n_classes"] * (2 if hasattr(task, "n_labels") else 1),
                         device=device).round()
    labels, mask = task.split(targets)
    autocast_dtype = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")

    def step():
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            loss = task.per_clip_loss(net(x)[0], labels, mask).mean()
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


def add_standard_commands(ex, task, loaders: Callable, check: Callable, loader_names: Sequence[str],
                          train_doc: str, evaluated_on: str,
                          training_files: Callable[[Mapping], Sequence[str]] | None = None,
                          logits: LogitsSources | None = None) -> None:
    """Register an experiment's commands: train (the default), evaluate_only, model_speed_test, test_loaders,
    and with `logits` (the files and evaluation set it reads) save_logits.

    task: a `helpers.tasks` object, or a function config -> task (a task with config switches).
    loaders(config, training) -> (training loader, validation loader(s)[, loader(s) that score the best
    checkpoint after training]) when `training`, else (None, the loader(s) `evaluate_only` scores); several
    loaders come as {metric prefix: loader}. check(config, training, with_files) raises ConfigError before
    any work. training_files(config): the training files in the order the training set concatenates them
    (distillation reads one teacher logits file per training file).
    """

    def task_for(config):
        return task(config) if callable(task) else task

    def run_training(_config, _run):
        check(_config, training=True)
        teachers = check_teachers(_config, training_files(_config)) if training_files else None
        if teachers:
            _run.info["distillation"] = teachers
        with peer_failures_in_one_line():
            return train(_config, _run, ex.path, distilled(task_for(_config), _config),
                         lambda config: loaders(config, training=True))

    def evaluate_only(_config, _run):
        check(_config, training=False)
        with peer_failures_in_one_line():
            return evaluate(_config, _run, ex.path, task_for(_config), loaders(_config, training=False)[1])

    def model_speed_test(_config, speed_test_batch_size):
        """Training speed (spectrograms/s) of the configured network on random input."""
        check(_config, training=True, with_files=False)
        return speed_test(_config, task_for(_config), speed_test_batch_size)

    def test_loaders(_config):
        """Load one batch from each loader and describe it."""
        check(_config, training=True)
        built = [loader for entry in loaders(_config, training=True)
                 for loader in (entry.values() if isinstance(entry, Mapping) else [entry])]
        for name, loader in zip(loader_names, built):
            print(f"{name}: {len(loader.dataset)} clips; {describe_batch(next(iter(loader)))}")

    def save_logits(_config, out=None, split=None, chunk_rows=CHUNK_ROWS):
        """Teacher logits of every clip of a file, in file order, no augmentation: `with out=FILE split=KEY`
        (a basedataset file key), or `out=FOLDER/` (split= one file, else every training file, each as
        FOLDER/<file stem>.logits.hdf). DDP=N shares the clips out; rerun with the same out= to continue."""
        check(_config, training=False, with_files=False)
        files = training_files(_config) if training_files and split is None else []
        with peer_failures_in_one_line():
            return save_logits_procedure(_config, logits, files, out, split,
                                         lambda: build_module(_config, task_for(_config), training=False), chunk_rows)

    run_training.__name__, run_training.__doc__ = "train", train_doc
    evaluate_only.__doc__ = (f"Evaluate the configured network (release model, models.net.checkpoint or an "
                             f"ensemble) on {evaluated_on}.")
    ex.main(run_training)
    for command in (evaluate_only, model_speed_test, test_loaders) + ((save_logits,) if logits else ()):
        ex.command(command)


def describe_batch(batch) -> str:
    """One line about a loader batch: shapes, dtypes and the first names."""
    if batch is None:
        return "batch: every clip failed to decode"
    waveforms, names, targets = batch
    return (f"waveforms {tuple(waveforms.shape)} {waveforms.dtype}, targets {tuple(targets.shape)} "
            f"{targets.dtype}, first clips: {', '.join(list(names)[:3])}")

