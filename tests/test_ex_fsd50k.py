"""ex_fsd50k.py in-process on CPU: train on a few clips validating on the validation and the evaluation file
every epoch (upstream), or on the validation file with the best checkpoint on the evaluation file at the end;
evaluate_only scores the validation split (upstream) or the eval split."""
import contextlib
import json
import math

import numpy as np
import pytest

from helpers.data import PackedBitsTargets, encode_mp3
from helpers.data.hdf5 import HDF5DatasetWriter
from tests.experiment_runs import resolved_config, tiny_training_updates

SECONDS = 2


def write_clips(path, count, seed, seconds=SECONDS):
    rng = np.random.default_rng(seed)
    with HDF5DatasetWriter(path, PackedBitsTargets(200)) as writer:
        for index in range(count):
            waveform = (0.1 * rng.standard_normal(int(32000 * seconds))).astype(np.float32)
            target = np.zeros(200, dtype=np.float32)
            target[[index % 3, 3 + index % 2]] = 1
            writer.append(f"{index}.wav", encode_mp3(waveform, 32000, 7), target)


@pytest.fixture(scope="module")
def fsd50k_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("fsd50k")
    (base / "mp3").mkdir()
    write_clips(base / "mp3" / "FSD50K.train_mp3.hdf", 8, 0, seconds=3)  # longer: random crops
    write_clips(base / "mp3" / "FSD50K.val_mp3.hdf", 5, 1)
    write_clips(base / "mp3" / "FSD50K.eval_mp3.hdf", 6, 2)
    return str(base)


def tiny_updates(base_dir):
    return tiny_training_updates(base_dir, SECONDS, {"datasets.valid.num_workers": 0, "basedataset.eval_clip_length": SECONDS,
                                                     "datasets.eval.num_workers": 0})


def run(fsd50k_dir, tmp_path, command="train", **updates):
    import ex_fsd50k
    with contextlib.chdir(tmp_path):
        run = ex_fsd50k.ex.run(None if command == "train" else command,
                               config_updates={**tiny_updates(fsd50k_dir), **updates},
                               options={"--loglevel": "ERROR", "--file_storage": "runs"})
        with open(f"runs/{run._id}/metrics.json") as file:
            return run.result, json.load(file)


def test_training_validates_the_valid_and_the_eval_split_every_epoch_as_upstream(fsd50k_dir, tmp_path):
    result, metrics = run(fsd50k_dir, tmp_path)
    assert result["epochs"] == 2 and result["valid_val.clips"] == 5 and result["eval_val.clips"] == 6
    for name in ("valid_ap", "valid_roc", "valid_val.loss", "eval_ap", "eval_roc", "eval_val.loss"):
        assert metrics[name]["steps"] == [0, 1], name  # every epoch
        assert all(math.isfinite(value) and value >= 0 for value in metrics[name]["values"]), name
    for name in ("valid_swa_ap", "eval_swa_ap"):  # SWA from epoch 1: its update epochs 0 and 1
        assert metrics[name]["steps"] == [0, 1], name
    assert "best_valid_ap" in result and "best-epoch" in result["best_checkpoint"]


def test_eval_every_epoch_false_scores_the_best_checkpoint_on_eval_once(fsd50k_dir, tmp_path):
    result, metrics = run(fsd50k_dir, tmp_path, eval_every_epoch=False)
    assert metrics["valid_ap"]["steps"] == [0, 1] and result["eval_val.clips"] == 6
    assert len(metrics["eval_ap"]["values"]) == 1
    for name in ("valid_ap", "valid_swa_ap", "eval_ap", "eval_swa_ap", "eval_roc"):
        assert math.isfinite(result[name]) and 0 <= result[name] <= 1, name


@pytest.mark.parametrize("split, clips", [("valid", 5), ("eval", 6)])
def test_evaluate_only_scores_the_valid_split_unless_told_eval(fsd50k_dir, tmp_path, split, clips):
    updates = {} if split == "valid" else {"evaluate_split": "eval"}
    result, _ = run(fsd50k_dir, tmp_path, "evaluate_only", **updates)
    assert result[f"{split}_val.clips"] == clips and result[f"{split}_excluded_clips"] == 0
    assert 0 <= result[f"{split}_ap"] <= 1


@pytest.mark.parametrize("split, clips, absent", [("valid", 5, "eval"), ("eval", 6, "valid")])
def test_evaluate_only_builds_and_needs_only_the_split_it_scores(fsd50k_dir, tmp_path, split, clips, absent):
    result, _ = run(fsd50k_dir, tmp_path, "evaluate_only", evaluate_split=split,
                    **{f"basedataset.{absent}_hdf5": str(tmp_path / "absent.hdf"),
                       "basedataset.balanced_train_hdf5": str(tmp_path / "absent.hdf")})
    assert result[f"{split}_val.clips"] == clips and not any(key.startswith(absent) for key in result)


def test_a_num_of_classes_other_than_fsd50ks_200_is_refused(fsd50k_dir, tmp_path):
    from helpers.config_checks import ConfigError
    with pytest.raises(ConfigError, match="basedataset.num_of_classes: the dataset has 200 classes, got 527"):
        run(fsd50k_dir, tmp_path, **{"basedataset.num_of_classes": 527})


def test_every_named_config_resolves():
    import ex_fsd50k
    assert "variable_eval" in ex_fsd50k.ex.named_configs
    for name in ex_fsd50k.ex.named_configs:
        config = resolved_config(ex_fsd50k.ex, name)
        assert config["models"]["net"]["n_classes"] == 200


def test_save_best_must_be_a_positive_count():
    import ex_fsd50k
    from helpers.config_checks import ConfigError
    with pytest.raises(ConfigError, match="save_best: must be None or an integer >= 1, got 0"):
        ex_fsd50k.SPEC.checked(resolved_config(ex_fsd50k.ex, save_best=0), with_files=False)
