"""Writing a file safely: the target is the old file or the complete new one, never a part; nothing is left
behind by a failed write; the file and then its folder are synced."""
import os
import stat

import pytest

from helpers.data.atomic import AtomicWrite, atomic_open


@pytest.fixture
def synced(monkeypatch):
    """What os.fsync, os.replace are called on, in order: ("file" | "dir", path or fd) entries."""
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        calls.append(("dir" if stat.S_ISDIR(os.fstat(descriptor).st_mode) else "file", os.fstat(descriptor).st_ino))
        real_fsync(descriptor)

    def replace(source, target):
        calls.append(("rename", os.path.basename(os.fspath(target))))
        real_replace(source, target)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return calls


def test_the_contents_appear_only_when_complete(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with atomic_open(path) as file:
        file.write(b"new ")
        file.flush()
        assert path.read_bytes() == b"old"
        file.write(b"contents")
    assert path.read_bytes() == b"new contents"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_failing_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with pytest.raises(OSError, match="No space"):
        with atomic_open(path, "w", encoding="utf-8") as file:
            file.write("half")
            raise OSError(28, "No space left on device")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.json"]


def test_the_file_is_synced_before_the_rename_and_the_folder_after(tmp_path, synced):
    with atomic_open(tmp_path / "out.bin") as file:
        file.write(b"x")
    assert synced == [("file", (tmp_path / "out.bin").stat().st_ino), ("rename", "out.bin"),
                      ("dir", tmp_path.stat().st_ino)]


def test_a_path_to_write_for_libraries_that_open_files_themselves(tmp_path):
    path = tmp_path / "sub" / "folder" / "data.h5"
    with AtomicWrite(path) as temporary:
        assert os.path.dirname(temporary) == str(path.parent) and temporary != str(path)
        with open(temporary, "wb") as file:
            file.write(b"hdf5")
        assert not path.exists()
    assert path.read_bytes() == b"hdf5" and os.listdir(path.parent) == ["data.h5"]


def test_a_failure_before_the_temporary_exists_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with AtomicWrite(tmp_path / "never.h5"):
            raise RuntimeError("the writer failed before creating its file")
    assert os.listdir(tmp_path) == []


def test_a_failing_sync_discards_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / "out.npy"
    path.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", lambda descriptor: (_ for _ in ()).throw(OSError(5, "Input/output error")))
    with pytest.raises(OSError, match="Input/output"):
        with atomic_open(path) as file:
            file.write(b"new")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.npy"]


def test_only_whole_file_modes_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="'ab'"):
        with atomic_open(tmp_path / "log", "ab"):
            pass
