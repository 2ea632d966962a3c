"""The small glue between sacred and Lightning: launching (DDP, observers), the Trainer from the `trainer`
config, loggers (sacred run metrics through a Lightning logger), loaders, the module from the config,
and the fit / evaluate / speed-test procedures every experiment script shares."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import sys
import tempfile
import time
from typing import Callable, Mapping, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from sacred.observers import FileStorageObserver
from torch.utils.data import DataLoader, Dataset, Sampler

from helpers.config_checks import TRAINER_OWN_KEYS, normalize_precision, resume_path
from helpers.data import DistributedShardSampler, collate_drop_failed, seed_worker, set_dataset_epoch
from helpers.lightning_module import PaSSTModule
from helpers.networks import build_network, load_training_checkpoint
from helpers.plots import SpectrogramPictures, TrainingCurves
from helpers.schedules import make_lr_lambda
from helpers.swa import SWACallback
from models.preprocess import AugmentMelSTFT

log = logging.getLogger(__name__)

OBSERVER_FLAGS = ("-F", "--file_storage", "-m", "--mongo_db", "-s", "--sql", "-t", "--tiny_db", "-u",
                  "--unobserved", "-S", "--s3")
UNOBSERVED_COMMANDS = {"help", "print_config", "print_named_configs", "print_dependencies", "save_config",
                       "test_loaders", "preload_mp3", "model_speed_test"}


# --- launching ---------------------------------------------------------------------------------------
def global_rank() -> int:
    return int(os.environ.get("RANK", 0))


def launch(ex, argv: list[str] | None = None):
    """Run the sacred command line of `ex`.

    - `DDP=N` re-executes the command under `torch.distributed.run` with N processes on this node
      (`NUM_NODES`, `NODE_RANK`, `MASTER_ADDR`, `MASTER_PORT` for several nodes); a rank that fails stops
      all of them. Only rank 0 is observed (the others run with `-u`).
    - Runs that train or evaluate get a file storage observer in `runs/<experiment>/` unless the command
      line names observers (`-F DIR`, `-m HOST:PORT:DB`, ...) or `-u`.
    """
    argv = list(sys.argv if argv is None else argv)
    if os.environ.get("DDP") and "TORCHELASTIC_RUN_ID" not in os.environ:
        _exec_torchrun(int(os.environ["DDP"]), argv)
    if global_rank() != 0:
        argv.insert(1, "-u")
        logging.getLogger().setLevel(logging.WARNING)
    command = next((arg for arg in argv[1:] if not arg.startswith("-")), None)
    observed = command in (None, "with") or command not in UNOBSERVED_COMMANDS
    if observed and not any(arg.split("=")[0] in OBSERVER_FLAGS for arg in argv[1:]):
        ex.observers.append(FileStorageObserver(os.path.join("runs", ex.path)))
    return ex.run_commandline(argv)


def _exec_torchrun(processes: int, argv: list[str]) -> None:
    nodes = int(os.environ.get("NUM_NODES", 1))
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}", f"--nnodes={nodes}"]
    if nodes == 1:
        command.append("--standalone")
    else:
        command += [f"--node_rank={os.environ.get('NODE_RANK', 0)}",
                    f"--master_addr={os.environ.get('MASTER_ADDR', '127.0.0.1')}",
                    f"--master_port={os.environ.get('MASTER_PORT', 29500)}"]
    logging.getLogger(__name__).info("DDP=%d: starting %d processes per node on %d node(s)", processes, processes,
                                     nodes)
    sys.stdout.flush()
    os.execv(sys.executable, command + argv)


def ddp_trainer_defaults() -> dict:
    """`devices`, `num_nodes` and `strategy` for the `trainer` config: from torchrun's environment under
    `DDP=N`, a single device otherwise."""
    if "LOCAL_WORLD_SIZE" in os.environ or os.environ.get("DDP"):
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("DDP", 1)))
        world = int(os.environ.get("WORLD_SIZE", per_node * int(os.environ.get("NUM_NODES", 1))))
        return {"devices": per_node, "num_nodes": max(world // per_node, 1), "strategy": "ddp"}
    return {"devices": 1, "num_nodes": 1, "strategy": "auto"}


def trainer_config(**overrides) -> dict:
    """Every Lightning Trainer argument with its default (so each is overridable as `trainer.<name>=...`),
    except those the experiment sets itself, updated with `overrides` and the DDP defaults."""
    signature = inspect.signature(pl.Trainer.__init__).parameters
    config = {name: parameter.default for name, parameter in signature.items()
              if name != "self" and name not in TRAINER_OWN_KEYS}
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(f"not Trainer arguments: {', '.join(sorted(unknown))}")
    return {**config, **ddp_trainer_defaults(), **overrides}


# The config every experiment starts from (upstream's AudioSet values). A sacred config scope (no docstring:
# sacred would make it a config entry), so its comments document `print_config`; each ex_*.py adds a scope
# with what differs for its dataset.
def common_config():
    lr, adamw, weight_decay = 2e-5, True, 1e-4
    use_mixup = True  # spectrogram mixup
    mixup_alpha = 0.3
    schedule_mode = "exp_lin"  # exp_lin | cos_cyc | constant, per epoch
    warm_up_len, ramp_down_start, ramp_down_len, last_lr_value = 5, 50, 50, 0.01
    swa = True  # average the weights after epoch swa_epoch_start and every swa_freq epochs after it
    swa_epoch_start, swa_freq = 50, 5
    compile = "auto"  # torch.compile the net: auto = on GPU only
    nonfinite_loss = "stop"  # stop | skip a batch whose loss is NaN/inf
    resume = None  # run folder or .ckpt to continue from
    speed_test_batch_size = 100
    spectrogram_batches = 2  # PNGs of the first training batches
    wandb = dict(enabled=False, project="passt")
    models = dict(
        mel=dict(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48, timem=192, htk=False,
                 fmin=0.0, fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000),
        net=dict(arch="passt_s_swa_p16_128_ap476", pretrained=True, n_classes=527, in_channels=1, fstride=10,
                 tstride=10, input_fdim=128, input_tdim=998, u_patchout=0, s_patchout_t=40, s_patchout_f=4,
                 drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0, arch_list=[], checkpoint=None,
                 checkpoint_weights="net"))
    trainer = trainer_config(max_epochs=130, precision="16-mixed", benchmark=True, num_sanity_val_steps=0)


# The `basedataset` ingredient's defaults shared by every dataset (a sacred config scope, like common_config);
# each ex_*.py adds a scope with its files and what differs.
def common_dataset_config():
    base_dir = "audioset_hdf5s/"  # holds mp3/*.hdf (see the dataset's README), or make a link
    sample_rate, clip_length, in_mem = 32000, 10, False
    gain_augment = 7  # random gain of +-7 dB
    ir_augment, ir_path = 0.0, base_dir + "irs/"
    roll = True  # random time roll of the waveform (roll_conf)
    roll_conf = dict(axis=1, shift=None, shift_range=50)
    wavmix = 1  # waveform mixup of clip pairs (0: off)


def run_directory(run, experiment_name: str) -> str | None:
    """The folder for logs, checkpoints and pictures: the file storage observer's run folder, else
    `runs/<experiment>/unobserved-<time>`; None on ranks other than 0."""
    if global_rank() != 0:
        return None
    for observer in run.observers:
        if isinstance(observer, FileStorageObserver) and getattr(observer, "dir", None):
            return observer.dir
    os.makedirs(os.path.join("runs", experiment_name), exist_ok=True)
    return tempfile.mkdtemp(prefix=time.strftime("unobserved-%Y%m%d-%H%M%S-"), dir=os.path.join("runs", experiment_name))


# --- Lightning pieces --------------------------------------------------------------------------------
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

    def __init__(self, run_id):
        super().__init__()
        self.run_id = run_id

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return {"run": self.run_id, **metrics} if self.run_id is not None else metrics


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file next to it, syncs it and renames it into place, so a
    process killed (or a write failing) while saving leaves the previous checkpoint intact; a failed write
    removes its temporary file. Reads checkpoints with `weights_only=True` (`load_training_checkpoint`)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = os.fspath(path)
        directory = os.path.dirname(path) or "."
        os.makedirs(directory, exist_ok=True)
        temporary = f"{path}.partial-{os.getpid()}"
        try:
            with open(temporary, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)
            raise
        descriptor = os.open(directory, os.O_RDONLY)  # make the rename itself durable
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return load_training_checkpoint(os.fspath(path))


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
                  spectrogram_batches: int = 2, wandb: Mapping | None = None, checkpoints: bool = True) -> pl.Trainer:
    """A Trainer from the `trainer` config with this project's loggers (TensorBoard, CSV, sacred,
    optionally Weights & Biases) and callbacks (checkpoints last + best by `monitor`, SWA,
    pictures)."""
    options = dict(trainer_config)
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
    callbacks = [RunProgressBar(getattr(run, "_id", None))] if options.get("enable_progress_bar") is not False else []
    if checkpoints:  # (Lightning's save_last only writes when the best one changes)
        directory = os.path.join(run_dir, "checkpoints") if run_dir else None
        callbacks += [ModelCheckpoint(dirpath=directory, filename="best-epoch{epoch:03d}", monitor=monitor,
                                      mode="max", save_top_k=1, auto_insert_metric_name=False),
                      ModelCheckpoint(dirpath=directory, filename="last", enable_version_counter=False)]
    if swa_callback is not None:
        callbacks.append(swa_callback)
    if run_dir:
        callbacks += [SpectrogramPictures(os.path.join(run_dir, "spectrograms"), spectrogram_batches),
                      TrainingCurves(os.path.join(run_dir, "training_curves.png"), monitor)]
    return pl.Trainer(**options, logger=loggers, callbacks=callbacks, plugins=[AtomicCheckpointIO()],
                      default_root_dir=logs_dir, use_distributed_sampler=False)


# --- data loaders ------------------------------------------------------------------------------------
class EpochLoader(DataLoader):
    """A training DataLoader whose epoch is a function of (seed, epoch) alone: nothing carries over from
    one epoch to the next, so a run resumed at an epoch boundary repeats the uninterrupted run.

    Each iteration starts (lazily, at the first batch, after Lightning has called the sampler's
    `set_epoch`) by passing the sampler's epoch to the dataset pipeline (`set_dataset_epoch`: augmentation
    draws from (seed, epoch, clip)) and seeding the loader's own generator, from which the workers' seeds
    are drawn, with (seed, epoch). torch's global generator is not touched.
    """

    def __init__(self, dataset: Dataset, seed: int, sampler: Sampler, **options):
        if not hasattr(sampler, "set_epoch") or not hasattr(sampler, "epoch"):
            raise TypeError(f"{type(sampler).__name__} has no set_epoch/epoch; the epoch seeds the data")
        if options.get("persistent_workers"):
            raise ValueError("persistent workers would keep the previous epoch's dataset state")
        super().__init__(dataset, sampler=sampler, generator=torch.Generator(), **options)
        self.seed = int(seed)

    def __iter__(self):
        epoch = int(self.sampler.epoch)
        set_dataset_epoch(self.dataset, epoch)
        self.generator.manual_seed(int(np.random.SeedSequence([self.seed, epoch]).generate_state(1, np.uint64)[0] >> 1))
        yield from super().__iter__()


def training_loader(dataset: Dataset, batch_size: int, num_workers: int, seed: int,
                    sampler: Sampler | None = None) -> DataLoader:
    """Batches for training (an `EpochLoader`); without a `sampler`, every clip once per epoch, shuffled
    by (seed, epoch) and sharded over DDP ranks. Lightning calls the sampler's `set_epoch` every epoch."""
    sampler = sampler or DistributedShardSampler(len(dataset), shuffle=True, seed=seed, even=True)
    return EpochLoader(dataset, seed, sampler, batch_size=batch_size, num_workers=num_workers, drop_last=False,
                       worker_init_fn=seed_worker, pin_memory=torch.cuda.is_available())


def evaluation_loader(dataset: Dataset, batch_size: int, num_workers: int) -> DataLoader:
    """Batches for evaluation: each clip exactly once over all ranks, failed clips dropped. Its own
    generator keeps validation from drawing on torch's global one (which training's randomness uses)."""
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_drop_failed,
                      sampler=DistributedShardSampler(len(dataset), shuffle=False, even=False),
                      worker_init_fn=seed_worker, generator=torch.Generator().manual_seed(0),
                      pin_memory=torch.cuda.is_available())


def train_and_test_loaders(config: Mapping, training: bool, make_training_set: Callable[..., Dataset],
                           make_test_set: Callable[[], Dataset]) -> tuple[DataLoader | None, DataLoader]:
    """(training loader, test loader) from `datasets.training` and `datasets.test`; `make_training_set(seed=)`
    is called only when `training` (otherwise the training loader is None)."""
    train_cfg, test_cfg = config["datasets"]["training"], config["datasets"]["test"]
    test_loader = evaluation_loader(make_test_set(), test_cfg["batch_size"], test_cfg["num_workers"])
    if not training:
        return None, test_loader
    return training_loader(make_training_set(seed=config["seed"]), train_cfg["batch_size"], train_cfg["num_workers"],
                           config["seed"]), test_loader


# --- the module from the config ----------------------------------------------------------------------
def build_module(config: Mapping, task, training: bool = True) -> PaSSTModule:
    """The PaSSTModule of an experiment config: `models.mel` -> AugmentMelSTFT, `models.net` ->
    `helpers.networks.build_network`, top-level optimisation, mixup, SWA and schedule settings."""
    accelerator = resolve_accelerator(config["trainer"].get("accelerator", "auto"))
    compile_net = config.get("compile", "auto")
    compile_net = accelerator == "gpu" if compile_net == "auto" else bool(compile_net)
    return PaSSTModule(
        net=build_network(**config["models"]["net"]), mel=AugmentMelSTFT(**config["models"]["mel"]), task=task,
        lr=config["lr"], weight_decay=config["weight_decay"], adamw=config.get("adamw", True),
        lr_lambda=make_lr_lambda(config["schedule_mode"], config["warm_up_len"], config["ramp_down_start"],
                                 config["ramp_down_len"], config["last_lr_value"]),
        mixup_alpha=config["mixup_alpha"] if config["use_mixup"] else None,
        with_swa=bool(config["swa"]) and training, nonfinite_loss=config.get("nonfinite_loss", "stop"),
        compile_net=compile_net and training)


def resume_checkpoint(resume: str | None) -> str | None:
    """`resume` may name a checkpoint file or a run folder (its checkpoints/last.ckpt)."""
    path = resume_path(resume)
    if path is not None and not os.path.isfile(path):
        raise FileNotFoundError(f"resume={resume!r}: no checkpoint at {path}")
    return path


# --- procedures ------------------------------------------------------------------------------------
def train(config: Mapping, run, experiment_name: str, task, train_loader: DataLoader, eval_loader: DataLoader,
          final_eval_loader: DataLoader | None = None):
    """Fit the configured module; returns the run's result (final and best figures, checkpoint paths).
    With `final_eval_loader`, the best checkpoint is then evaluated on it (metrics prefixed `eval_`)."""
    pl.seed_everything(config["seed"], workers=True, verbose=False)
    run_dir = run_directory(run, experiment_name)
    module = build_module(config, task)
    swa = SWACallback(config["swa_epoch_start"], config["swa_freq"]) if config["swa"] else None
    trainer = build_trainer(config["trainer"], run, run_dir, task.monitor, swa, config.get("spectrogram_batches", 2),
                            config.get("wandb"))
    trainer.fit(module, train_loader, eval_loader, ckpt_path=resume_checkpoint(config.get("resume")))
    checkpoint, last = trainer.checkpoint_callbacks
    result = {key: float(value) for key, value in trainer.callback_metrics.items()}
    result.update(epochs=trainer.current_epoch, run_dir=run_dir, best_checkpoint=checkpoint.best_model_path,
                  last_checkpoint=last.best_model_path)
    if checkpoint.best_model_score is not None:
        result["best_" + task.monitor] = float(checkpoint.best_model_score)
    if final_eval_loader is not None:
        module.metric_prefix = "eval_"
        best = result["best_checkpoint"] or None
        trainer.validate(module, final_eval_loader, ckpt_path=best, verbose=False)
        result.update({key: float(value) for key, value in trainer.callback_metrics.items()
                       if key.startswith("eval_")})
    if trainer.is_global_zero:
        print(final_line(result, task.monitor))
    return result


def final_line(result: Mapping, monitor: str) -> str:
    name = {"ap": "mAP", "acc": "accuracy"}.get(monitor, monitor)
    line = f"final {name}: {result.get(monitor, float('nan')):.4f}"
    if "swa_" + monitor in result:
        line += f"  SWA {name}: {result['swa_' + monitor]:.4f}"
    if "best_" + monitor in result:
        line += f"  best {name}: {result['best_' + monitor]:.4f}"
    return line


def evaluate(config: Mapping, run, experiment_name: str, task, eval_loader: DataLoader):
    """Validate the configured network (release model, checkpoint or ensemble) once; returns the metrics."""
    pl.seed_everything(config["seed"], verbose=False)
    run_dir = run_directory(run, experiment_name)
    module = build_module(config, task, training=False)
    trainer = build_trainer(config["trainer"], run, run_dir, task.monitor, checkpoints=False)
    trainer.validate(module, eval_loader)
    result = {key: float(value) for key, value in trainer.callback_metrics.items()}
    clips = len(eval_loader.dataset)
    result["excluded_clips"] = clips - int(result.get("val.clips", clips))
    if trainer.is_global_zero:
        print(final_line(result, task.monitor) + f"  ({int(result.get('val.clips', 0))} clips evaluated, "
              f"{result['excluded_clips']} excluded)")
    return result


def speed_test(config: Mapping, task, batch_size: int, steps: int = 20, warmup_steps: int = 3) -> float:
    """Training spectrograms per second of the configured network (forward, backward, AdamW step) on
    random input of the configured size, on the configured accelerator and precision."""
    accelerator = resolve_accelerator(config["trainer"].get("accelerator", "auto"))
    device = torch.device("cuda" if accelerator == "gpu" else "cpu")
    precision = resolve_precision(config["trainer"].get("precision", "32-true"), accelerator)
    untrained = {**config["models"]["net"], "pretrained": False, "checkpoint": None}  # speed needs no weights
    module = build_module({**config, "models": {**config["models"], "net": untrained}}, task).to(device)
    net, mel_config, net_config = module.net.train(), config["models"]["mel"], config["models"]["net"]
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    frames = net_config.get("input_tdim") or 998
    x = torch.randn(batch_size, 1, mel_config["n_mels"], frames, device=device)
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
                          train_doc: str, evaluated_on: str) -> None:
    """Register an experiment's commands: train (the default), evaluate_only, model_speed_test, test_loaders.

    loaders(config, training) -> the experiment's loaders, training loader first (None when not training) and
    the evaluation loader last; check(config, training, with_files) raises ConfigError before any work.
    """

    def run_training(_config, _run):
        check(_config, training=True)
        return train(_config, _run, ex.path, task, *loaders(_config, training=True))

    def evaluate_only(_config, _run):
        check(_config, training=False)
        return evaluate(_config, _run, ex.path, task, loaders(_config, training=False)[-1])

    def model_speed_test(_config, speed_test_batch_size):
        """Training speed (spectrograms/s) of the configured network on random input."""
        check(_config, training=True, with_files=False)
        return speed_test(_config, task, speed_test_batch_size)

    def test_loaders(_config):
        """Load one batch from each loader and describe it."""
        check(_config, training=True)
        for name, loader in zip(loader_names, loaders(_config, training=True)):
            print(f"{name}: {len(loader.dataset)} clips; {describe_batch(next(iter(loader)))}")

    run_training.__name__, run_training.__doc__ = "train", train_doc
    evaluate_only.__doc__ = (f"Evaluate the configured network (release model, models.net.checkpoint or an "
                             f"ensemble) on {evaluated_on}.")
    ex.main(run_training)
    for command in (evaluate_only, model_speed_test, test_loaders):
        ex.command(command)


def describe_batch(batch) -> str:
    """One line about a loader batch: shapes, dtypes and the first names."""
    if batch is None:
        return "batch: every clip failed to decode"
    waveforms, names, targets = batch
    return (f"waveforms {tuple(waveforms.shape)} {waveforms.dtype}, targets {tuple(targets.shape)} "
            f"{targets.dtype}, first clips: {', '.join(list(names)[:3])}")
