"""The HDF5-mp3 format: one file per split with datasets `audio_name`, `mp3` and `target`.

- `audio_name`: (N,) byte strings, e.g. b"Y--4gqARaEJE.mp3"
- `mp3`: (N,) variable-length uint8, the bytes of one encoded audio file each
- `target`: (N, W) labels; by default `np.packbits` of the multi-hot vector (W = ceil(C / 8), uint8);
  OpenMIC stores dense float targets instead (see `DenseTargets`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import h5py
import numpy as np

from helpers.data.atomic import AtomicWrite

AUDIO_NAME_KEY = "audio_name"
AUDIO_KEY = "mp3"
TARGET_KEY = "target"
REQUIRED_KEYS = (AUDIO_NAME_KEY, AUDIO_KEY, TARGET_KEY)


class HDF5FormatError(ValueError):
    """An HDF5 file does not follow the HDF5-mp3 format; the message names the file and the problem."""


@dataclass(frozen=True)
class PackedBitsTargets:
    """Multi-hot targets stored as `np.packbits` rows of ceil(classes_num / 8) uint8."""

    classes_num: int

    @property
    def stored_width(self) -> int:
        return (self.classes_num + 7) // 8

    def encode(self, multi_hot: np.ndarray) -> np.ndarray:
        multi_hot = np.asarray(multi_hot)
        if multi_hot.shape[-1] != self.classes_num:
            raise ValueError(f"targets have {multi_hot.shape[-1]} classes, expected {self.classes_num}")
        return np.packbits(multi_hot > 0.5, axis=-1)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        return np.unpackbits(np.asarray(stored, dtype=np.uint8), axis=-1, count=self.classes_num).astype(np.float32)

    def check_dtype(self, dtype: np.dtype) -> bool:
        return dtype == np.uint8


@dataclass(frozen=True)
class DenseTargets:
    """Targets stored as they are, `width` float values per clip (e.g. OpenMIC's labels + mask)."""

    width: int

    @property
    def stored_width(self) -> int:
        return self.width

    def encode(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float32)
        if values.shape[-1] != self.width:
            raise ValueError(f"targets have width {values.shape[-1]}, expected {self.width}")
        return values

    def decode(self, stored: np.ndarray) -> np.ndarray:
        return np.asarray(stored, dtype=np.float32)

    def check_dtype(self, dtype: np.dtype) -> bool:
        return np.issubdtype(dtype, np.number) or dtype == np.bool_


TargetCodec = PackedBitsTargets | DenseTargets


def _is_vlen_uint8(dtype: np.dtype) -> bool:
    base = h5py.check_vlen_dtype(dtype)
    return base is not None and base == np.uint8


def _is_string(dtype: np.dtype) -> bool:
    return dtype.kind == "S" or h5py.check_string_dtype(dtype) is not None


def validate_hdf5(path: str | os.PathLike, classes_num: int, target_codec: TargetCodec | None = None) -> int:
    """Check that `path` is an HDF5-mp3 file for `classes_num` classes and return its number of clips.

    Raises FileNotFoundError for a missing file and HDF5FormatError naming the path and the missing
    dataset, wrong dtype, wrong target width or mismatched lengths.
    """
    path = os.fspath(path)
    codec = target_codec or PackedBitsTargets(classes_num)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"HDF5 dataset file {path!r} does not exist")
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise HDF5FormatError(f"{path!r} is not a readable HDF5 file: {error}") from error
    with file:
        missing = [key for key in REQUIRED_KEYS if key not in file]
        if missing:
            raise HDF5FormatError(f"{path!r} lacks dataset(s) {missing}; an HDF5-mp3 file needs {list(REQUIRED_KEYS)}"
                                  f" (found {sorted(file.keys())})")
        names, audio, target = (file[key] for key in REQUIRED_KEYS)
        if names.ndim != 1 or not _is_string(names.dtype):
            raise HDF5FormatError(f"{path!r}: dataset {AUDIO_NAME_KEY!r} must be 1-D byte strings, "
                                  f"found shape {names.shape} dtype {names.dtype}")
        if audio.ndim != 1 or not _is_vlen_uint8(audio.dtype):
            raise HDF5FormatError(f"{path!r}: dataset {AUDIO_KEY!r} must be 1-D variable-length uint8, "
                                  f"found shape {audio.shape} dtype {audio.dtype}")
        if target.ndim != 2 or not codec.check_dtype(target.dtype):
            raise HDF5FormatError(f"{path!r}: dataset {TARGET_KEY!r} must be 2-D with a dtype fitting {codec}, "
                                  f"found shape {target.shape} dtype {target.dtype}")
        if target.shape[1] != codec.stored_width:
            raise HDF5FormatError(f"{path!r}: dataset {TARGET_KEY!r} has width {target.shape[1]}, but {codec} "
                                  f"needs {codec.stored_width}")
        lengths = {key: file[key].shape[0] for key in REQUIRED_KEYS}
        if len(set(lengths.values())) != 1:
            raise HDF5FormatError(f"{path!r}: datasets have different lengths {lengths}")
        return lengths[AUDIO_NAME_KEY]


class HDF5DatasetWriter:
    """Streams clips into a new HDF5-mp3 file through an `AtomicWrite`: the file appears under its name only
    after `close()`. Use as a context manager; on an exception the temporary file is removed."""

    def __init__(self, path: str | os.PathLike, target_codec: TargetCodec, chunk: int = 256):
        self.path = os.fspath(path)
        self.codec = target_codec
        self._target = AtomicWrite(self.path)
        self._file = h5py.File(self._target.temporary, "w")
        target_dtype = np.uint8 if isinstance(target_codec, PackedBitsTargets) else np.float32
        self._names = self._file.create_dataset(AUDIO_NAME_KEY, shape=(0,), maxshape=(None,), chunks=(chunk,),
                                                dtype=h5py.string_dtype("utf-8"))
        self._audio = self._file.create_dataset(AUDIO_KEY, shape=(0,), maxshape=(None,), chunks=(chunk,),
                                                dtype=h5py.vlen_dtype(np.uint8))
        self._targets = self._file.create_dataset(TARGET_KEY, shape=(0, target_codec.stored_width),
                                                  maxshape=(None, target_codec.stored_width),
                                                  chunks=(chunk, target_codec.stored_width), dtype=target_dtype)
        self.count = 0

    def append(self, name: str, audio_bytes: bytes, target: np.ndarray) -> None:
        """Add one clip: its name, its encoded file bytes and its (unencoded) target vector."""
        if not audio_bytes:
            raise ValueError(f"clip {name!r} has no audio bytes")
        index = self.count
        for dataset in (self._names, self._audio, self._targets):
            dataset.resize(index + 1, axis=0)
        self._names[index] = name
        self._audio[index] = np.frombuffer(bytes(audio_bytes), dtype=np.uint8)
        self._targets[index] = self.codec.encode(target)
        self.count += 1

    def add_dataset(self, key: str, values: np.ndarray) -> None:
        """Store an extra per-clip dataset (e.g. ESC-50's `fold`); it must have one row per clip."""
        if len(values) != self.count:
            raise ValueError(f"extra dataset {key!r} has {len(values)} rows, the file has {self.count} clips")
        self._file.create_dataset(key, data=values)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._target.commit()

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._target.discard()

    def __enter__(self) -> "HDF5DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_hdf5_dataset(path: str | os.PathLike, names: Iterable[str], audio_bytes: Iterable[bytes],
                       targets: Iterable[np.ndarray], target_codec: TargetCodec) -> int:
    """Write a whole HDF5-mp3 file from parallel sequences; returns the number of clips written."""
    with HDF5DatasetWriter(path, target_codec) as writer:
        for name, data, target in zip(names, audio_bytes, targets, strict=True):
            writer.append(name, data, target)
        return writer.count


def read_targets(path: str | os.PathLike, target_codec: TargetCodec) -> np.ndarray:
    """Read and decode the whole `target` dataset of a file: (N, classes) float32."""
    with h5py.File(path, "r") as file:
        return target_codec.decode(file[TARGET_KEY][:])


def read_audio_names(path: str | os.PathLike) -> list[str]:
    """Read all clip names of a file as str."""
    with h5py.File(path, "r") as file:
        return [as_str(name) for name in file[AUDIO_NAME_KEY][:]]


def as_str(value: bytes | str) -> str:
    """HDF5 strings come back as bytes (fixed or variable length); return them as str."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
