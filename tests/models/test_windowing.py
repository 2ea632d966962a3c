"""Whole-clip evaluation windows long audio as inference does: the same windows and the same mean logits as
passt_hear's end-aligned wrapper (what `python -m passt_hear tag` runs)."""
import inspect

import pytest
import torch

from models.passt import get_model
from models.preprocess import AugmentMelSTFT
from models.windowing import end_aligned_starts, longest_input_samples, shortest_input_samples, windowed_logits
from passt_hear.wrapper import PasstWrapper


# the tag command's windowing (the wrapper's only one before it also offered hear21passt's centred windows)
END_ALIGNED = {"windowing": "end_aligned"} if "windowing" in inspect.signature(PasstWrapper).parameters else {}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    net = get_model("passt_tiny", pretrained=False, n_classes=4, fstride=16, tstride=16, input_tdim=198).eval()
    return net, AugmentMelSTFT(freqm=0, timem=0).eval()


def test_windows_start_every_hop_and_the_last_ends_with_the_audio():
    assert end_aligned_starts(100, 40, 10) == [0, 10, 20, 30, 40, 50, 60]
    assert end_aligned_starts(105, 40, 30) == [0, 30, 60, 65]
    assert end_aligned_starts(40, 40, 10) == [0] and end_aligned_starts(5, 40, 10) == [0]
    with pytest.raises(ValueError, match="must be positive"):
        end_aligned_starts(100, 0, 10)


def test_longest_input_is_what_the_time_embedding_takes(tiny):
    net, mel = tiny
    assert longest_input_samples(net, 320) == 207 * 320  # 12 time positions of stride 16, patch 16
    assert shortest_input_samples(net, 320) == 15 * 320 + 1


@pytest.mark.parametrize("seconds", [0.1, 1.5, 5.0, 9.3])
def test_windowed_logits_equal_the_inference_wrappers(tiny, seconds):
    net, mel = tiny
    waveform = 0.1 * torch.randn(1, int(seconds * 32000))
    wrapper = PasstWrapper(mel, net, mode="logits", **END_ALIGNED).eval()
    with torch.no_grad():
        expected = wrapper(waveform)
        logits = windowed_logits(net, mel, waveform[:, None])
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-4)


def test_audio_that_fits_runs_in_one_pass(tiny):
    net, mel = tiny
    waveform = 0.1 * torch.randn(3, 1, 48000)
    with torch.no_grad():
        torch.testing.assert_close(windowed_logits(net, mel, waveform), net(mel(waveform))[0])
    with pytest.raises(ValueError, match=r"\(batch, channels, samples\)"):
        windowed_logits(net, mel, waveform[:, 0])
