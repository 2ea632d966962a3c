"""ex_esc50.py in-process on CPU: a tiny PaSST on a few synthetic one-hot clips spread over the 5 folds."""
import contextlib
import math

import h5py
import numpy as np
import pytest

from helpers.data import PackedBitsTargets, encode_mp3
from helpers.data.hdf5 import HDF5DatasetWriter
from tests.experiment_runs import resolved_config, tiny_training_updates

SECONDS = 2


@pytest.fixture(scope="module")
def esc50_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("esc50")
    (base / "mp3").mkdir()
    path = base / "mp3" / "esc50_mp3.hdf"
    rng = np.random.default_rng(0)
    with HDF5DatasetWriter(path, PackedBitsTargets(50)) as writer:
        for index in range(15):
            waveform = (0.1 * rng.standard_normal(32000 * SECONDS)).astype(np.float32)
            writer.append(f"{index}.wav", encode_mp3(waveform, 32000, 7), np.eye(50, dtype=np.float32)[index % 4])
    with h5py.File(path, "a") as file:
        file.create_dataset("fold", data=np.arange(15) % 5 + 1)
    return str(base)


def tiny_updates(base_dir):
    return tiny_training_updates(base_dir, SECONDS, {"basedataset.fold": 2, "models.mel.timem": 20,
                                                     "datasets.test.num_workers": 0})


def test_training_on_four_folds_reports_accuracy(esc50_dir, tmp_path):
    import ex_esc50
    with contextlib.chdir(tmp_path):
        result = ex_esc50.ex.run(config_updates=tiny_updates(esc50_dir),
                                 options={"--loglevel": "ERROR", "--file_storage": "runs"}).result
    assert result["epochs"] == 2 and result["val.clips"] == 3  # fold 2 holds clips 1, 6, 11
    assert 0 <= result["acc"] <= 1 and 0 <= result["swa_acc"] <= 1 and math.isfinite(result["val.loss"])
    assert "best_acc" in result and result["best_checkpoint"].endswith(".ckpt")


def test_every_named_config_resolves():
    import ex_esc50
    for name in ex_esc50.ex.named_configs:
        config = resolved_config(ex_esc50.ex, name)
        assert config["models"]["net"]["n_classes"] == 50


def upstream_layout(tmp_path):
    """Upstream's ESC-50 folder: esc50/meta/esc50.csv and esc50/audio_32k/*.wav (10 clips over the 5 folds)."""
    from helpers.data import encode_audio
    base = tmp_path / "audioset_hdf5s"
    (base / "esc50" / "meta").mkdir(parents=True)
    (base / "esc50" / "audio_32k").mkdir()
    rng = np.random.default_rng(1)
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for index in range(10):
        name = f"{index % 5 + 1}-{100 + index}-A-{index % 3}.wav"
        waveform = (0.1 * rng.standard_normal(32000 * SECONDS)).astype(np.float32)
        (base / "esc50" / "audio_32k" / name).write_bytes(encode_audio(waveform, 32000, "wav"))
        lines.append(f"{name},{index % 5 + 1},{index % 3},class{index % 3},False,{100 + index},A")
    (base / "esc50" / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    return base


def test_upstreams_layout_of_meta_csv_and_wav_folder_is_converted_once_and_trained_on(tmp_path):
    import ex_esc50
    base = upstream_layout(tmp_path)
    with contextlib.chdir(tmp_path):
        result = ex_esc50.ex.run(config_updates=tiny_updates(str(base)),
                                 options={"--loglevel": "ERROR", "--file_storage": "runs"}).result
    assert result["val.clips"] == 2 and (base / "mp3" / "esc50_mp3.hdf").is_file()  # fold 2: two clips
    with h5py.File(base / "mp3" / "esc50_mp3.hdf") as file:
        assert len(file["audio_name"]) == 10 and sorted(set(file["fold"][:])) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("update, message", [
    ({"basedataset.num_of_classes": 10}, "basedataset.num_of_classes: the dataset has 50 classes, got 10"),
    ({"basedataset.audio_path": "missing/"}, "basedataset.audio_path: folder 'missing/' does not exist")])
def test_a_bad_config_stops_before_upstreams_layout_is_converted(tmp_path, update, message):
    import ex_esc50
    from helpers.config_checks import ConfigError
    base = upstream_layout(tmp_path)
    with contextlib.chdir(tmp_path), pytest.raises(ConfigError, match=message):
        ex_esc50.ex.run(config_updates={**tiny_updates(str(base)), **update}, options={"--loglevel": "ERROR"})
    assert not (base / "mp3").exists()  # neither esc50_mp3.hdf nor its mp3 clips were made
