"""The HDF5-mp3 format: writing, reading back, and validation errors that name file and problem."""

import h5py
import numpy as np
import pytest

from helpers.data import (DenseTargets, HDF5DatasetWriter, HDF5FormatError, PackedBitsTargets, read_targets,
                          validate_hdf5, write_hdf5_dataset)
from helpers.data.hdf5 import read_audio_names
from tests.helpers.data.clips import write_tone_hdf5


def test_written_file_validates_and_round_trips_names_and_targets(tmp_path):
    path = tmp_path / "clips.hdf"
    names, targets, _ = write_tone_hdf5(path, n_clips=3, classes_num=12)
    assert validate_hdf5(path, 12) == 3
    assert read_audio_names(path) == names
    np.testing.assert_array_equal(read_targets(path, PackedBitsTargets(12)), targets)
    with h5py.File(path, "r") as file:
        assert file["target"].shape == (3, 2) and file["target"].dtype == np.uint8
        np.testing.assert_array_equal(file["target"][:], np.packbits(targets.astype(bool), axis=-1))


def test_upstream_layout_with_fixed_length_names_is_accepted(tmp_path):
    path = tmp_path / "upstream.hdf"
    with h5py.File(path, "w") as file:
        file.create_dataset("audio_name", data=np.array([b"Yabc.mp3"], dtype="S20"))
        mp3 = file.create_dataset("mp3", shape=(1,), dtype=h5py.vlen_dtype(np.uint8))
        mp3[0] = np.frombuffer(b"xyz", dtype=np.uint8)
        file.create_dataset("target", data=np.zeros((1, 66), dtype=np.uint8))
    assert validate_hdf5(path, 527) == 1


def test_dense_targets_round_trip(tmp_path):
    path = tmp_path / "dense.hdf"
    values = np.array([[0.25] * 20 + [1] * 20], dtype=np.float32)
    write_hdf5_dataset(path, ["a.mp3"], [b"abc"], values, DenseTargets(40))
    assert validate_hdf5(path, 40, DenseTargets(40)) == 1
    np.testing.assert_array_equal(read_targets(path, DenseTargets(40)), values)


def test_missing_file_error_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.hdf"):
        validate_hdf5(tmp_path / "nowhere.hdf", 527)


def test_non_hdf5_file_is_rejected(tmp_path):
    path = tmp_path / "text.hdf"
    path.write_text("hello")
    with pytest.raises(HDF5FormatError, match="text.hdf"):
        validate_hdf5(path, 527)


def _file_with(path, **datasets):
    with h5py.File(path, "w") as file:
        for key, (shape, dtype) in datasets.items():
            file.create_dataset(key, shape=shape, dtype=dtype)


GOOD = {"audio_name": ((2,), h5py.string_dtype()), "mp3": ((2,), h5py.vlen_dtype(np.uint8)),
        "target": ((2, 66), np.uint8)}


@pytest.mark.parametrize("change, message", [
    ({"mp3": None}, "'mp3'"),
    ({"target": None}, "'target'"),
    ({"mp3": ((2, 100), np.uint8)}, "variable-length uint8"),
    ({"audio_name": ((2,), np.int32)}, "byte strings"),
    ({"target": ((2, 65), np.uint8)}, "width 65"),
    ({"target": ((2, 66), np.float32)}, "dtype"),
    ({"target": ((3, 66), np.uint8)}, "different lengths"),
])
def test_malformed_files_raise_naming_path_and_problem(tmp_path, change, message):
    layout = {**GOOD, **change}
    path = tmp_path / "bad.hdf"
    _file_with(path, **{key: value for key, value in layout.items() if value is not None})
    with pytest.raises(HDF5FormatError) as error:
        validate_hdf5(path, 527)
    assert "bad.hdf" in str(error.value) and message in str(error.value)


def test_writer_removes_partial_file_on_error(tmp_path):
    path = tmp_path / "out.hdf"
    with pytest.raises(ValueError, match="classes"):
        with HDF5DatasetWriter(path, PackedBitsTargets(10)) as writer:
            writer.append("ok.mp3", b"abc", np.zeros(10))
            writer.append("bad.mp3", b"abc", np.zeros(11))
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_empty_audio(tmp_path):
    with pytest.raises(ValueError, match="empty.mp3"):
        with HDF5DatasetWriter(tmp_path / "out.hdf", PackedBitsTargets(4)) as writer:
            writer.append("empty.mp3", b"", np.zeros(4))


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.02])
def test_truncated_file_is_rejected_naming_it(tmp_path, keep):
    path = tmp_path / "cut.hdf"
    write_tone_hdf5(path, n_clips=3, classes_num=12)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])  # e.g. an interrupted copy
    with pytest.raises(HDF5FormatError, match="cut.hdf"):
        validate_hdf5(path, 12)
