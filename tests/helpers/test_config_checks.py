"""helpers.config_checks: one check of the whole config before any work, every problem named with what is allowed."""
import pathlib

import pytest
import torch

from helpers.config_checks import ConfigError, check_config
from helpers.trainer import AtomicCheckpointIO
from models.weights import CheckpointError
from tests.helpers.test_trainer import training_checkpoint


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


def test_cluster_keys_are_checked_before_any_work():
    check_config(minimal_config(ddp_timeout=60, preempt_signals=["SIGUSR1"], resume="auto"), n_classes=10)
    with pytest.raises(ConfigError) as error:
        check_config(minimal_config(ddp_timeout=0, preempt_signals=["SIGTREM"],
                                    datasets={"training": {"multiprocessing_context": "threads"}}), n_classes=10)
    assert "ddp_timeout: must be a number of seconds > 0, got 0" in str(error.value)
    assert "datasets.training.multiprocessing_context: 'threads'; allowed: forkserver, fork, spawn" in str(error.value)
    assert "preempt_signals: 'SIGTREM' is not a signal name" in str(error.value)


def test_a_num_of_classes_other_than_the_datasets_is_refused():
    check_config(minimal_config(basedataset={"num_of_classes": 10}), n_classes=10)
    with pytest.raises(ConfigError, match="basedataset.num_of_classes: the dataset has 10 classes, got 20; "
                                          "allowed: 10"):
        check_config(minimal_config(basedataset={"num_of_classes": 20}), n_classes=10)


def test_a_missing_folder_is_named_by_its_key(tmp_path):
    check_config(minimal_config(), n_classes=10, folders={"basedataset.audio_path": str(tmp_path)})
    with pytest.raises(ConfigError, match="basedataset.audio_path: folder .*wavs.* does not exist"):
        check_config(minimal_config(), n_classes=10, folders={"basedataset.audio_path": str(tmp_path / "wavs")})


def test_eval_subset_must_name_an_existing_id_list(tmp_path):
    ids = tmp_path / "present_eval_ids.txt"
    ids.write_text("--4gqARaEJE\n")
    check_config(minimal_config(basedataset={"eval_subset": str(ids)}), n_classes=10, training=False)
    check_config(minimal_config(basedataset={"eval_subset": None}), n_classes=10, training=False)
    with pytest.raises(ConfigError, match=r"basedataset.eval_subset: no id list at '.*other.txt'; allowed: None"):
        check_config(minimal_config(basedataset={"eval_subset": str(tmp_path / "other.txt")}), n_classes=10,
                     training=False)


def test_check_config_rejects_a_precision_the_gpu_cannot_do(monkeypatch):
    import helpers.common_config as checks
    monkeypatch.setattr(checks, "_cuda_available", lambda: True)
    monkeypatch.setattr(checks, "_cuda_bf16", lambda: False)
    config = minimal_config()
    config["trainer"].update(accelerator="gpu", precision="bf16-mixed")
    with pytest.raises(ConfigError, match="trainer.precision: bf16-mixed needs a GPU with bfloat16 support; "
                                          "allowed here: 16-mixed, 32-true"):
        check_config(config)


def test_check_config_rejects_patchout_of_the_whole_grid_and_short_input():
    config = minimal_config()
    config["models"]["net"].update(s_patchout_f=12)  # (128 - 16) // 10 + 1 = 12 frequency rows
    with pytest.raises(ConfigError, match="remove the whole 12x99 patch grid"):
        check_config(config)
    config = minimal_config()
    config["models"]["net"].update(input_tdim=8)
    with pytest.raises(ConfigError, match="at least one patch"):
        check_config(config)
