"""HDF5AudioDataset: decoding, lengths, targets, lazy opening, in-memory mode and failed clips."""

from helpers.data import DataOptions
import logging
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from helpers.data import HDF5AudioDataset, collate_drop_failed, seed_worker
from tests.helpers.data.clips import SR, dominant_frequency, write_tone_hdf5


@pytest.fixture
def tone_file(tmp_path):
    path = tmp_path / "tones.hdf"
    names, targets, frequencies = write_tone_hdf5(path, n_clips=4, classes_num=12, seconds=1.0)
    return path, names, targets, frequencies


@pytest.fixture
def corrupt_file(tmp_path):
    path = tmp_path / "corrupt.hdf"
    write_tone_hdf5(path, n_clips=5, classes_num=12, seconds=0.5,
                    corrupt={1: b"garbage bytes " * 50, 3: b"\xff"})
    return path


@pytest.mark.parametrize("sample_rate", [32000, 16000, 8000])
def test_items_have_fixed_length_and_the_stored_target(tone_file, sample_rate):
    path, names, targets, frequencies = tone_file
    dataset = HDF5AudioDataset(path, 12, DataOptions(sample_rate=sample_rate, clip_length=2))
    assert len(dataset) == 4
    waveform, name, target = dataset[2]
    assert waveform.shape == (1, 2 * sample_rate) and waveform.dtype == np.float32
    assert name == names[2]
    assert target.dtype == np.float32 and target.shape == (12,)
    np.testing.assert_array_equal(target, targets[2])
    assert np.abs(waveform[0, int(1.1 * sample_rate):]).max() == 0  # 1 s of tone, then zero padding
    assert dominant_frequency(waveform[0, :sample_rate], sample_rate) == pytest.approx(frequencies[2], abs=3)


def test_long_clips_are_cut_and_variable_length_keeps_them_whole(tone_file):
    path = tone_file[0]
    assert HDF5AudioDataset(path, 12, DataOptions(clip_length=0.5))[0][0].shape == (1, SR // 2)
    whole = HDF5AudioDataset(path, 12, DataOptions(clip_length=None))[0][0]
    assert abs(whole.shape[1] - SR) <= SR // 100


def test_random_crop_only_in_training(tone_file):
    path = tone_file[0]
    train = HDF5AudioDataset(path, 12, DataOptions(clip_length=0.25, random_crop=True, seed=1))
    crops = set()
    for epoch in range(6):
        train.set_epoch(epoch)
        crops.add(train[0][0].tobytes())
        assert train[0][0].tobytes() in crops  # the same crop again within an epoch
    assert len(crops) > 1
    evaluation = HDF5AudioDataset(path, 12, DataOptions(clip_length=0.25, random_crop=True), training=False)
    assert len({evaluation[0][0].tobytes() for _ in range(3)}) == 1


def test_dataset_holds_no_open_file_until_used_and_pickles_after_use(tone_file):
    dataset = HDF5AudioDataset(tone_file[0], 12, DataOptions(clip_length=1))
    assert dataset._handle is None
    first = dataset[0]
    assert dataset._handle is not None
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy._handle is None
    np.testing.assert_array_equal(copy[0][0], first[0])


def test_in_memory_mode_gives_the_same_items(tone_file):
    path = tone_file[0]
    on_disk = HDF5AudioDataset(path, 12, DataOptions(clip_length=1))
    in_memory = HDF5AudioDataset(path, 12, DataOptions(clip_length=1, in_mem=True))
    for index in range(4):
        np.testing.assert_array_equal(in_memory[index][0], on_disk[index][0])


def test_wrong_class_count_is_caught_at_construction(tone_file):
    with pytest.raises(ValueError, match="width 2"):
        HDF5AudioDataset(tone_file[0], 527)


def test_indices_select_rows(tone_file):
    path, names, targets, _ = tone_file
    dataset = HDF5AudioDataset(path, 12, DataOptions(clip_length=1), indices=[3, 1])
    assert len(dataset) == 2
    assert [dataset[i][1] for i in range(2)] == [names[3], names[1]]
    with pytest.raises(IndexError):
        HDF5AudioDataset(path, 12, indices=[4])


def test_out_of_range_index_raises(tone_file):
    with pytest.raises(IndexError, match="tones.hdf"):
        HDF5AudioDataset(tone_file[0], 12)[4]


def test_training_replaces_failed_clips_and_logs_each_once(corrupt_file, caplog):
    dataset = HDF5AudioDataset(corrupt_file, 12, DataOptions(clip_length=0.5), training=True)
    with caplog.at_level(logging.WARNING, logger="helpers.data.datasets"):
        first = dataset[1]
        second = dataset[1]
    assert first[1] not in ("clip1.mp3", "clip3.mp3")
    assert first[1] == second[1]  # the replacement is deterministic
    assert first[0].shape == (1, SR // 2)
    assert 1 in dataset.failed_clips
    messages = [record.getMessage() for record in caplog.records if "clip1.mp3" in record.getMessage()]
    assert len(messages) == 1 and "index 1" in messages[0]


def test_training_gives_up_when_nothing_decodes(tmp_path):
    path = tmp_path / "broken.hdf"
    write_tone_hdf5(path, n_clips=2, classes_num=4, corrupt={0: b"x" * 10, 1: b"y" * 10})
    dataset = HDF5AudioDataset(path, 4, max_replacement_attempts=3)
    with pytest.raises(RuntimeError, match="broken.hdf"):
        dataset[0]


def test_evaluation_returns_none_for_failed_clips_and_collate_drops_them(corrupt_file):
    dataset = HDF5AudioDataset(corrupt_file, 12, DataOptions(clip_length=0.5), training=False)
    assert dataset[1] is None and dataset[3] is None
    assert dataset[0] is not None
    loader = DataLoader(dataset, batch_size=2, collate_fn=collate_drop_failed)
    evaluated = sum(len(batch[1]) for batch in loader if batch is not None)
    assert len(dataset) - evaluated == 2
    waveforms, names, targets = collate_drop_failed([dataset[0], None, dataset[2]])
    assert waveforms.shape == (2, 1, SR // 2) and list(names) == ["clip0.mp3", "clip2.mp3"] and targets.shape == (2, 12)
    assert collate_drop_failed([None, None]) is None


def test_augmented_loading_is_reproducible_with_workers(tone_file):
    dataset = HDF5AudioDataset(tone_file[0], 12, DataOptions(clip_length=1, gain_augment=10), augment=True)

    def run():
        torch.manual_seed(7)
        loader = DataLoader(dataset, batch_size=2, num_workers=2, worker_init_fn=seed_worker)
        return torch.cat([batch[0] for batch in loader])

    first, second = run(), run()
    torch.testing.assert_close(first, second)
    plain = HDF5AudioDataset(tone_file[0], 12, DataOptions(clip_length=1))
    gains = [float(np.abs(first[i].numpy()).max() / np.abs(plain[i][0]).max()) for i in range(4)]
    assert not np.allclose(gains, 1.0)
