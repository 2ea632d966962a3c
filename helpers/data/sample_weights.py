"""Class-balanced sample weights, computed from packed target bits in chunks, once per run.

With per-class counts n_c over all clips, class weight w_c = 1000 / (n_c + sample_weight_offset); a clip's
weight is the sum (or the max) of w_c over its labels. Nothing here builds a clips x classes matrix: the
counts come from the bits of a few thousand rows at a time, and each clip's weight from one lookup per stored
byte in a table of the summed (or max) class weights of that byte's 256 values. Memory is the result (8 bytes
per clip) plus one chunk of packed rows.

Under DDP (WORLD_SIZE > 1), `shared_class_balanced_weights` computes them on one process per node and lets
the others read them: through a broadcast when a process group already runs, else through a cache file next
to the HDF5 files (keyed by their identity and the weight options), which the other ranks wait for.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from typing import Iterator, Sequence

import h5py
import numpy as np

from helpers.data.atomic import atomic_open
from helpers.data.hdf5 import TARGET_KEY, HDF5FormatError, PackedBitsTargets, TargetCodec
from helpers.data.processes import wait_for

logger = logging.getLogger(__name__)

CHUNK_ROWS = 65536
CACHE_VERSION = 1
# _BYTE_BITS[v, k]: bit k of the byte value v in np.packbits order (k = 0 is the most significant bit, class 8 j)
_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1)


def _classes(codec: TargetCodec) -> int:
    return codec.classes_num if isinstance(codec, PackedBitsTargets) else codec.width


def _packed_chunks(targets, codec: TargetCodec | None, chunk_rows: int) -> Iterator[np.ndarray]:
    """Rows of `targets` (a stored `target` dataset, or dense labels when `codec` is None) as packed bits
    (uint8, ceil(classes / 8) per row), `chunk_rows` at a time."""
    for start in range(0, len(targets), chunk_rows):
        chunk = targets[start:start + chunk_rows]
        if codec is None:
            yield np.packbits(np.asarray(chunk) > 0.5, axis=1)
        elif isinstance(codec, PackedBitsTargets):
            yield np.asarray(chunk, dtype=np.uint8)
        else:
            yield np.packbits(codec.decode(chunk) > 0.5, axis=1)


def add_class_counts(counts: np.ndarray, packed: np.ndarray, rows_per_sum: int = 4096) -> None:
    """counts[8 j + k] += rows with bit k of byte j set (bits unpacked a few thousand rows at a time, so a
    uint16 sum cannot overflow)."""
    for start in range(0, len(packed), rows_per_sum):
        counts += np.unpackbits(packed[start:start + rows_per_sum], axis=1).sum(axis=0, dtype=np.uint16)


def class_weights_from_counts(counts: np.ndarray, sample_weight_offset: float) -> np.ndarray:
    """1000 / (count + offset) per class, float64; an error if the offset leaves a class without weight."""
    per_class = np.asarray(counts, dtype=np.int64) + sample_weight_offset
    if np.any(per_class <= 0):
        raise ValueError(f"sample_weight_offset={sample_weight_offset} leaves classes with no weight")
    return 1000.0 / per_class


def _byte_tables(class_weights: np.ndarray, width: int, summed: bool) -> np.ndarray:
    """table[j, v]: the sum (or max) of the class weights of the bits set in value v of stored byte j."""
    padded = np.zeros(width * 8, dtype=np.float64)
    padded[:len(class_weights)] = class_weights
    padded = padded.reshape(width, 8)
    table = np.zeros((width, 256), dtype=np.float64)
    for bit in range(8):  # in class order; adding (or max with) the zeros of unset bits changes nothing
        contribution = _BYTE_BITS[:, bit][None, :] * padded[:, bit][:, None]
        table = table + contribution if summed else np.maximum(table, contribution)
    return table


def _clip_weights(tables: np.ndarray, packed: np.ndarray, summed: bool, out: np.ndarray) -> None:
    """Each row's weight from its packed bytes: one table lookup per byte, summed (or max) into `out`."""
    out[:] = 0.0
    for byte in range(tables.shape[0]):
        looked_up = tables[byte].take(packed[:, byte])
        if summed:
            out += looked_up
        else:
            np.maximum(out, looked_up, out=out)


def _weights(sources: Sequence, classes_num: int, codec: TargetCodec | None, sample_weight_offset: float,
             summed: bool, chunk_rows: int) -> np.ndarray:
    """The two passes over the sources (HDF5 paths, or one dense array when `codec` is None): per-class
    counts, then per-clip weights."""
    width = (classes_num + 7) // 8
    counts = np.zeros(width * 8, dtype=np.int64)
    total = 0
    for source in sources:
        with _targets(source, codec) as targets:
            total += len(targets)
            for packed in _packed_chunks(targets, codec, chunk_rows):
                add_class_counts(counts, packed)
    tables = _byte_tables(class_weights_from_counts(counts[:classes_num], sample_weight_offset), width, summed)
    weights = np.empty(total, dtype=np.float64)
    position = 0
    for source in sources:
        with _targets(source, codec) as targets:
            for packed in _packed_chunks(targets, codec, chunk_rows):
                _clip_weights(tables, packed, summed, weights[position:position + len(packed)])
                position += len(packed)
    if position != total:
        raise RuntimeError(f"targets changed while the weights were computed ({total} rows, then {position})")
    return weights


@contextlib.contextmanager
def _targets(source, codec: TargetCodec | None):
    """The target rows of `source`: a dense array as it is, or the `target` dataset of an HDF5 file
    (checked to have the codec's stored width)."""
    if codec is None:
        yield source
        return
    with h5py.File(source, "r") as file:
        if TARGET_KEY not in file:
            raise HDF5FormatError(f"{source!r} has no dataset {TARGET_KEY!r}")
        targets = file[TARGET_KEY]
        if targets.ndim != 2 or targets.shape[1] != codec.stored_width:
            raise HDF5FormatError(f"{source!r}: dataset {TARGET_KEY!r} has shape {targets.shape}, but {codec} "
                                  f"needs {codec.stored_width} values per row")
        yield targets


def class_balanced_sample_weights(targets: np.ndarray, sample_weight_offset: float = 100,
                                  sample_weight_sum: bool = True, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """Weight each clip of dense (clips, classes) targets (labels > 0.5) by the rarity of its classes.

    Class weight w_c = 1000 / (n_c + sample_weight_offset) with n_c the clips of class c; a clip's weight is
    the sum (or, with `sample_weight_sum=False`, the max) of w_c over its labels. The offset keeps very
    rare classes from dominating. Returns float64 of shape (N,), the same values as the packed-bits path.
    """
    targets = np.asarray(targets)
    if targets.ndim != 2:
        raise ValueError(f"targets must be (clips, classes), got shape {targets.shape}")
    return _weights([targets], targets.shape[1], None, sample_weight_offset, sample_weight_sum, chunk_rows)


def class_balanced_weights_from_hdf5(hdf5_files: Sequence[str | os.PathLike], classes_num: int,
                                     sample_weight_offset: float = 100, sample_weight_sum: bool = True,
                                     target_codec: TargetCodec | None = None,
                                     chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """`class_balanced_sample_weights` over the clips of several files, concatenated in the given order
    (which must match the order of the ConcatDataset they index), read in chunks of `chunk_rows`."""
    codec = target_codec or PackedBitsTargets(classes_num)
    started = time.perf_counter()
    weights = _weights([os.fspath(path) for path in hdf5_files], _classes(codec), codec, sample_weight_offset,
                       sample_weight_sum, chunk_rows)
    logger.info("class-balanced weights for %d clips (offset %s, %s) in %.1f s", len(weights), sample_weight_offset,
                "sum" if sample_weight_sum else "max", time.perf_counter() - started)
    return weights


# --- once per run -------------------------------------------------------------------------------------
def _rows(path: str) -> int:
    with h5py.File(path, "r") as file:
        if TARGET_KEY not in file:
            raise HDF5FormatError(f"{path!r} has no dataset {TARGET_KEY!r}")
        return len(file[TARGET_KEY])


def weights_cache_key(hdf5_files: Sequence[str], classes_num: int, sample_weight_offset: float,
                      sample_weight_sum: bool, target_codec: TargetCodec | None = None) -> str:
    """A hex digest of the files' identity (real path, size, mtime, rows) and the weight options."""
    identity = []
    for path in hdf5_files:
        status = os.stat(path)
        identity.append([os.path.realpath(path), status.st_size, status.st_mtime_ns, _rows(path)])
    description = {"version": CACHE_VERSION, "files": identity, "classes_num": int(classes_num),
                   "offset": float(sample_weight_offset), "sum": bool(sample_weight_sum),
                   "codec": repr(target_codec or PackedBitsTargets(classes_num))}
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]


def default_cache_dir() -> str:
    """Where cache files go when the HDF5 folder is not writable: $XDG_CACHE_HOME/passt (~/.cache/passt)."""
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "passt")


def weights_cache_path(hdf5_files: Sequence[str], key: str, cache_dir: str | None = None) -> str:
    """`<first file>.weights-<key>.npy` next to the first file, or in `cache_dir` (default: the
    `default_cache_dir()` when the files' folder is not writable)."""
    first = os.path.realpath(hdf5_files[0])
    folder = cache_dir or os.path.dirname(first)
    if cache_dir is None and not os.access(folder, os.W_OK):
        folder = default_cache_dir()
    name = os.path.splitext(os.path.basename(first))[0]
    return os.path.join(folder, f"{name}.weights-{key}.npy")


def _load_cached(path: str, rows: int) -> np.ndarray | None:
    try:
        weights = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        logger.warning("ignoring unreadable weights cache %s: %s", path, error)
        return None
    if weights.shape != (rows,) or weights.dtype != np.float64:
        logger.warning("ignoring weights cache %s: shape %s dtype %s, expected (%d,) float64", path, weights.shape,
                       weights.dtype, rows)
        return None
    return weights


def _broadcast(weights: np.ndarray | None, rows: int, rank: int) -> np.ndarray:
    """Rank 0's weights on every rank of the running process group (CUDA tensors under NCCL)."""
    import torch
    import torch.distributed as dist

    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.from_numpy(weights).to(device) if rank == 0 else torch.empty(rows, dtype=torch.float64,
                                                                                 device=device)
    try:
        dist.broadcast(tensor, src=0)
    except RuntimeError as error:
        raise RuntimeError(f"rank {rank}: receiving the class-balanced weights from rank 0 failed "
                           f"(did rank 0 fail?): {error}") from error
    return tensor.cpu().numpy()


def shared_class_balanced_weights(hdf5_files: Sequence[str | os.PathLike], classes_num: int,
                                  sample_weight_offset: float = 100, sample_weight_sum: bool = True,
                                  target_codec: TargetCodec | None = None, cache_dir: str | None = None,
                                  timeout: float = 600.0, poll_seconds: float = 0.2) -> np.ndarray:
    """`class_balanced_weights_from_hdf5`, computed once per run rather than once per DDP rank.

    - One process (WORLD_SIZE unset or 1): computed directly, no cache.
    - A torch.distributed process group is running: rank 0 computes, `broadcast`s to the others.
    - Otherwise (torchrun before Lightning starts the group): the process with LOCAL_RANK 0 on each node
      writes `weights_cache_path(...)` (atomically, reused by later runs on the same files and options); the
      other ranks wait for it up to `timeout` seconds, then raise TimeoutError naming the file.
    """
    import torch.distributed as dist

    files = [os.fspath(path) for path in hdf5_files]
    options = (classes_num, sample_weight_offset, sample_weight_sum, target_codec)
    grouped = dist.is_available() and dist.is_initialized()
    world = dist.get_world_size() if grouped else int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1:
        return class_balanced_weights_from_hdf5(files, *options)
    rows = sum(_rows(path) for path in files)
    if grouped:
        rank = dist.get_rank()
        return _broadcast(class_balanced_weights_from_hdf5(files, *options) if rank == 0 else None, rows, rank)
    rank = int(os.environ.get("RANK", 0))
    writer = int(os.environ.get("LOCAL_RANK", rank)) == 0
    path = weights_cache_path(files, weights_cache_key(files, *options), cache_dir)
    if writer:
        weights = _load_cached(path, rows) if os.path.exists(path) else None
        if weights is None:
            weights = class_balanced_weights_from_hdf5(files, *options)
            with atomic_open(path) as file:
                np.save(file, weights, allow_pickle=False)
            logger.info("wrote the class-balanced weights to %s for the other ranks", path)
        else:
            logger.info("class-balanced weights for %d clips from the cache %s", rows, path)
        return weights
    return wait_for(lambda: _load_cached(path, rows) if os.path.exists(path) else None, timeout, poll_seconds,
                    f"rank {rank}: the class-balanced weights of {files} did not appear at {path} within "
                    f"{timeout:.0f} s; the process with LOCAL_RANK 0 computes them (did it fail?)")
