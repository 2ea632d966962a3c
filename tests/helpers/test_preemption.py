"""helpers.preemption and helpers.resuming: the signals that stop a run, and where resume= continues."""
import json
import os
import signal
import time

import pytest
import torch

from helpers.preemption import signal_numbers
from helpers.resuming import latest_checkpoint


def test_preempt_signals_are_names_or_numbers_never_kill_or_stop():
    assert signal_numbers(["SIGTERM", "sigusr1", 2]) == [signal.SIGTERM, signal.SIGUSR1, signal.SIGINT]
    assert signal_numbers([]) == [] and signal_numbers(None) == []
    with pytest.raises(ValueError, match="'SIGTREM' is not a signal name"):
        signal_numbers(["SIGTREM"])
    with pytest.raises(ValueError, match="cannot be handled"):
        signal_numbers(["SIGKILL"])


CONFIG = {"lr": 1e-3, "seed": 4, "cmd": "python ex_audioset.py with resume=auto", "process_id": 10,
          "slurm_job_id": "77", "resume": "auto", "models": {"net": {"arch": "passt_tiny"}}}


def a_run(folder, name, config, checkpoint=True, age=0.0):
    run = folder / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config))
    if checkpoint:
        path = run / "checkpoints" / "last.ckpt"
        path.write_bytes(b"checkpoint")
        os.utime(path, (time.time() - age, time.time() - age))
    return str(run / "checkpoints" / "last.ckpt")


def test_resume_auto_takes_the_newest_checkpoint_of_a_run_with_the_same_config(tmp_path):
    older = a_run(tmp_path, "1", {**CONFIG, "seed": 1, "process_id": 3, "slurm_job_id": "76"}, age=100)
    newer = a_run(tmp_path, "2", {**CONFIG, "seed": 2, "resume": None, "cmd": "python ex_audioset.py"}, age=10)
    a_run(tmp_path, "3", {**CONFIG, "lr": 2e-3})  # newest, but another config
    a_run(tmp_path, "4", CONFIG, checkpoint=False)  # the same config, but nothing to continue from yet
    path, config = latest_checkpoint(str(tmp_path), CONFIG, explicit_seed=False)
    assert path == newer and config["seed"] == 2
    assert latest_checkpoint(str(tmp_path), {**CONFIG, "seed": 1}, explicit_seed=True)[0] == older
    assert latest_checkpoint(str(tmp_path), {**CONFIG, "seed": 9}, explicit_seed=True) is None


def test_resume_auto_starts_afresh_without_runs(tmp_path):
    assert latest_checkpoint(str(tmp_path / "missing"), CONFIG, explicit_seed=False) is None
    assert latest_checkpoint(str(tmp_path), CONFIG, explicit_seed=False) is None


class Run:
    """What resume_source reads of a sacred run: its observers (none: runs/<experiment>)."""
    observers = []


def test_resume_names_a_run_folder_or_a_checkpoint_and_brings_that_runs_seed_and_position(tmp_path):
    from helpers.resuming import resume_source
    from tests.helpers.test_trainer import training_checkpoint

    path = a_run(tmp_path, "3", {**CONFIG, "seed": 8, "resume": None})
    torch.save(training_checkpoint(callbacks={"PreemptionCallback": {"position": {"epoch": 1, "batches": 4}}}), path)
    (tmp_path / "3" / "run.json").write_text(json.dumps({"status": "INTERRUPTED"}))
    for resume in (str(tmp_path / "3"), path):
        source = resume_source({**CONFIG, "resume": resume}, Run(), "audioset", explicit_seed=False)
        assert source == {"checkpoint": path, "run": str(tmp_path / "3"), "seed": 8, "epoch": 1, "global_step": 4,
                          "batches_into_epoch": 4, "status": "INTERRUPTED"}
    with pytest.raises(FileNotFoundError, match="resume="):
        resume_source({**CONFIG, "resume": str(tmp_path / "missing.ckpt")}, Run(), "audioset", explicit_seed=False)
