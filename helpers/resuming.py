"""Where a training run starts: every rank's one seed and the checkpoint to continue from (`resume=` a run
folder, a checkpoint file, or auto: the newest checkpoint of a run of the same experiment and config)."""

from __future__ import annotations

import json
import logging
import os
from typing import Mapping

from sacred.observers import FileStorageObserver

from helpers.cluster import DDP_TIMEOUT_DEFAULT, agree_on_start, global_rank, init_process_group, world_size
from helpers.networks import load_training_checkpoint
from helpers.trainer import trainer_accelerator

log = logging.getLogger(__name__)

# config keys that differ between the runs of one job without changing what is trained
VOLATILE_KEYS = ("cmd", "process_id", "slurm_job_id", "saque_cmd", "saque_id", "resume", "seed")


def resume_path(resume: str | None) -> str | None:
    """The checkpoint `resume` names: a .ckpt file, or a run folder's checkpoints/last.ckpt."""
    if not resume:
        return None
    return os.path.join(resume, "checkpoints", "last.ckpt") if os.path.isdir(resume) else os.fspath(resume)


def start_training(config: Mapping, run, experiment_name: str) -> tuple[dict, dict | None]:
    """What every rank of a training run starts from, decided before any data is drawn: the config with the
    run's one seed (`helpers.cluster.agree_on_start`; a run of several processes sets up its process group
    here), and the checkpoint to continue from (None: a fresh start). `resume` names a run folder or a
    checkpoint file, or is "auto": rank 0 looks for the newest checkpoints/last.ckpt of a run of this
    experiment with the same config (`latest_checkpoint`), a fresh start when there is
    none. Continuing from a run folder without an explicit `seed=` takes that run's seed (its samplers'
    epochs). Where the run came from goes into the run's info (`resumed_from`)."""
    config = dict(config)
    explicit_seed = "seed" in run.config_modifications.modified
    if world_size() > 1:
        init_process_group(trainer_accelerator(config["trainer"]), config.get("ddp_timeout", DDP_TIMEOUT_DEFAULT))
    seed, resumed = config["seed"], None
    if global_rank() == 0 and config.get("resume"):
        resumed = resume_source(config, run, experiment_name, explicit_seed)
        if resumed and resumed.get("seed") is not None and not explicit_seed:
            seed = resumed["seed"]
    config["seed"], resumed = agree_on_start(seed, explicit_seed, resumed)
    if resumed:
        run.info["resumed_from"] = resumed
        log.info("continuing from %s (epoch %s, %s batches into it)", resumed["checkpoint"], resumed.get("epoch"),
                 resumed.get("batches_into_epoch"))
    return config, resumed


def resume_source(config: Mapping, run, experiment_name: str, explicit_seed: bool) -> dict | None:
    """The checkpoint `resume` names (a .ckpt file, a run folder's checkpoints/last.ckpt, or "auto"), with the
    run it belongs to, its seed and its position; None for "auto" without a matching run."""
    if config["resume"] == "auto":
        found = latest_checkpoint(observed_runs_folder(run, experiment_name), config, explicit_seed)
        if found is None:
            log.info("resume=auto: no run of this config to continue; starting afresh")
            return None
        path, run_config = found
    else:
        path = resume_path(config["resume"])
        if not os.path.isfile(path):
            raise FileNotFoundError(f"resume={config['resume']!r}: no checkpoint at {path}")
        run_config = read_run_config(path)
    checkpoint = load_training_checkpoint(path, mmap=True)
    position = ((checkpoint.get("callbacks") or {}).get("PreemptionCallback") or {}).get("position") or {}
    run_folder = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    return {"checkpoint": path, "run": run_folder if run_config is not None else None,
            "seed": (run_config or {}).get("seed"), "epoch": checkpoint.get("epoch"),
            "global_step": checkpoint.get("global_step"), "batches_into_epoch": position.get("batches", 0),
            "status": read_run_status(run_folder)}


def observed_runs_folder(run, experiment_name: str) -> str:
    """Where this run's file storage observer keeps its runs (`runs/<experiment>` by default, or `-F DIR`)."""
    for observer in run.observers:
        if isinstance(observer, FileStorageObserver):
            return observer.basedir
    return os.path.join("runs", experiment_name)


def read_run_config(checkpoint_path: str) -> dict | None:
    """The config.json of the run folder holding `checkpoint_path` (run/checkpoints/x.ckpt), if any."""
    folder = os.path.dirname(os.path.dirname(os.path.abspath(checkpoint_path)))
    try:
        with open(os.path.join(folder, "config.json")) as file:
            return json.load(file)
    except (OSError, ValueError):
        return None


def read_run_status(run_folder: str) -> str | None:
    try:
        with open(os.path.join(run_folder, "run.json")) as file:
            return json.load(file).get("status")
    except (OSError, ValueError):
        return None


def comparable(config: dict) -> dict:
    """`config` as stored in a run's config.json, without the keys that differ between the runs of one job."""
    return {key: value for key, value in json.loads(json.dumps(config, default=str)).items()
            if key not in VOLATILE_KEYS}


def latest_checkpoint(runs_folder: str, config: dict, explicit_seed: bool) -> tuple[str, dict] | None:
    """The newest `checkpoints/last.ckpt` of the runs below `runs_folder` (sacred's file storage) whose
    config equals `config` (all but `VOLATILE_KEYS`; the seed too when it was given explicitly), with that
    run's config; None when there is none yet (a first start)."""
    wanted, found = comparable(config), []
    if not os.path.isdir(runs_folder):
        return None
    for name in os.listdir(runs_folder):
        checkpoint = os.path.join(runs_folder, name, "checkpoints", "last.ckpt")
        try:
            with open(os.path.join(runs_folder, name, "config.json")) as file:
                other = json.load(file)
            modified = os.path.getmtime(checkpoint)
        except (OSError, ValueError):
            continue
        if comparable(other) == wanted and (not explicit_seed or other.get("seed") == config.get("seed")):
            found.append((modified, checkpoint, other))
    if not found:
        return None
    _, checkpoint, other = max(found, key=lambda entry: entry[0])
    return checkpoint, other
