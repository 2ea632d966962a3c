"""Augmentations change what they should and keep shapes; randomness is seeded."""

import numpy as np
import pytest
from torch.utils.data import Dataset

from helpers.data import (RollDataset, WaveformAugment, WaveformMixupDataset, ItemRandom, build_training_pipeline,
                          convolve_keep_length, encode_audio, random_gain)
from tests.helpers.data.clips import SR, tone


class FixedItems(Dataset):
    """Known (waveform, name, target) items; None where an item "failed"."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def test_random_gain_stays_within_the_range_and_uses_integer_decibels():
    x = np.ones(10, dtype=np.float32)
    rng = np.random.default_rng(0)
    gains_db = {round(20 * np.log10(random_gain(x, rng, 3)[0]), 6) for _ in range(200)}
    assert gains_db == {-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0}


def test_convolution_with_a_delayed_impulse_shifts_and_keeps_length():
    x = tone(300.0, 0.1)
    impulse = np.zeros(50, dtype=np.float32)
    impulse[10] = 0.5
    y = convolve_keep_length(x, impulse)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y[10:], 0.5 * x[:-10], atol=1e-5)
    np.testing.assert_allclose(y[:10], 0, atol=1e-6)


def test_impulse_response_augmentation_convolves_with_a_wav_from_the_folder(tmp_path):
    impulse = np.zeros(800, dtype=np.float32)
    impulse[[0, 400]] = [0.5, 0.25]
    (tmp_path / "irs").mkdir()
    (tmp_path / "irs" / "room.wav").write_bytes(encode_audio(impulse, SR, "wav"))
    augment = WaveformAugment(gain_augment=0, ir_augment=1.0, ir_path=str(tmp_path / "irs"))
    x = tone(250.0, 0.2)
    y = augment(x, np.random.default_rng(0))
    assert y.shape == x.shape
    np.testing.assert_allclose(y[400:], 0.5 * x[400:] + 0.25 * x[:-400], atol=2e-4)


def test_impulse_response_folder_must_exist_and_hold_wavs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_irs"):
        WaveformAugment(ir_augment=0.5, ir_path=str(tmp_path / "no_irs"))
    with pytest.raises(FileNotFoundError, match="no .wav"):
        WaveformAugment(ir_augment=0.5, ir_path=str(tmp_path))


def test_roll_with_fixed_shift_is_np_roll_and_random_shift_stays_in_range():
    waveform = np.arange(20, dtype=np.float32).reshape(1, -1)
    target = np.ones(3, dtype=np.float32)
    base = FixedItems([(waveform, "a", target), None])
    rolled, name, same_target = RollDataset(base, axis=1, shift=3)[0]
    np.testing.assert_array_equal(rolled, np.roll(waveform, 3, axis=1))
    assert name == "a" and same_target is target
    assert RollDataset(base, shift=3)[1] is None
    random_roll = RollDataset(base, axis=1, shift=None, shift_range=4, seed=0)
    shifts = set()
    for epoch in range(100):
        random_roll.set_epoch(epoch)
        shifts.add(int(np.flatnonzero(random_roll[0][0][0] == 0)[0]))
    assert shifts == {0, 1, 2, 3, 4, 16, 17, 18, 19}  # position of sample 0 after rolling by -4..4


def test_mixup_mixes_mean_removed_waveforms_and_targets_with_one_weight():
    x1, x2 = np.full((1, 8), 2.0, np.float32), np.zeros((1, 8), np.float32)
    x1[0, 0], x2[0, 1] = 10.0, 4.0
    y1, y2 = np.array([1, 0], np.float32), np.array([0, 1], np.float32)
    mixup = WaveformMixupDataset(FixedItems([(x1, "a", y1), (x2, "b", y2)]), beta=2.0, rate=1.0, seed=3)
    seen_second = False
    for epoch in range(20):
        mixup.set_epoch(epoch)
        mixed, name, target = mixup[0]
        assert mixed.shape == (1, 8) and name == "a"
        weight = target[0]
        if weight == 1.0:
            continue  # the second draw was clip 0 itself
        seen_second = True
        assert 0.5 <= weight < 1.0 and target[1] == pytest.approx(1.0 - weight)
        expected = weight * (x1 - x1.mean()) + (1 - weight) * (x2 - x2.mean())
        np.testing.assert_allclose(mixed, expected - expected.mean(), atol=1e-5)
        assert abs(mixed.mean()) < 1e-5
    assert seen_second


def test_mixup_with_rate_zero_returns_items_unchanged():
    item = (np.ones((1, 4), np.float32), "a", np.ones(2, np.float32))
    assert WaveformMixupDataset(FixedItems([item]), rate=0.0)[0] is item


def test_pipeline_wraps_roll_then_mixup_with_options():
    base = FixedItems([(np.zeros((1, 4), np.float32), "a", np.zeros(2, np.float32))])
    pipeline = build_training_pipeline(base, roll=True, roll_conf={"axis": 1, "shift_range": 7},
                                       wavmix={"beta": 1.0, "rate": 0.25})
    assert isinstance(pipeline, WaveformMixupDataset) and pipeline.rate == 0.25 and pipeline.beta == 1.0
    assert isinstance(pipeline.dataset, RollDataset) and pipeline.dataset.shift_range == 7
    assert build_training_pipeline(base) is base


def test_item_random_depends_on_seed_epoch_and_index_only():
    def draw(seed, epoch, index, history=0):
        random = ItemRandom(seed)
        random.set_epoch(epoch)
        for earlier in range(history):  # earlier draws change nothing
            random(earlier).integers(10)
        return random(index).integers(1 << 30, size=4).tolist()

    assert draw(5, 0, 3) == draw(5, 0, 3, history=7)
    assert len({str(draw(5, 0, 3)), str(draw(6, 0, 3)), str(draw(5, 1, 3)), str(draw(5, 0, 4))}) == 4
