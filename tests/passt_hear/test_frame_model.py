"""A frame model in the waveform wrapper: clip outputs from its class-token head, and its own frames stitched over
audio of any length."""
import torch

from models.passt import get_model
from models.preprocess import AugmentMelSTFT
from passt_hear.wrapper import PasstWrapper


def frame_wrapper():
    torch.manual_seed(0)
    net = get_model("fpasst_tiny", pretrained=False, n_classes=3, fstride=16, tstride=16, input_tdim=198,
                    frames=50).eval()
    return PasstWrapper(AugmentMelSTFT().eval(), net, mode="logits", windowing="end_aligned").eval()


def test_clip_logits_come_from_the_class_token_head():
    model = frame_wrapper()
    audio = torch.randn(1, model.max_window_samples) * 0.1
    with torch.no_grad():
        expected = model.net(model.mel(audio).unsqueeze(1))[1]
        torch.testing.assert_close(model(audio), expected)


def test_frames_of_long_audio_are_the_windows_frames_in_place():
    model = frame_wrapper()
    window = model.max_window_samples
    audio = torch.randn(1, int(2.5 * window)) * 0.1
    with torch.no_grad():
        frames, hop = model.frame_logits(audio)
        first = model.net(model.mel(audio[:, :window]).unsqueeze(1))[0]
        last = model.net(model.mel(audio[:, -window:]).unsqueeze(1))[0]
    assert abs(hop - window / 50 / model.sample_rate) < 1e-9
    assert frames.shape == (1, 125, 3)  # 2.5 windows of 50 frames
    torch.testing.assert_close(frames[:, :50], first)
    torch.testing.assert_close(frames[:, -25:], last[:, -25:])  # the end-aligned window alone covers the end


def test_short_audio_is_padded_to_one_window_and_cut_back():
    model = frame_wrapper()
    with torch.no_grad():
        frames, _ = model.frame_logits(torch.randn(2, model.max_window_samples // 2) * 0.1)
    assert frames.shape == (2, 25, 3)
