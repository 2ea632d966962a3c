"""The teacher logits file's identity and creation (helpers.data.teacher): the clip-name digest is hashed a
chunk at a time yet equals the one-name-at-a-time sha256 that files already written carry; a failed creation
leaves neither the file nor a temporary."""
import hashlib
import os

import h5py
import numpy as np
import pytest

import helpers.data.teacher as teacher
from helpers.data.teacher import (LOGITS_KIND, MISSING_KEY, WRITTEN_KEY, SourceIdentity, check_logits_file,
                                  create_logits_file, names_digest)

FIXED_NAMES = [f"Y{index:011d}.mp3" for index in range(1000)]
UNICODE_NAMES = ["a.wav", "chœur/é 1.flac", "日本語.mp3", "x" * 300, "tab\tname.ogg"] * 7
# the digests the one-name-at-a-time implementation stored in logits files before names were hashed in chunks
DIGESTS_WRITTEN_BEFORE = {"fixed": "c70c50e60a9bf0ff1b63402541c1c748c0e612aac40e66bb15731765e9abe8c0",
                          "unicode": "b1a0b5d8d46584c67a02c48af3da8e20cfb99cca55d469ed0088e6c2029bf6d5",
                          "empty": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}


def names_file(path, kind):
    """A file holding only `audio_name`: fixed-length bytes (upstream's S20), variable-length utf-8, or none."""
    with h5py.File(path, "w") as file:
        if kind == "fixed":
            file.create_dataset("audio_name", data=np.array([name.encode() for name in FIXED_NAMES], dtype="S20"))
        elif kind == "unicode":
            file.create_dataset("audio_name", data=UNICODE_NAMES, dtype=h5py.string_dtype("utf-8"))
        else:
            file.create_dataset("audio_name", shape=(0,), dtype="S20")
    return str(path)


def one_name_at_a_time(names):
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode("utf-8") + b"\n")
    return digest.hexdigest()


@pytest.mark.parametrize("chunk", [teacher.NAMES_CHUNK, 7, 1])
@pytest.mark.parametrize("kind, names", [("fixed", FIXED_NAMES), ("unicode", UNICODE_NAMES), ("empty", [])])
def test_the_names_digest_is_the_one_name_at_a_time_sha256(tmp_path, monkeypatch, chunk, kind, names):
    monkeypatch.setattr(teacher, "NAMES_CHUNK", chunk)
    digest = names_digest(names_file(tmp_path / "names.hdf", kind))
    assert digest == one_name_at_a_time(names) == DIGESTS_WRITTEN_BEFORE[kind]


def logits_file_of(path, source_path, digest):
    """A complete logits file as save_logits leaves it, its source identified by `digest`."""
    create_logits_file(path, SourceIdentity.of(source_path), classes=3, teacher="t")
    with h5py.File(path, "r+") as file:
        file[WRITTEN_KEY][:] = True
        file.attrs["source_names_sha256"] = digest


def test_a_logits_file_written_before_still_matches_its_source(tmp_path):
    source = names_file(tmp_path / "train.hdf", "fixed")
    logits_file_of(tmp_path / "train.logits.hdf", source, DIGESTS_WRITTEN_BEFORE["fixed"])
    assert check_logits_file(tmp_path / "train.logits.hdf", source, 3) == {"rows": 1000, "missing": 0}
    logits_file_of(tmp_path / "other.logits.hdf", source, DIGESTS_WRITTEN_BEFORE["unicode"])
    with pytest.raises(ValueError, match="was not computed from"):
        check_logits_file(tmp_path / "other.logits.hdf", source, 3)


def test_a_created_logits_file_is_complete_and_alone(tmp_path):
    source = names_file(tmp_path / "train.hdf", "unicode")
    create_logits_file(tmp_path / "out" / "train.logits.hdf", SourceIdentity.of(source), classes=3, teacher="t")
    assert os.listdir(tmp_path / "out") == ["train.logits.hdf"]
    with h5py.File(tmp_path / "out" / "train.logits.hdf", "r") as file:
        assert file.attrs["kind"] == LOGITS_KIND and not file[WRITTEN_KEY][:].any()
        assert file[MISSING_KEY].shape == (len(UNICODE_NAMES),)


def test_a_failed_creation_leaves_no_file_and_no_temporary(tmp_path):
    source = names_file(tmp_path / "train.hdf", "fixed")
    identity = SourceIdentity.of(source)
    os.remove(source)  # the source vanishes after it was identified: opening it fails mid-creation
    with pytest.raises(OSError):
        create_logits_file(tmp_path / "out" / "train.logits.hdf", identity, classes=3, teacher="t")
    assert os.listdir(tmp_path / "out") == []
