"""Channels and sample rates in the data core: decode keeps channels on request, resamples any rate to the
one asked for, and the dataset, padding, augmentation and mp3 conversion carry (channels, samples) through."""

from helpers.data import DataOptions
import numpy as np
import pytest

from helpers.data import (AudioDecodeError, HDF5AudioDataset, PackedBitsTargets, convolve_keep_length, decode_audio,
                          encode_audio, encode_mp3, pad_or_truncate, write_hdf5_dataset)
from helpers.data.prepare import convert_file_to_mp3
from tests.helpers.data.clips import dominant_frequency, tone


def stereo(seconds=1.0, rate=32000, left=440.0, right=1320.0):
    return np.stack((tone(left, seconds, rate), tone(right, seconds, rate)))


@pytest.fixture(scope="module")
def stereo_wav():
    return encode_audio(stereo(), 32000, "wav")


class TestDecodeChannels:
    def test_default_mixes_to_mono(self, stereo_wav):
        mono = decode_audio(stereo_wav)
        assert mono.shape == (32000,) and mono.dtype == np.float32
        np.testing.assert_allclose(mono, stereo().mean(axis=0), atol=1e-4)

    def test_channels_2_keeps_left_and_right(self, stereo_wav):
        both = decode_audio(stereo_wav, channels=2)
        assert both.shape == (2, 32000) and both.dtype == np.float32
        assert dominant_frequency(both[0], 32000) == pytest.approx(440, abs=2)
        assert dominant_frequency(both[1], 32000) == pytest.approx(1320, abs=2)

    def test_channels_none_gives_the_files_own_count(self, stereo_wav):
        assert decode_audio(stereo_wav, channels=None).shape == (2, 32000)
        assert decode_audio(encode_audio(tone(440), 32000, "wav"), channels=None).shape == (1, 32000)

    def test_a_mono_file_is_repeated_into_each_channel(self):
        both = decode_audio(encode_audio(tone(440), 32000, "wav"), channels=2)
        assert both.shape == (2, 32000)
        np.testing.assert_array_equal(both[0], both[1])

    def test_other_channel_counts_are_a_decode_error_naming_the_clip(self, stereo_wav):
        with pytest.raises(AudioDecodeError, match=r"'clip\.wav'.*has 2 channels; channels=3"):
            decode_audio(stereo_wav, name="clip.wav", channels=3)
        with pytest.raises(ValueError, match="channels must be None or an integer >= 1"):
            decode_audio(stereo_wav, channels=0)

    @pytest.mark.parametrize("rate", [16000, 44100, 48000])
    def test_any_rate_is_resampled_to_the_rate_asked_for(self, rate):
        decoded = decode_audio(encode_audio(stereo(2.0, rate), rate, "flac"), 32000, channels=2)
        assert decoded.shape[0] == 2 and abs(decoded.shape[1] - 64000) <= 32
        assert dominant_frequency(decoded[1], 32000) == pytest.approx(1320, abs=2)


def test_pad_or_truncate_works_on_the_last_axis():
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    np.testing.assert_array_equal(pad_or_truncate(x, 3, offset=1), [[1, 2, 3], [6, 7, 8]])
    np.testing.assert_array_equal(pad_or_truncate(x, 7), [[0, 1, 2, 3, 4, 0, 0], [5, 6, 7, 8, 9, 0, 0]])
    assert pad_or_truncate(np.ones(4, np.float32), 6).shape == (6,)


def test_impulse_response_convolves_every_channel_alike():
    rng = np.random.default_rng(0)
    x, ir = rng.standard_normal((2, 300)), rng.standard_normal(40)
    both = convolve_keep_length(x, ir)
    assert both.shape == (2, 300)
    np.testing.assert_allclose(both[1], convolve_keep_length(x[1], ir), atol=1e-5)
    np.testing.assert_allclose(both[0], np.convolve(x[0], ir)[:300], atol=1e-4)


def test_dataset_returns_channels_by_samples_cropped_and_augmented(tmp_path):
    path = tmp_path / "stereo.hdf"
    audio = [encode_mp3(stereo(1.5), 32000), encode_mp3(tone(440, 0.5), 32000)]  # stereo, and mono
    write_hdf5_dataset(path, ["stereo.mp3", "mono.mp3"], audio, np.eye(2, dtype=np.float32), PackedBitsTargets(2))
    dataset = HDF5AudioDataset(path, 2, DataOptions(clip_length=1.0, channels=2, gain_augment=3, random_crop=True), augment=True)
    waveform, name, target = dataset[0]
    assert waveform.shape == (2, 32000) and name == "stereo.mp3" and target.tolist() == [1, 0]
    assert dominant_frequency(waveform[0], 32000) == pytest.approx(440, abs=2)
    assert dominant_frequency(waveform[1], 32000) == pytest.approx(1320, abs=2)
    padded, _, _ = dataset[1]
    assert padded.shape == (2, 32000) and np.abs(padded[:, 20000:]).max() == 0  # 0.5 s + zero padding
    np.testing.assert_array_equal(padded[0], padded[1])
    whole = HDF5AudioDataset(path, 2, DataOptions(clip_length=None, channels=2), training=False)
    assert whole[0][0].shape[0] == 2 and whole[0][0].shape[1] >= 48000
    assert HDF5AudioDataset(path, 2, DataOptions(clip_length=None))[0][0].shape[0] == 1  # mono by default


def test_mp3_conversion_keeps_stereo_only_when_asked(tmp_path, stereo_wav):
    source = tmp_path / "in.wav"
    source.write_bytes(encode_audio(stereo(1.0, 44100), 44100, "wav"))
    convert_file_to_mp3(source, tmp_path / "mono.mp3")
    convert_file_to_mp3(source, tmp_path / "stereo.mp3", channels=2)
    assert decode_audio(tmp_path / "mono.mp3", channels=None).shape[0] == 1
    kept = decode_audio(tmp_path / "stereo.mp3", channels=None)
    assert kept.shape[0] == 2 and dominant_frequency(kept[1], 32000) == pytest.approx(1320, abs=3)
    with pytest.raises(ValueError, match="mp3 holds 1 or 2 channels"):
        convert_file_to_mp3(source, tmp_path / "x.mp3", channels=3)
