"""decode_audio / encode_audio / pad_or_truncate."""

import pickle

import numpy as np
import pytest

from helpers.data import AudioDecodeError, decode_audio, encode_audio, encode_mp3, pad_or_truncate
from tests.helpers.data.clips import SR, dominant_frequency, tone


@pytest.fixture(scope="module")
def mp3_bytes():
    return encode_mp3(tone(440.0, 1.0), SR)


@pytest.mark.parametrize("sample_rate", [32000, 16000, 8000])
def test_mp3_round_trip_keeps_length_and_pitch_at_each_rate(mp3_bytes, sample_rate):
    waveform = decode_audio(mp3_bytes, sample_rate)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert abs(len(waveform) - sample_rate) <= sample_rate // 100
    assert dominant_frequency(waveform, sample_rate) == pytest.approx(440.0, abs=3)
    assert np.abs(waveform).max() == pytest.approx(0.3, abs=0.05)


def test_uint8_array_input_decodes_like_bytes(mp3_bytes):
    as_array = np.frombuffer(mp3_bytes, dtype=np.uint8)
    np.testing.assert_array_equal(decode_audio(as_array), decode_audio(mp3_bytes))


def test_wav_decodes_to_exact_samples():
    x = tone(300.0, 0.5)
    decoded = decode_audio(encode_audio(x, SR, "wav"))
    np.testing.assert_allclose(decoded, x, atol=1e-4)


def test_stereo_44k_flac_is_averaged_to_mono_and_resampled(tmp_path):
    left = tone(500.0, 1.0, 44100, amplitude=0.4)
    path = tmp_path / "stereo.flac"
    path.write_bytes(encode_audio(np.stack([left, np.zeros_like(left)]), 44100, "flac"))
    decoded = decode_audio(path, SR)
    assert abs(len(decoded) - SR) <= 2
    assert np.abs(decoded[1000:-1000]).max() == pytest.approx(0.2, abs=0.01)  # (L + R) / 2
    assert dominant_frequency(decoded, SR) == pytest.approx(500.0, abs=2)


def test_opus_in_ogg_at_48k_is_resampled():
    decoded = decode_audio(encode_audio(tone(700.0, 1.0, 48000), 48000, "ogg"), SR)
    assert abs(len(decoded) - SR) <= SR // 50
    assert dominant_frequency(decoded, SR) == pytest.approx(700.0, abs=3)


@pytest.mark.parametrize("data, reason", [
    (b"", "empty input"),
    (b"this is not audio at all " * 40, "InvalidData"),
])
def test_unusable_bytes_raise_with_the_clip_name(data, reason):
    with pytest.raises(AudioDecodeError) as error:
        decode_audio(data, name="Yclip.mp3")
    assert error.value.name == "Yclip.mp3" and reason in error.value.reason
    assert "Yclip.mp3" in str(error.value)


def test_mp3_cut_to_its_first_bytes_raises(mp3_bytes):
    with pytest.raises(AudioDecodeError):
        decode_audio(mp3_bytes[:100], name="cut")


def test_mp3_cut_in_the_middle_decodes_the_part_that_is_present(mp3_bytes):
    decoded = decode_audio(mp3_bytes[: len(mp3_bytes) // 2])
    assert 0.3 * SR < len(decoded) < 0.7 * SR


def test_missing_path_raises_naming_it(tmp_path):
    with pytest.raises(AudioDecodeError, match="nothing.wav"):
        decode_audio(tmp_path / "nothing.wav")


def test_decode_error_survives_pickling_for_dataloader_workers():
    error = pickle.loads(pickle.dumps(AudioDecodeError("a.mp3", "broken")))
    assert (error.name, error.reason) == ("a.mp3", "broken")


def test_pad_or_truncate():
    x = np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(pad_or_truncate(x, 3), [0, 1, 2])
    np.testing.assert_array_equal(pad_or_truncate(x, 7), [0, 1, 2, 3, 4, 0, 0])
    np.testing.assert_array_equal(pad_or_truncate(x, 3, offset=2), [2, 3, 4])
    np.testing.assert_array_equal(pad_or_truncate(x, 3, offset=4), [4, 0, 0])
    assert pad_or_truncate(x, 7).dtype == np.float32


def test_encode_rejects_unknown_format_and_bad_shapes():
    with pytest.raises(ValueError, match="aiff"):
        encode_audio(tone(100.0, 0.1), SR, "aiff")
    with pytest.raises(ValueError, match="shape|samples"):
        encode_audio(np.zeros((3, 100), np.float32), SR, "wav")
