"""The waveform wrapper: modes and shapes, lengths it takes, windowing of long audio, replacing the net."""
import warnings

import pytest
import torch

from models.passt import get_model
from passt_hear.wrapper import PasstWrapper, centred_starts

SR = 32000


def noise(batch, seconds, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, int(seconds * SR), generator=generator) * 2 - 1


class TestModes:
    @pytest.mark.parametrize("mode, width", [("logits", 527), ("embed_only", 96), ("all", 527 + 96)])
    def test_output_width_follows_the_mode(self, tiny_model, mode, width):
        tiny_model.mode = mode
        with torch.no_grad():
            out = tiny_model(noise(3, 2.0))
        assert out.shape == (3, width) == (3, tiny_model.scene_embedding_size)

    def test_all_is_logits_then_embedding(self, tiny_model):
        audio = noise(2, 1.5)
        with torch.no_grad():
            both = tiny_model(audio)
            logits, features = tiny_model.net(tiny_model.mel(audio).unsqueeze(1))
        torch.testing.assert_close(both, torch.cat((logits, features), dim=1))

    def test_unknown_mode_is_rejected(self, tiny_model):
        with pytest.raises(ValueError, match="mode='probabilities' is not one of logits, embed_only, all"):
            PasstWrapper(tiny_model.mel, tiny_model.net, mode="probabilities")

    def test_bad_input_shape_names_the_expected_layout(self, tiny_model):
        with pytest.raises(ValueError, match=r"shape \(batch, samples\) at 32000 Hz"):
            tiny_model(torch.zeros(2, 1, SR))


class TestLengths:
    def test_limits_follow_the_time_embedding(self, tiny_model):
        # 99 time positions at stride 10 with 16-frame patches: up to 1005 mel frames of hop 320
        assert tiny_model.max_window_samples == 1005 * 320
        assert tiny_model.frames_for(tiny_model.max_window_samples) == 1005
        assert tiny_model.min_window_samples == 15 * 320 + 1
        assert tiny_model.frames_for(tiny_model.min_window_samples) == 16

    def test_the_longest_window_fits_and_one_hop_more_would_be_cut(self, tiny_model):
        net, mel = tiny_model.net, tiny_model.mel
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("error")
            net(mel(torch.zeros(1, tiny_model.max_window_samples)).unsqueeze(1))
            with pytest.raises(UserWarning, match="more than the model's time embedding"):
                net(mel(torch.zeros(1, tiny_model.max_window_samples + 320)).unsqueeze(1))

    def test_audio_shorter_than_a_patch_is_zero_padded(self, tiny_model):
        short = noise(2, 0.05)
        padded = torch.nn.functional.pad(short, (0, tiny_model.min_window_samples - short.shape[1]))
        with torch.no_grad():
            torch.testing.assert_close(tiny_model(short), tiny_model(padded))


class TestWindowing:
    def test_centred_starts_put_a_window_on_every_hop_of_the_half_window_padded_audio(self):
        assert centred_starts(100, 40, 25) == [-20, 5, 30, 55, 80]  # centres 0, 25, 50, 75, 100
        assert centred_starts(99, 40, 25) == [-20, 5, 30, 55]
        assert centred_starts(41, 40, 25) == [-20, 5]
        assert centred_starts(40, 40, 25) == [0]

    def test_end_aligned_long_audio_is_the_mean_over_windows_the_last_ending_with_the_audio(self, tiny_model):
        tiny_model.windowing, tiny_model.window_seconds, tiny_model.hop_seconds = "end_aligned", 2.0, 0.7
        audio = noise(2, 5.0)
        window, hop = 2 * SR, int(0.7 * SR)
        starts = [0, hop, 2 * hop, 3 * hop, 4 * hop, 5 * SR - window]
        with torch.no_grad():
            manual = torch.stack([tiny_model.forward_window(audio[:, s:s + window]) for s in starts]).mean(0)
            windowed = tiny_model(audio)
        torch.testing.assert_close(windowed, manual)

    def test_centred_long_audio_is_the_mean_over_windows_centred_on_the_reflected_audio(self, tiny_model):
        tiny_model.windowing, tiny_model.window_seconds, tiny_model.hop_seconds = "centred", 2.0, 0.7
        audio = noise(2, 5.0)
        window, hop = 2 * SR, int(0.7 * SR)
        padded = torch.nn.functional.pad(audio[:, None], (SR, SR), mode="reflect")[:, 0]
        centres = range(0, 5 * SR + 1, hop)  # 0, 0.7, …, 4.9 s
        with torch.no_grad():
            manual = torch.stack([tiny_model.forward_window(padded[:, c:c + window]) for c in centres]).mean(0)
            windowed = tiny_model(audio)
        torch.testing.assert_close(windowed, manual)

    def test_windowing_is_centred_by_default_and_checked(self, tiny_model):
        assert PasstWrapper(tiny_model.mel, tiny_model.net).windowing == "centred"
        with pytest.raises(ValueError, match="windowing='middle' is not one of centred, end_aligned"):
            PasstWrapper(tiny_model.mel, tiny_model.net, windowing="middle")

    def test_default_centred_window_is_the_whole_seconds_the_net_takes_with_quarter_hops(self, tiny_model):
        model = PasstWrapper(tiny_model.mel, tiny_model.net).eval()  # the net takes 10.05 s
        assert model.window_samples == 10 * SR and model.hop_samples == 10 * SR // 4
        audio = noise(1, 14.0)
        with torch.no_grad():
            outputs, starts = model.window_outputs(audio)
        centres = range(0, 13 * SR, 10 * SR // 4)  # 0, 2.5, …, 12.5 s
        assert starts == [centre - 5 * SR for centre in centres]
        assert outputs.shape == (1, 6, 527 + 96)
        with torch.no_grad():
            torch.testing.assert_close(model(audio), outputs.mean(1))

    def test_default_end_aligned_window_is_the_longest_the_net_takes_with_quarter_hops(self, tiny_model):
        model = PasstWrapper(tiny_model.mel, tiny_model.net, windowing="end_aligned").eval()
        window = model.max_window_samples
        assert model.window_samples == window
        with torch.no_grad():
            _, starts = model.window_outputs(noise(1, 14.0))
        assert starts == [0, window // 4, 14 * SR - window]

    def test_long_audio_is_cut_into_small_batches_of_windows(self, tiny_model):
        tiny_model.window_seconds, tiny_model.hop_seconds = 1.0, 0.25
        audio = noise(2, 4.0)
        with torch.no_grad():
            expected = tiny_model(audio)
            tiny_model.window_batch_size = 3  # one window of both sounds at a time
            torch.testing.assert_close(tiny_model(audio), expected)

    def test_audio_that_fits_runs_in_one_pass(self, tiny_model):
        audio = noise(1, 10.0)
        with torch.no_grad():
            torch.testing.assert_close(tiny_model(audio), tiny_model.forward_window(audio))

    def test_window_longer_than_the_net_takes_is_an_error(self, tiny_model):
        tiny_model.window_seconds = 11.0
        with pytest.raises(ValueError, match="window_seconds=11.0 is longer than the network takes"):
            tiny_model(noise(1, 12.0))

    def test_hop_longer_than_the_window_is_an_error(self, tiny_model):
        tiny_model.window_seconds, tiny_model.hop_seconds = 2.0, 3.0
        with pytest.raises(ValueError, match="hop_seconds=3.0 must be positive and at most the window"):
            tiny_model(noise(1, 5.0))


class TestReplacingTheNet:
    def test_another_net_changes_classes_and_window(self, tiny_model):
        tiny_model.net = get_model("passt_tiny", pretrained=False, n_classes=50, input_tdim=498).eval()
        tiny_model.mode = "logits"
        assert tiny_model.max_window_samples == ((49 - 1) * 10 + 16 + 9) * 320
        with torch.no_grad():
            assert tiny_model(noise(2, 7.0)).shape == (2, 50)
        assert tiny_model.scene_embedding_size == 50
