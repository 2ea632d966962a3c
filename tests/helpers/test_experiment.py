import os

import pytest
import torch

from helpers.config_checks import ConfigError, check_config
from helpers.experiment import (AtomicCheckpointIO, SacredLogger, ddp_trainer_defaults, resolve_precision,
                                resume_checkpoint, trainer_config)
from helpers.lightning_module import capture_rng_states, restore_rng_states


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


def test_atomic_checkpoint_leaves_no_partial_file(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, path)
    assert os.listdir(path.parent) == ["last.ckpt"]
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.ones(2))


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


def test_check_config_rejects_patchout_of_the_whole_grid_and_short_input():
    config = minimal_config()
    config["models"]["net"].update(s_patchout_f=12)  # (128 - 16) // 10 + 1 = 12 frequency rows
    with pytest.raises(ConfigError, match="remove the whole 12x99 patch grid"):
        check_config(config)
    config = minimal_config()
    config["models"]["net"].update(input_tdim=8)
    with pytest.raises(ConfigError, match="at least one patch"):
        check_config(config)
