import os
import pathlib
import signal
import subprocess
import sys

import pytest
import torch

from helpers.config_checks import ConfigError, check_config
from helpers.data import make_training_set
from helpers.experiment import resume_checkpoint
from helpers.launch import ddp_trainer_defaults
from helpers.loaders import training_loader
from helpers.trainer import (AtomicCheckpointIO, RunProgressBar, SacredLogger, build_trainer, resolve_precision,
                             trainer_config)
from helpers.lightning_module import capture_rng_states, restore_rng_states
from models.weights import CheckpointError
from tests.helpers.data.clips import write_tone_hdf5

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_trainer_config_holds_every_trainer_argument(monkeypatch):
    for name in ("DDP", "LOCAL_WORLD_SIZE", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    config = trainer_config(max_epochs=3)
    assert config["max_epochs"] == 3 and config["profiler"] is None and config["strategy"] == "auto"
    assert "callbacks" not in config and "logger" not in config
    with pytest.raises(ValueError, match="max_epoch"):
        trainer_config(max_epoch=3)


def test_ddp_defaults_from_torchrun_environment(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert ddp_trainer_defaults() == {"devices": 2, "num_nodes": 2, "strategy": "ddp"}


def test_precision_fallback_on_cpu_is_logged(caplog):
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


class Payload:
    """Pickles as a call that creates `marker` when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.parametrize("content, message", [
    (lambda path: path.write_bytes(b"PK\x03\x04 cut off"), "cannot load training checkpoint"),
    (lambda path: torch.save(training_checkpoint(payload=Payload(path.with_suffix(".ran"))), path), "Unsupported"),
    (lambda path: torch.save({"w": torch.ones(2)}, path), "not a training checkpoint of this project: it lacks "
                                                           "epoch, global_step, state_dict, loops, optimizer_states"),
])
def test_resume_from_a_corrupt_or_foreign_checkpoint_stops_before_work(tmp_path, content, message):
    path = tmp_path / "last.ckpt"
    content(path)
    with pytest.raises(CheckpointError, match=message):
        AtomicCheckpointIO().load_checkpoint(path)  # what Trainer.fit(ckpt_path=...) reads with
    with pytest.raises(ConfigError, match="(?s)resume: .*" + message.split(":")[0]):
        check_config(minimal_config(resume=str(path)))
    with pytest.raises(ConfigError, match="resume: no checkpoint at .*allowed: a run folder"):
        check_config(minimal_config(resume=str(tmp_path / "elsewhere")))
    assert not path.with_suffix(".ran").exists()  # no code in the file ran


def test_resume_accepts_a_run_folder(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert resume_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoints" / "last.ckpt")
    with pytest.raises(FileNotFoundError, match="resume="):
        resume_checkpoint(str(tmp_path / "missing.ckpt"))


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np
    states = capture_rng_states()
    torch.save({"rng_states": states}, tmp_path / "rng.pt")
    expected = (torch.rand(1).item(), np.random.rand(), random.random())
    restore_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True)["rng_states"])
    assert (torch.rand(1).item(), np.random.rand(), random.random()) == expected


def minimal_config(**top):
    return {"lr": 1e-3, "weight_decay": 0.0, "use_mixup": True, "mixup_alpha": 0.3, "schedule_mode": "exp_lin",
            "warm_up_len": 1, "ramp_down_start": 2, "ramp_down_len": 2, "swa": True, "swa_epoch_start": 1,
            "swa_freq": 1, "nonfinite_loss": "stop", "compile": "auto",
            "models": {"net": {"arch": "passt_tiny", "n_classes": 10, "fstride": 10, "tstride": 10,
                               "input_fdim": 128, "input_tdim": 998, "s_patchout_t": 40, "s_patchout_f": 4,
                               "u_patchout": 0},
                       "mel": {"n_mels": 128, "freqm": 48, "timem": 192}},
            "trainer": {"precision": "32-true", "accelerator": "cpu"}, **top}


def test_check_config_lists_every_problem_with_allowed_values(tmp_path):
    check_config(minimal_config(), n_classes=10)
    config = minimal_config(lr=0, schedule_mode="step", swa_freq=0)
    config["models"]["net"].update(tstride=0)
    config["trainer"]["fast"] = True
    with pytest.raises(ConfigError) as error:
        check_config(config, n_classes=10, files={"basedataset.eval_hdf5": str(tmp_path / "none.hdf")})
    message = str(error.value)
    for expected in ("lr: must be a number > 0", "schedule_mode: 'step'; allowed: exp_lin, cos_cyc, constant",
                     "swa_freq", "models.net.fstride/tstride", "trainer.fast: not a Lightning Trainer argument",
                     "basedataset.eval_hdf5: data file"):
        assert expected in message


def test_check_config_rejects_a_precision_the_gpu_cannot_do(monkeypatch):
    import helpers.config_checks as checks
    monkeypatch.setattr(checks, "_cuda_available", lambda: True)
    monkeypatch.setattr(checks, "_cuda_bf16", lambda: False)
    config = minimal_config()
    config["trainer"].update(accelerator="gpu", precision="bf16-mixed")
    with pytest.raises(ConfigError, match="trainer.precision: bf16-mixed needs a GPU with bfloat16 support; "
                                          "allowed here: 16-mixed, 32-true"):
        check_config(config)


def test_training_loader_epochs_depend_only_on_seed_and_epoch(tmp_path):
    """Augmentation, roll, waveform mixup and order of an epoch are a function of (seed, epoch): the same
    with 0 or 2 workers, without the epochs before it (a resumed run), and different for another seed."""
    write_tone_hdf5(tmp_path / "clips.hdf", n_clips=6, classes_num=4, seconds=0.5)

    def epochs(seed, workers, which):
        dataset = make_training_set([tmp_path / "clips.hdf"], 4, sample_rate=16000, clip_length=0.5, gain_augment=6,
                                    roll=True, roll_conf={"shift_range": 800}, wavmix=True, seed=seed)
        loader = training_loader(dataset, batch_size=4, num_workers=workers, seed=seed)
        batches = {}
        for epoch in which:
            loader.sampler.set_epoch(epoch)  # what Lightning does before every epoch
            batches[epoch] = [batch[0] for batch in loader]
        return batches

    uninterrupted = epochs(seed=3, workers=2, which=[0, 1, 2])
    resumed = epochs(seed=3, workers=0, which=[2])
    for first, second in zip(uninterrupted[2], resumed[2]):
        assert torch.equal(first, second)
    assert not torch.equal(uninterrupted[1][0], uninterrupted[2][0])
    assert not torch.equal(epochs(seed=4, workers=0, which=[2])[2][0], resumed[2][0])
    torch.manual_seed(0)
    state = torch.get_rng_state()
    epochs(seed=3, workers=1, which=[0])
    assert torch.equal(torch.get_rng_state(), state)  # training's global generator is left alone


def test_check_config_rejects_patchout_of_the_whole_grid_and_short_input():
    config = minimal_config()
    config["models"]["net"].update(s_patchout_f=12)  # (128 - 16) // 10 + 1 = 12 frequency rows
    with pytest.raises(ConfigError, match="remove the whole 12x99 patch grid"):
        check_config(config)
    config = minimal_config()
    config["models"]["net"].update(input_tdim=8)
    with pytest.raises(ConfigError, match="at least one patch"):
        check_config(config)
