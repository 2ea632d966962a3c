"""The scale benchmark writes upstream's HDF5 layout, and its upstream formula is the project's weights in float32."""
import os

import h5py
import numpy as np

from benchmarks.index_scale_audioset import CLASSES, make_index_scale_audioset
from benchmarks.scale import upstream_formula
from helpers.data import PackedBitsTargets, class_balanced_weights_from_hdf5, decode_audio, read_targets, validate_hdf5


def test_index_scale_files_follow_upstreams_layout_and_weights_match(tmp_path):
    paths = make_index_scale_audioset(str(tmp_path), clips=3000, eval_clips=40)
    rows = {key: validate_hdf5(path, CLASSES) for key, path in paths.items()}
    assert sorted(os.listdir(tmp_path / "mp3")) == sorted(os.path.basename(path) for path in paths.values())
    assert rows == {"balanced": 30, "unbalanced": 2970, "eval": 40}
    with h5py.File(paths["unbalanced"], "r") as file:
        assert file["audio_name"].dtype == np.dtype("S20") and file["target"].shape == (2970, 66)
        assert file["target"].chunks is None  # contiguous, as upstream's script writes it
        assert file["audio_name"][7] == b"Y00000000007.mp3"
        assert len(decode_audio(file["mp3"][5], 32000)) == 3200  # a real 0.1 s mp3
    labels = read_targets(paths["unbalanced"], PackedBitsTargets(CLASSES)).sum(axis=1)
    assert labels.min() >= 1 and labels.max() <= 4
    training = [paths["balanced"], paths["unbalanced"]]
    np.testing.assert_allclose(upstream_formula(training), class_balanced_weights_from_hdf5(training, CLASSES),
                               rtol=1e-6)
