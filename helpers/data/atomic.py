"""Writing a file that is read later so that it is never seen half-written: the one way it is done here.

The data go to a temporary file next to the target (`<target>.partial-<pid>`), which is synced and renamed
onto the target, and then the folder is synced (the rename itself survives a power cut). A reader sees the old
file or the complete new one; a failing write removes its temporary and leaves the old file as it was. A killed
process may leave its temporary behind, never a half-written target.

    with atomic_open(path, "wb") as file:      # torch.save, np.save, json.dump, file.write
        ...
    with AtomicWrite(path) as temporary:        # h5py.File(temporary, "w")
        ...
    write_text(path, text)
"""

from __future__ import annotations

import contextlib
import os
from typing import IO, Iterator


def _fsync(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class AtomicWrite:
    """The temporary path to write `path` through; `commit()` puts it in place, `discard()` removes it. As a
    context manager it gives the temporary path and commits when the block succeeds, discards when it raises.
    Creates the target's folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.directory = os.path.dirname(os.path.abspath(self.path))
        self.temporary = f"{self.path}.partial-{os.getpid()}"
        os.makedirs(self.directory, exist_ok=True)

    def commit(self) -> None:
        """Sync the temporary, rename it onto the target, sync the folder (a failure discards the temporary)."""
        try:
            _fsync(self.temporary)
            os.replace(self.temporary, self.path)
        except BaseException:
            self.discard()
            raise
        _fsync(self.directory)

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.temporary)

    def __enter__(self) -> str:
        return self.temporary

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **open_options) -> Iterator[IO]:
    """`open(path, mode, **open_options)` through an `AtomicWrite`: the file appears at `path` complete when the
    block ends, or not at all when it raises."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open writes a whole file: mode {mode!r} must start with 'w'")
    with AtomicWrite(path) as temporary, open(temporary, mode, **open_options) as file:
        yield file


def write_text(path: str | os.PathLike, text: str) -> None:
    """`path` holds `text` (utf-8), written through `atomic_open`."""
    with atomic_open(path, "w", encoding="utf-8") as file:
        file.write(text)
