"""Class-balanced weights, the distributed weighted sampler, shard sampler and file preloading."""

import numpy as np
import pytest

from helpers.data import (DistributedShardSampler, DistributedWeightedSampler, class_balanced_sample_weights,
                          class_balanced_weights_from_hdf5, preload_files, write_hdf5_dataset, PackedBitsTargets)

TARGETS = np.array([[1, 0, 0],
                    [1, 1, 0],
                    [0, 0, 1],
                    [1, 0, 1]], dtype=np.float32)


def test_weights_match_a_hand_computation():
    # class counts 3, 1, 2; offset 1 -> class weights 1000/4, 1000/2, 1000/3
    w = [250.0, 500.0, 1000.0 / 3]
    summed = class_balanced_sample_weights(TARGETS, sample_weight_offset=1, sample_weight_sum=True)
    np.testing.assert_allclose(summed, [w[0], w[0] + w[1], w[2], w[0] + w[2]])
    maxed = class_balanced_sample_weights(TARGETS, sample_weight_offset=1, sample_weight_sum=False)
    np.testing.assert_allclose(maxed, [w[0], w[1], w[2], w[2]])


def test_weights_from_files_concatenate_in_the_given_order(tmp_path):
    codec = PackedBitsTargets(3)
    write_hdf5_dataset(tmp_path / "a.hdf", ["a0", "a1"], [b"x", b"x"], TARGETS[:2], codec)
    write_hdf5_dataset(tmp_path / "b.hdf", ["b0", "b1"], [b"x", b"x"], TARGETS[2:], codec)
    weights = class_balanced_weights_from_hdf5([tmp_path / "a.hdf", tmp_path / "b.hdf"], 3, sample_weight_offset=1)
    np.testing.assert_allclose(weights, class_balanced_sample_weights(TARGETS, 1))


def test_ddp_shards_are_disjoint_equal_sized_and_cover_the_epoch_draw():
    weights = np.arange(1, 31, dtype=np.float64)
    samplers = [DistributedWeightedSampler(weights, num_samples=20, num_replicas=3, rank=rank, replacement=False,
                                           seed=4) for rank in range(3)]
    shards = [list(sampler) for sampler in samplers]
    assert [len(shard) for shard in shards] == [7, 7, 7] == [len(sampler) for sampler in samplers]
    assert sorted(sum(shards, [])) == sorted(samplers[0].global_draw().tolist())
    assert len(set(sum(shards, []))) == 21  # without replacement: no clip on two ranks
    assert list(samplers[1]) == shards[1]  # same epoch, same shard
    for sampler in samplers:
        sampler.set_epoch(1)
    assert [list(sampler) for sampler in samplers] != shards


def test_weighted_draw_follows_the_weights():
    weights = np.array([0.0, 1.0, 3.0])
    drawn = np.array(list(DistributedWeightedSampler(weights, num_samples=4000, num_replicas=1, rank=0)))
    assert not (drawn == 0).any()
    assert (drawn == 2).mean() == pytest.approx(0.75, abs=0.03)


def test_sampler_rejects_bad_input():
    with pytest.raises(ValueError, match="distinct"):
        DistributedWeightedSampler([1.0, 1.0], num_samples=3, num_replicas=1, rank=0, replacement=False)
    with pytest.raises(ValueError, match="weights"):
        DistributedWeightedSampler([0.0, 0.0], num_samples=1, num_replicas=1, rank=0)
    with pytest.raises(ValueError, match="rank"):
        DistributedWeightedSampler([1.0], num_samples=1, num_replicas=2, rank=2)


def test_defaults_come_from_the_environment_without_a_process_group(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    sampler = DistributedWeightedSampler([1.0] * 10, num_samples=8)
    assert (sampler.num_replicas, sampler.rank, len(sampler)) == (4, 2, 2)


@pytest.mark.parametrize("shuffle", [False, True])
def test_shard_sampler_without_padding_visits_every_index_once(shuffle):
    shards = [list(DistributedShardSampler(10, num_replicas=3, rank=rank, shuffle=shuffle, even=False))
              for rank in range(3)]
    assert sorted(sum(shards, [])) == list(range(10))
    assert [len(shard) for shard in shards] == [4, 3, 3]


def test_shard_sampler_with_padding_gives_equal_shards_and_reshuffles_per_epoch():
    samplers = [DistributedShardSampler(10, num_replicas=3, rank=rank, shuffle=True, seed=1) for rank in range(3)]
    shards = [list(sampler) for sampler in samplers]
    assert [len(shard) for shard in shards] == [4, 4, 4]
    assert set(sum(shards, [])) == set(range(10))
    samplers[0].set_epoch(5)
    assert list(samplers[0]) != shards[0]


def test_preload_reads_every_byte_and_names_missing_files(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 1000)
    (tmp_path / "b.bin").write_bytes(b"y" * 24)
    assert preload_files([tmp_path / "a.bin", tmp_path / "b.bin"], chunk_bytes=100) == 1024
    with pytest.raises(FileNotFoundError, match="c.bin"):
        preload_files([tmp_path / "c.bin"])
