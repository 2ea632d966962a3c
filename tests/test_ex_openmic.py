"""ex_openmic.py in-process on CPU: a tiny PaSST on a few synthetic OpenMIC-format clips (labels + mask)."""
import contextlib
import math

import numpy as np
import pytest

from helpers.data import DenseTargets, encode_mp3
from helpers.data.hdf5 import HDF5DatasetWriter
from tests.experiment_runs import resolved_config, tiny_training_updates

SECONDS = 2


def write_clips(path, count, width, target_of, seed=0):
    rng = np.random.default_rng(seed)
    with HDF5DatasetWriter(path, DenseTargets(width)) as writer:
        for index in range(count):
            waveform = (0.1 * rng.standard_normal(32000 * SECONDS)).astype(np.float32)
            writer.append(f"clip{index}.mp3", encode_mp3(waveform, 32000, 7), target_of(index))


def openmic_target(index):
    target = np.zeros(40, dtype=np.float32)
    target[index % 20] = 0.9  # one known positive
    target[20 + index % 20] = target[20 + (index + 1) % 20] = 1.0  # and one known negative
    return target


def tiny_updates(base_dir, n_classes):
    return tiny_training_updates(base_dir, SECONDS, {"models.net.n_classes": n_classes, "models.mel.timem": 20,
                                                     "datasets.test.batch_size": 5, "datasets.test.num_workers": 0})


@pytest.fixture(scope="module")
def openmic_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("openmic")
    (base / "mp3").mkdir()
    write_clips(base / "mp3" / "openmic_train.csv_mp3.hdf", 8, 40, openmic_target)
    write_clips(base / "mp3" / "openmic_test.csv_mp3.hdf", 6, 40, openmic_target, seed=1)
    return str(base)


def test_training_reports_masked_metrics_for_network_and_swa(openmic_dir, tmp_path):
    import ex_openmic
    with contextlib.chdir(tmp_path):
        result = ex_openmic.ex.run(config_updates=tiny_updates(openmic_dir, 20),
                                   options={"--loglevel": "ERROR", "--file_storage": "runs"}).result
    assert result["epochs"] == 2 and result["val.clips"] == 6
    for name in ("ap", "roc", "val.loss", "swa_ap", "swa_roc"):
        assert math.isfinite(result[name]) and 0 <= result[name] <= (1 if "loss" not in name else 10), name


def test_openmic_needs_20_classes(openmic_dir, tmp_path):
    import ex_openmic
    from helpers.config_checks import ConfigError
    with contextlib.chdir(tmp_path), pytest.raises(ConfigError, match="models.net.n_classes: the dataset has 20"):
        ex_openmic.ex.run(config_updates=tiny_updates(openmic_dir, 40), options={"--loglevel": "ERROR"})


def test_a_num_of_classes_other_than_openmics_20_is_refused(openmic_dir, tmp_path):
    import ex_openmic
    from helpers.config_checks import ConfigError
    updates = {**tiny_updates(openmic_dir, 20), "basedataset.num_of_classes": 40}
    with contextlib.chdir(tmp_path), pytest.raises(ConfigError, match="basedataset.num_of_classes: the dataset has "
                                                                      "20 classes, got 40"):
        ex_openmic.ex.run(config_updates=updates, options={"--loglevel": "ERROR"})


def test_every_named_config_resolves():
    import ex_openmic
    for name in ex_openmic.ex.named_configs:
        config = resolved_config(ex_openmic.ex, name)
        assert config["models"]["net"]["n_classes"] == 20
