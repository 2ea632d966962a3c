"""The keys every experiment shares, declared once (upstream's AudioSet names and values): the top level
(`COMMON_KEYS`), the `basedataset` ingredient (`DATASET_KEYS`) and each `datasets.<loader>` entry
(`LOADER_KEYS`). A dataset's spec adds its own keys and what differs (`helpers.dataset_spec`)."""

from __future__ import annotations

import inspect
import os
import sys
from typing import Mapping

import pytorch_lightning as pl

from helpers.cluster import DDP_TIMEOUT_DEFAULT
from helpers.config_keys import Check, Derived, Key, KeyTable, Number, OneOf
from helpers.lightning1_keys import LIGHTNING1_KEYS, lightning1_problems, lightning2_options
from helpers.lightning_module import NONFINITE_LOSS_ACTIONS
from helpers.loaders import WORKER_START_METHODS
from helpers.networks import load_training_checkpoint
from helpers.preemption import PREEMPT_SIGNALS_DEFAULT, signal_numbers
from helpers.schedules import SCHEDULE_MODES
from helpers.swa import SWA_SNAPSHOTS
from helpers.resuming import resume_path
from helpers.trainer import PRECISIONS, TRAINER_OWN_KEYS, normalize_precision, trainer_config
from models.weights import CheckpointError

def _resume_problem(resume) -> str | None:
    if not resume or resume == "auto":
        return None
    path = resume_path(resume)
    if not os.path.isfile(path):
        return f"no checkpoint at {path!r}; allowed: a run folder holding checkpoints/last.ckpt, or a .ckpt file"
    try:
        load_training_checkpoint(path, mmap=True)
    except CheckpointError as error:
        return str(error)
    return None


def _signals_problem(signals) -> str | None:
    try:
        signal_numbers(signals)
    except ValueError as error:
        return f"{error}; allowed: a list of signal names such as SIGTERM, SIGUSR1 (or [] for none)"
    return None


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def _cuda_bf16() -> bool:
    import torch
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def trainer_problems(trainer: Mapping) -> list[str]:
    """What is wrong with a `trainer` config: unknown arguments, Lightning-1 ones without a replacement,
    a precision or accelerator this machine cannot run."""
    problems = []
    accepted = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"} - TRAINER_OWN_KEYS
    for key in sorted(set(trainer) - accepted - set(LIGHTNING1_KEYS)):
        problems.append(f"trainer.{key}: not a Lightning Trainer argument (or set by the experiment); allowed: "
                        + ", ".join(sorted(accepted)))
    legacy = lightning1_problems(trainer)
    problems += legacy
    if not legacy:
        trainer = lightning2_options(trainer)
    precision = normalize_precision(trainer.get("precision", "32-true"))
    accelerator = trainer.get("accelerator", "auto")
    uses_cuda = accelerator in ("gpu", "cuda") or (accelerator == "auto" and _cuda_available())
    if precision not in PRECISIONS:
        problems.append(f"trainer.precision: {trainer.get('precision')!r} is not a precision; allowed: "
                        + ", ".join(PRECISIONS) + " (or 16, 32, bf16)")
    elif precision.startswith("bf16") and uses_cuda and not _cuda_bf16():
        problems.append(f"trainer.precision: {precision} needs a GPU with bfloat16 support; allowed here: "
                        "16-mixed, 32-true")
    if accelerator in ("gpu", "cuda") and not _cuda_available():
        problems.append("trainer.accelerator: 'gpu' but no CUDA device is visible; allowed here: cpu, auto")
    return problems


def _slurm_job_id() -> str:
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        return os.environ["SLURM_ARRAY_JOB_ID"].strip() + "_" + os.environ.get("SLURM_ARRAY_TASK_ID", "").strip()
    return os.environ.get("SLURM_JOB_ID", "").strip()


def _not_true(why: str) -> Check:
    return Check(lambda value: f"True is not supported ({why}); allowed: False" if value else None, "`False`")


def _ids_file_problem(path) -> str | None:
    if path is None or (isinstance(path, str) and os.path.isfile(path)):
        return None
    return (f"no id list at {path!r}; allowed: None, or a file of clip ids (one a line, e.g. a report's "
            "present_eval_ids.txt)")


POSITIVE = Number(gt=0)
COUNT = Number(ge=0, integer=True)
swa_on = lambda config: bool(config.get("swa"))  # noqa: E731

COMMON_KEYS = KeyTable((
    # what upstream records of a run
    Key("cmd", Derived(lambda config: " ".join(sys.argv), "the command line"), "the run's command line"),
    Key("saque_cmd", Derived(lambda config: os.environ.get("SAQUE_CMD", "").strip(), "$SAQUE_CMD"),
        "the job's command under upstream's saque scheduler"),
    Key("saque_id", Derived(lambda config: os.environ.get("SAQUE_ID", "").strip(), "$SAQUE_ID"), "its job id"),
    Key("slurm_job_id", Derived(lambda config: _slurm_job_id(), "$SLURM_JOB_ID (array: job_task)"),
        "the SLURM job"),
    Key("process_id", Derived(lambda config: os.getpid(), "the process id"), "the launching process"),
    # optimisation
    Key("lr", 2e-5, "peak learning rate (AdamW)", POSITIVE, training=True),
    Key("adamw", True, "AdamW (False: Adam with L2 weight decay)"),
    Key("weight_decay", 1e-4, "weight decay", Number(ge=0), training=True),
    Key("use_mixup", True, "spectrogram mixup"),
    Key("mixup_alpha", 0.3, "mixup's Beta(alpha, alpha)", Number(gt=0, what=""), training=True,
        when=lambda config: bool(config.get("use_mixup")), when_text=" when use_mixup"),
    Key("schedule_mode", "exp_lin", "learning-rate schedule, per epoch", OneOf(*SCHEDULE_MODES), training=True),
    Key("warm_up_len", 5, "epochs of warm-up (cos_cyc: the cycle length)", COUNT, training=True),
    Key("ramp_down_start", 50, "epoch the linear ramp-down starts", COUNT, training=True),
    Key("ramp_down_len", 50, "epochs of ramp-down", COUNT, training=True),
    Key("last_lr_value", 0.01, "the final learning rate, as a fraction of lr"),
    Key("swa", True, "stochastic weight averaging from epoch swa_epoch_start, every swa_freq epochs"),
    Key("swa_epoch_start", 50, "first SWA epoch", Number(ge=1, integer=True), training=True, when=swa_on,
        when_text=" when swa"),
    Key("swa_freq", 5, "epochs between SWA updates", Number(ge=1, integer=True), training=True, when=swa_on,
        when_text=" when swa"),
    Key("swa_snapshot", "epoch_start", "epoch_start: upstream's timing (never the final weights) | epoch_end: "
        "one later", OneOf(*SWA_SNAPSHOTS), training=True, when=swa_on),
    Key("swa_validate_every_epoch", False, "False: validate the average on its update epochs only (upstream)"),
    Key("dyn_norm", False, "upstream's dynamic spectrogram normalisation, which upstream never implemented",
        _not_true("upstream never implemented dynamic normalisation and stops with 'no dynamic norm supported "
                  "yet'")),
    Key("save_last_n", None, "N: also keep the checkpoints of the last N epochs (upstream's save_last_n)",
        Number(ge=1, integer=True, none=True), training=True),
    Key("watch_model", True, "with wandb.enabled: log gradients and weights every 1000 steps (upstream)"),
    Key("compile", "auto", "torch.compile the net: auto = on GPU only", OneOf("auto", True, False),
        training=True),
    Key("nonfinite_loss", "stop", "what a batch whose loss is NaN/inf does", OneOf(*NONFINITE_LOSS_ACTIONS),
        training=True),
    # knowledge distillation
    Key("kd.teacher_logits", None, "save_logits' file(s) or folder: distil on them (None: no distillation)"),
    Key("kd.teacher_weight", 0.9, "per clip (1 - w) * loss(labels) + w * loss(teacher's sigmoid (ESC-50: "
        "softmax) of logits / temperature)", Number(ge=0, le=1), training=True),
    Key("kd.temperature", 1.0, "the teacher logits' temperature", POSITIVE, training=True),
    # runs on clusters
    Key("resume", None, "run folder or .ckpt to continue from, or auto: the newest checkpoint of a run of this "
        "config", Check(_resume_problem, "a run folder, a `.ckpt`, `'auto'`"), training=True),
    Key("ddp_timeout", DDP_TIMEOUT_DEFAULT, "seconds a rank waits in a collective for the others, then the job "
        "fails", Number(gt=0, what="a number of seconds"), training=True),
    Key("preempt_signals", PREEMPT_SIGNALS_DEFAULT, "stop at the next step with a checkpoint, INTERRUPTED "
        "([]: off)", Check(_signals_problem, "signal names"), training=True),
    Key("speed_test_batch_size", 100, "model_speed_test's batch size"),
    Key("spectrogram_batches", 2, "PNGs of the first training batches"),
    Key("datasets", {}, "DataLoader arguments per loader: datasets.<loader>.* (the table below)"),
    Key("wandb", {"enabled": False, "project": "passt", "log_model": True},
        "Weights & Biases; other keys go to Lightning's WandbLogger"),
    # the mel frontend (models.preprocess.AugmentMelSTFT)
    Key("models.mel.n_mels", 128, "mel bands"),
    Key("models.mel.sr", 32000, "sample rate"),
    Key("models.mel.win_length", 800, "STFT window"),
    Key("models.mel.hopsize", 320, "STFT hop"),
    Key("models.mel.n_fft", 1024, "FFT size"),
    Key("models.mel.freqm", 48, "frequency masking width in training (0: off)", COUNT),
    Key("models.mel.timem", 192, "time masking width in training (0: off)", COUNT),
    Key("models.mel.htk", False, "HTK mel scale"),
    Key("models.mel.fmin", 0.0, "lowest frequency"),
    Key("models.mel.fmax", None, "highest frequency (None: sr / 2 - fmax_aug_range / 2)"),
    Key("models.mel.norm", 1, "mel filter normalisation"),
    Key("models.mel.fmin_aug_range", 10, "random shift of fmin in training"),
    Key("models.mel.fmax_aug_range", 2000, "random shift of fmax in training"),
    # the network (models.passt.get_model; checked as a whole in helpers.config_checks)
    Key("models.net.arch", "passt_s_kd_p16_128_ap486", "a registered architecture (models/registry.py); "
        "upstream get_model's default, the distilled PaSST-S (mAP .486), is where fine-tuning starts"),
    Key("models.net.pretrained", True, "load the architecture's release weights"),
    Key("models.net.n_classes", 527, "output classes (the dataset's)"),
    Key("models.net.in_channels", 1, "input channels (the patch convolution adapts its release weights)"),
    Key("models.net.fstride", 10, "patch stride in frequency"),
    Key("models.net.tstride", 10, "patch stride in time"),
    Key("models.net.input_fdim", 128, "mel bands the network takes (= models.mel.n_mels)"),
    Key("models.net.input_tdim", 998, "frames the network takes (its time embedding)"),
    Key("models.net.u_patchout", 0, "unstructured patchout: patches dropped in training"),
    Key("models.net.s_patchout_t", 40, "structured patchout: time columns dropped in training"),
    Key("models.net.s_patchout_f", 4, "structured patchout: frequency rows dropped in training"),
    Key("models.net.drop_rate", 0.0, "dropout"),
    Key("models.net.attn_drop_rate", 0.0, "attention dropout"),
    Key("models.net.drop_path_rate", 0.0, "stochastic depth"),
    Key("models.net.arch_list", [], "an ensemble: [arch, fstride, tstride(, checkpoint)] per member"),
    Key("models.net.checkpoint", None, "a training checkpoint (or state dict) to load"),
    Key("models.net.checkpoint_weights", "net", "which weights of a checkpoint: net | swa"),
    Key("models.net.cut_depth", 0, "upstream's lighten_model: N > 0 drops blocks 1..N, N < 0 keeps every -N-th"),
    Key("models.net.frame_head", None, "a frame-level model for sound event detection: None (clip model) | linear "
        "| bigru (models.passt.FramePaSST)", OneOf(None, "linear", "bigru")),
    Key("models.net.frames", None, "output frames of a frame-level model (None: 40 ms frames of the "
        "architecture's clip length)", Number(gt=0, integer=True, none=True)),
    Key("models.net.embed", "default", "upstream's patch-embedding switch; only default exists",
        Check(lambda embed: None if embed == "default" else
              f"{embed!r} is not available (upstream's 'overlap' and 'am_keepconv' name classes it never shipped); "
              "allowed: default", "`'default'`")),
    # Lightning
    Key("trainer", Derived(lambda config: trainer_config(), "every Lightning Trainer argument"),
        "Lightning Trainer arguments and upstream's Lightning-1 ones (checked by helpers.config_checks)"),
    Key("trainer.max_epochs", 130, "epochs"),
    Key("trainer.precision", "16-mixed", "16-mixed (AMP; 32-bit on CPU), 32-true, bf16-mixed, …"),
    Key("trainer.benchmark", True, "cuDNN benchmark"),
    Key("trainer.num_sanity_val_steps", 0, "validation steps before training"),
))

DATASET_KEYS = KeyTable((
    Key("base_dir", "audioset_hdf5s/", "holds mp3/*.hdf (see the dataset's README), or make a link"),
    Key("sample_rate", 32000, "Hz the audio is decoded at (resampled when it differs)"),
    Key("clip_length", 10, "seconds of each training clip (cut or zero-padded)"),
    Key("in_mem", False, "read each file into memory once"),
    Key("gain_augment", 7, "random gain of +-N dB (0: off)"),
    Key("ir_augment", 0.0, "probability of convolving a clip with a random impulse response", Number(ge=0, le=1)),
    Key("ir_path", Derived(lambda config: config["base_dir"] + "irs/", 'base_dir + "irs/"'),
        "folder of impulse responses"),
    Key("cut_irs_offset", None, "N: use only impulse responses N..N+9 of the sorted files (upstream)"),
    Key("roll", True, "random time roll of the waveform (roll_conf)"),
    Key("roll_conf", {"axis": 1, "shift": None, "shift_range": 50}, "the roll's axis, fixed shift or range"),
    Key("wavmix", 1, "waveform mixup of clip pairs (0: off)"),
    Key("normalize", False, "upstream's dataset normalisation, which upstream never implemented",
        _not_true("upstream's dataset normalisation calls functions that do not exist")),
    Key("subsample", False, "unused, as upstream"),
    Key("fold", 1, "ESC-50's test fold; unused by the other datasets, as upstream"),
    Key("eval_subset", None, "a file of clip ids (one a line): score only those clips of the eval set "
        "(README: Data report)", Check(_ids_file_problem, "`None`, a file of clip ids")),
))

LOADER_KEYS = KeyTable((
    Key("batch_size", 12, "clips per batch and process", Number(ge=1, integer=True)),
    Key("num_workers", 16, "DataLoader worker processes per process", COUNT),
    Key("shuffle", None, "None: the dataset's default (AudioSet's balanced set, FSD50K, own data: shuffled; "
        "OpenMIC, ESC-50: file order, as upstream) | True | False", OneOf(None, True, False)),
    Key("pin_memory", None, "None: on CUDA machines"),
    Key("drop_last", False, "drop the last, short batch (training loaders only)"),
    Key("timeout", 0, "seconds to wait for a batch (0: for ever)"),
    Key("prefetch_factor", None, "batches each worker loads ahead (None: torch's default)"),
    Key("persistent_workers", False, "True is refused: each epoch's data are drawn from (seed, epoch)",
        Check(lambda value: "True would keep the previous epoch's dataset state in the workers (each epoch's data "
              "depend on (seed, epoch)); allowed: False" if value else None, "`False`")),
    Key("multiprocessing_context", "forkserver", "how workers start: forkserver (safe beside threads) | fork "
        "(upstream) | spawn", OneOf(*WORKER_START_METHODS)),
))


def loader_config(batch_size: int, num_workers: int, **values) -> dict:
    """A `datasets.<loader>` config entry: batch size, workers and upstream's other DataLoader arguments."""
    unknown = set(values) - set(LOADER_KEYS.names()) - {"dataset"}
    if unknown:
        raise ValueError(f"not loader keys: {', '.join(sorted(unknown))}")
    defaults = {key.name: key.default for key in LOADER_KEYS.keys}
    return {**defaults, "batch_size": batch_size, "num_workers": num_workers, **values}
