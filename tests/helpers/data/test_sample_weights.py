"""Class-balanced weights from packed bits (equal to the dense formula, lean), and computed once per run."""

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc

import h5py
import numpy as np
import pytest

from helpers.data import (DenseTargets, DistributedWeightedSampler, HDF5FormatError, PackedBitsTargets,
                          class_balanced_sample_weights, class_balanced_weights_from_hdf5,
                          shared_class_balanced_weights, write_hdf5_dataset)
from helpers.data import sample_weights as weights_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def dense_formula(targets: np.ndarray, offset: float, summed: bool) -> np.ndarray:
    """The formula as the project computed it before: a dense float64 clips x classes matrix."""
    labels = np.asarray(targets, dtype=np.float64) > 0.5
    weighted = labels * (1000.0 / (labels.sum(axis=0) + offset))
    return weighted.sum(axis=1) if summed else weighted.max(axis=1)


def random_targets(rows: int, classes: int, seed: int, never: tuple[int, ...] = ()) -> np.ndarray:
    rng = np.random.default_rng(seed)
    targets = rng.random((rows, classes)) < rng.random(classes) * 0.2
    targets[:, list(never)] = False
    return targets.astype(np.float32)


def write_packed(path, targets: np.ndarray) -> str:
    """Only the `target` dataset (what the weights read), packed as upstream stores it."""
    with h5py.File(path, "w") as file:
        file.create_dataset("target", data=np.packbits(targets > 0.5, axis=1))
    return str(path)


def assert_equal_to_dense(weights, targets, offset, summed):
    expected = dense_formula(targets, offset, summed)
    if summed:  # the same terms added in another order: equal up to rounding, exactly for <= 2 labels a clip
        np.testing.assert_allclose(weights, expected, rtol=1e-12, atol=0)
        few = (targets > 0.5).sum(axis=1) <= 2
        np.testing.assert_array_equal(weights[few], expected[few])
    else:
        np.testing.assert_array_equal(weights, expected)


@pytest.mark.parametrize("summed", [True, False])
@pytest.mark.parametrize("offset", [100, 2.5, 0])
def test_weights_from_packed_bits_equal_the_dense_formula_over_several_files(tmp_path, summed, offset):
    classes = 37  # not a multiple of 8: the last stored byte has padding bits
    never = () if offset == 0 else (0, 20, 36)  # with offset 0 every class must occur
    parts = [random_targets(rows, classes, seed, never) for seed, rows in enumerate([1, 950, 3000])]
    if offset == 0:
        parts[0][:] = 1
    files = [write_packed(tmp_path / f"part{number}.hdf", part) for number, part in enumerate(parts)]
    targets = np.concatenate(parts)
    weights = class_balanced_weights_from_hdf5(files, classes, offset, summed, chunk_rows=256)
    assert weights.dtype == np.float64 and weights.shape == (len(targets),)
    assert_equal_to_dense(weights, targets, offset, summed)
    # the in-memory path shares the arithmetic: identical to the bit
    np.testing.assert_array_equal(class_balanced_sample_weights(targets, offset, summed, chunk_rows=999), weights)


def test_527_classes_and_padding_bits_are_ignored(tmp_path):
    targets = random_targets(2000, 527, seed=5)
    stored = np.packbits(targets > 0.5, axis=1)
    stored[:, -1] |= 0b0000_0001  # 527 = 65 * 8 + 7: the last byte's lowest bit is padding (upstream ignores it)
    with h5py.File(tmp_path / "t.hdf", "w") as file:
        file.create_dataset("target", data=stored)
    weights = class_balanced_weights_from_hdf5([tmp_path / "t.hdf"], 527)
    assert_equal_to_dense(weights, targets, 100, True)


def test_dense_stored_targets_and_errors(tmp_path):
    targets = random_targets(300, 12, seed=2)
    write_hdf5_dataset(tmp_path / "dense.hdf", [f"c{i}" for i in range(300)], [b"x"] * 300, targets * 0.9,
                       DenseTargets(12))
    weights = class_balanced_weights_from_hdf5([tmp_path / "dense.hdf"], 12, target_codec=DenseTargets(12))
    assert_equal_to_dense(weights, targets, 100, True)
    with pytest.raises(HDF5FormatError, match=r"dense\.hdf.*needs 66 values per row"):
        class_balanced_weights_from_hdf5([tmp_path / "dense.hdf"], 527)
    with pytest.raises(ValueError, match="sample_weight_offset=0 leaves classes with no weight"):
        class_balanced_sample_weights(random_targets(50, 9, seed=1, never=(3,)), 0)


def test_weights_of_200k_clips_take_memory_proportional_to_the_packed_targets(tmp_path):
    rows, classes = 200_000, 527
    path = tmp_path / "big.hdf"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as file:
        stored = file.create_dataset("target", shape=(rows, 66), dtype=np.uint8)
        for start in range(0, rows, 50_000):
            labels = np.zeros((50_000, classes), dtype=bool)
            labels[np.arange(50_000), rng.integers(classes, size=50_000)] = True
            labels[np.arange(50_000), rng.integers(classes, size=50_000)] = True
            stored[start:start + 50_000] = np.packbits(labels, axis=1)
    packed_bytes = rows * 66  # 13 MB; the dense float64 matrix of the old code was 843 MB
    tracemalloc.start()
    try:
        weights = class_balanced_weights_from_hdf5([path], classes)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert weights.shape == (rows,) and (weights > 0).all()
    bound = packed_bytes + weights.nbytes  # the result, plus temporaries under the packed size
    assert peak < bound, f"traced peak {peak / 2**20:.1f} MiB for {packed_bytes / 2**20:.1f} MiB of packed targets"


def test_sampler_shards_at_2m_weights_are_disjoint_and_cover_the_draw():
    rng = np.random.default_rng(3)
    weights = rng.pareto(1.5, size=2_041_789) + 1e-3  # long-tailed like AudioSet's class-balanced weights
    samplers = [DistributedWeightedSampler(weights, num_samples=100_000, num_replicas=8, rank=rank,
                                           replacement=False, seed=11) for rank in range(8)]
    shards = [np.fromiter(sampler, dtype=np.int64) for sampler in samplers]
    union = np.concatenate(shards)
    assert [len(shard) for shard in shards] == [12_500] * 8
    assert len(np.unique(union)) == len(union) == 100_000
    np.testing.assert_array_equal(np.sort(union), np.sort(samplers[3].global_draw()))


# --- once per run -------------------------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    from helpers.data import sample_weights as module

    calls = []
    compute = module.class_balanced_weights_from_hdf5
    module.class_balanced_weights_from_hdf5 = lambda *args, **kwargs: calls.append(1) or compute(*args, **kwargs)
    files, out, mode = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    if mode == "gloo":
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method="file://" + os.path.join(os.path.dirname(out), "rdv"), rank=int(os.environ["RANK"]),
                                world_size=int(os.environ["WORLD_SIZE"]))
    weights = module.shared_class_balanced_weights(files, 10, sample_weight_offset=3, timeout=60)
    np.save(out, weights)
    print(json.dumps({"computed": len(calls)}), flush=True)
    if mode == "gloo":
        dist.destroy_process_group()  # (exiting with the group's threads alive can abort: "terminate called ...")
""")


def computations_by_rank(tmp_path, files, mode, expected, world=2) -> dict[int, int]:
    """Start `world` processes as torchrun would (RANK, LOCAL_RANK, WORLD_SIZE), rank 0 last; check that
    each got `expected` and return how often each computed the weights."""
    processes = []
    for rank in reversed(range(world)):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
               "PYTHONPATH": ROOT}
        out = str(tmp_path / f"{mode}-rank{rank}.npy")
        processes.append((rank, out, subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(files), out, mode],
                                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                      text=True)))
    computed = {}
    try:
        for rank, out, process in processes:
            stdout, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr
            computed[rank] = json.loads(stdout.strip().splitlines()[-1])["computed"]
            np.testing.assert_array_equal(np.load(out), expected)
    finally:
        for _, _, process in processes:  # (on a timeout or failure: none left running)
            if process.poll() is None:
                process.kill()
                process.wait()
    return computed


def cache_files(folder) -> list[str]:
    return [name for name in os.listdir(folder) if ".weights-" in name]


@pytest.fixture
def two_files(tmp_path):
    parts = [random_targets(rows, 10, seed) for seed, rows in enumerate([40, 700])]
    files = [write_packed(tmp_path / f"f{number}.hdf", part) for number, part in enumerate(parts)]
    return files, class_balanced_weights_from_hdf5(files, 10, 3)


def test_once_per_run_under_a_two_process_gloo_group(tmp_path, two_files):
    files, expected = two_files
    assert computations_by_rank(tmp_path, files, "gloo", expected) == {0: 1, 1: 0}
    assert not cache_files(tmp_path)  # a broadcast, no cache file


def test_once_per_run_before_the_process_group_through_a_cache_file(tmp_path, two_files):
    files, expected = two_files
    assert computations_by_rank(tmp_path, files, "file", expected) == {0: 1, 1: 0}
    cached = cache_files(tmp_path)
    assert len(cached) == 1 and cached[0].startswith("f0.weights-") and cached[0].endswith(".npy")
    # the next run on the same files and options reads the cache, on rank 0 too
    assert computations_by_rank(tmp_path, files, "file", expected) == {0: 0, 1: 0}


def test_cache_key_follows_the_files_and_options(tmp_path, two_files):
    files, _ = two_files
    key = weights_module.weights_cache_key(files, 10, 3, True)
    assert key == weights_module.weights_cache_key(files, 10, 3, True)
    assert len({key, weights_module.weights_cache_key(files, 10, 4, True),
                weights_module.weights_cache_key(files, 10, 3, False),
                weights_module.weights_cache_key(files[::-1], 10, 3, True)}) == 4
    write_packed(files[1], random_targets(701, 10, seed=9))
    assert weights_module.weights_cache_key(files, 10, 3, True) != key


def test_waiting_rank_times_out_naming_the_cache_file(tmp_path, two_files, monkeypatch):
    files, _ = two_files
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(TimeoutError, match=r"rank 1: .*f0\.weights-.*\.npy within 0 s.*LOCAL_RANK 0"):
        shared_class_balanced_weights(files, 10, 3, timeout=0.3, poll_seconds=0.05)


def test_read_only_data_folder_falls_back_to_the_user_cache(tmp_path, two_files, monkeypatch):
    files, _ = two_files
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(weights_module.os, "access", lambda path, mode: False)
    key = weights_module.weights_cache_key(files, 10, 3, True)
    assert weights_module.weights_cache_path(files, key) == str(tmp_path / "cache" / "passt" / f"f0.weights-{key}.npy")
    assert weights_module.weights_cache_path(files, key, cache_dir="/elsewhere") == f"/elsewhere/f0.weights-{key}.npy"


def test_single_process_computes_without_a_cache(tmp_path, two_files, monkeypatch):
    files, expected = two_files
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    np.testing.assert_array_equal(shared_class_balanced_weights(files, 10, 3), expected)
    assert not cache_files(tmp_path)

