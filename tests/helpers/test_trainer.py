"""helpers.trainer: the Trainer config tree, precision on CPU, the sacred logger, the progress bar, and atomic
checkpoints that survive a kill or a failing write."""
import logging
import os
import signal
import subprocess
import sys

import pytest
import torch

from helpers.trainer import (AtomicCheckpointIO, RunProgressBar, SacredLogger, build_trainer, resolve_precision,
                             trainer_config)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_trainer_config_holds_every_trainer_argument(monkeypatch):
    for name in ("DDP", "LOCAL_WORLD_SIZE", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    config = trainer_config(max_epochs=3)
    assert config["max_epochs"] == 3 and config["profiler"] is None and config["strategy"] == "auto"
    assert "callbacks" not in config and "logger" not in config
    with pytest.raises(ValueError, match="max_epoch"):
        trainer_config(max_epoch=3)


def test_precision_fallback_on_cpu_is_logged(caplog):
    caplog.set_level(logging.WARNING, logger="helpers.trainer")  # whatever an earlier sacred run left on the root
    assert resolve_precision(16, "cpu") == "32-true"
    assert "16-mixed needs a GPU" in caplog.text
    assert resolve_precision("bf16", "cpu") == "bf16-mixed"
    assert resolve_precision(32, "gpu") == "32-true"


class FakeRun:
    _id = 7

    def __init__(self):
        self.scalars = []

    def log_scalar(self, name, value, step):
        self.scalars.append((name, value, step))


def test_sacred_logger_uses_the_epoch_as_step():
    run = FakeRun()
    SacredLogger(run).log_metrics({"ap": 0.5, "epoch": 3.0}, step=120)
    assert run.scalars == [("ap", 0.5, 3)]


def test_the_progress_bar_names_the_sacred_run_instead_of_logger_versions(tmp_path):
    trainer = build_trainer(trainer_config(max_epochs=1, accelerator="cpu"), FakeRun(), str(tmp_path), "ap")
    assert isinstance(trainer.progress_bar_callback, RunProgressBar)
    metrics = trainer.progress_bar_callback.get_metrics(trainer, None)
    assert metrics["run"] == 7 and "v_num" not in metrics
    quiet = build_trainer(trainer_config(max_epochs=1, accelerator="cpu", enable_progress_bar=False), FakeRun(),
                          str(tmp_path), "ap")
    assert quiet.progress_bar_callback is None


def test_atomic_checkpoint_leaves_no_partial_file(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, path)
    assert os.listdir(path.parent) == ["last.ckpt"]
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.ones(2))


def training_checkpoint(**extra):
    """The keys Lightning writes into every training checkpoint, with a small state_dict."""
    return {"epoch": 1, "global_step": 4, "state_dict": {"net.w": torch.ones(2)}, "loops": {},
            "optimizer_states": [], **extra}


KILL_DURING_SAVE = """
import os, signal, sys, torch
from helpers.trainer import AtomicCheckpointIO

def save_half_then_die(obj, file):
    file.write(b"PK" * 1000)  # the first bytes of a zip archive, then the process is killed
    file.flush()
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = save_half_then_die
AtomicCheckpointIO().save_checkpoint({"epoch": 2}, sys.argv[1])
"""


def test_a_kill_during_a_save_leaves_the_previous_last_checkpoint_loadable(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(training_checkpoint(), path)
    process = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, str(path)], cwd=ROOT, capture_output=True,
                             env={**os.environ, "PYTHONPATH": ROOT})
    assert process.returncode == -signal.SIGKILL, process.stderr
    assert any(name.startswith("last.ckpt.partial-") for name in os.listdir(path.parent))  # the cut-off write
    assert AtomicCheckpointIO().load_checkpoint(path)["epoch"] == 1


def test_a_failing_save_keeps_the_previous_checkpoint_and_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(training_checkpoint(), path)

    def disk_full(obj, file):
        file.write(b"PK" * 1000)
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        AtomicCheckpointIO().save_checkpoint(training_checkpoint(epoch=2), path)
    assert os.listdir(tmp_path) == ["last.ckpt"]
    assert AtomicCheckpointIO().load_checkpoint(path)["epoch"] == 1
