"""The mel frontend: upstream's spectrogram in eval, augmentation and masking only in training."""
import os

import numpy as np
import pytest
import torch

from models.preprocess import AugmentMelSTFT

GOLDEN = np.load(os.path.join(os.path.dirname(__file__), "data", "upstream_golden.npz"))


def golden_waveform():
    """The 2-second, 2-example waveform the golden spectrogram was computed from."""
    g = torch.Generator().manual_seed(1234)
    t = torch.arange(64000) / 32000.0
    wave = (0.3 * torch.sin(2 * torch.pi * 440 * t) + 0.2 * torch.sin(2 * torch.pi * 3100 * t * (1 + t))
            + 0.05 * torch.randn(64000, generator=g))
    return wave.unsqueeze(0).repeat(2, 1) * torch.tensor([[1.0], [0.5]])


def test_eval_output_equals_upstream_within_1e_4():
    mel = AugmentMelSTFT().eval()
    with torch.no_grad():
        spec = mel(golden_waveform())
    assert spec.shape == GOLDEN["mel"].shape == (2, 128, 200)
    np.testing.assert_allclose(spec.numpy(), GOLDEN["mel"], atol=1e-4)


def test_ten_seconds_give_1000_frames_of_128_bins():
    assert AugmentMelSTFT().eval()(torch.zeros(3, 320000)).shape == (3, 128, 1000)


def test_channel_axis_is_kept():
    mel = AugmentMelSTFT().eval()
    wave = golden_waveform()
    with torch.no_grad():
        torch.testing.assert_close(mel(wave[:, None])[:, 0], mel(wave))


def test_fmax_default_leaves_room_for_its_augmentation():
    assert AugmentMelSTFT(sr=32000, fmax_aug_range=2000).fmax == 15000
    assert AugmentMelSTFT(sr=16000, fmax_aug_range=1000).fmax == 7500
    assert AugmentMelSTFT(fmax=12000).fmax == 12000


def test_training_shifts_the_filter_bank_and_masks():
    torch.manual_seed(0)
    mel = AugmentMelSTFT(freqm=48, timem=50).train()
    wave = golden_waveform()
    first, second = mel(wave), mel(wave)
    assert not torch.equal(first, second)
    masked_value = (0 + 4.5) / 5  # masks zero the log-mel before normalisation
    assert torch.isclose(first, torch.tensor(masked_value)).any()


def test_training_without_masks_still_varies_fmin_fmax_but_masks_nothing():
    torch.manual_seed(0)
    mel = AugmentMelSTFT(freqm=0, timem=0).train()
    eval_spec = AugmentMelSTFT(freqm=0, timem=0).eval()(golden_waveform())
    outputs = [mel(golden_waveform()) for _ in range(3)]
    assert any(not torch.allclose(o, eval_spec) for o in outputs)
    assert all(not torch.isclose(o, torch.tensor(0.9)).all(dim=-1).any() for o in outputs)


def test_eval_is_deterministic():
    mel = AugmentMelSTFT().eval()
    assert torch.equal(mel(golden_waveform()), mel(golden_waveform()))


@pytest.mark.parametrize("bad, error, message", [
    (torch.zeros(320000), ValueError, r"\(batch, samples\)"),
    (torch.zeros(1, 1, 1, 100), ValueError, r"\(batch, samples\)"),
    (torch.zeros(2, 1000, dtype=torch.int16), TypeError, "floating-point"),
    (np.zeros((2, 1000), dtype=np.float32), TypeError, "floating-point"),
])
def test_wrong_input_is_a_clear_error(bad, error, message):
    with pytest.raises(error, match=message):
        AugmentMelSTFT()(bad)


def test_impossible_settings_are_rejected():
    with pytest.raises(ValueError, match="fmin < fmax"):
        AugmentMelSTFT(fmin=16000, fmax=15000)
    with pytest.raises(ValueError, match="fmin_aug_range"):
        AugmentMelSTFT(fmin_aug_range=0)
