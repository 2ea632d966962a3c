"""ex_fsd50k.py in-process on CPU: train on a few clips, validate on the validation file, then evaluate the best
checkpoint on the evaluation file."""
import contextlib
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
    return tiny_training_updates(base_dir, SECONDS, {"datasets.valid.num_workers": 0,
                                                     "datasets.eval.num_workers": 0})


def test_training_then_best_checkpoint_on_the_eval_split(fsd50k_dir, tmp_path):
    import ex_fsd50k
    with contextlib.chdir(tmp_path):
        result = ex_fsd50k.ex.run(config_updates=tiny_updates(fsd50k_dir),
                                  options={"--loglevel": "ERROR", "--file_storage": "runs"}).result
    assert result["epochs"] == 2 and result["val.clips"] == 5 and result["eval_val.clips"] == 6
    for name in ("ap", "swa_ap", "eval_ap", "eval_swa_ap", "eval_roc"):
        assert math.isfinite(result[name]) and 0 <= result[name] <= 1, name


def test_every_named_config_resolves():
    import ex_fsd50k
    assert "variable_eval" in ex_fsd50k.ex.named_configs
    for name in ex_fsd50k.ex.named_configs:
        config = resolved_config(ex_fsd50k.ex, name)
        assert config["models"]["net"]["n_classes"] == 200
