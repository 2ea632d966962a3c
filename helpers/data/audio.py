"""Audio decoding and encoding with PyAV: any container/codec FFmpeg reads, to float32 (mono by default)."""

from __future__ import annotations

import io
import os
from typing import Union

import av
import numpy as np

AudioSource = Union[bytes, bytearray, memoryview, np.ndarray, str, os.PathLike]

# container format -> (PyAV codec name, sample format the encoder accepts)
_ENCODERS = {
    "mp3": ("libmp3lame", "fltp"),
    "wav": ("pcm_s16le", "s16"),
    "flac": ("flac", "s16"),
    "ogg": ("libopus", "flt"),
}


class AudioDecodeError(Exception):
    """An audio clip could not be decoded; carries the clip's name and the reason."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"cannot decode audio {name!r}: {reason}")
        self.name = name
        self.reason = reason

    def __reduce__(self):  # keep the two-argument constructor picklable (DataLoader workers)
        return (type(self), (self.name, self.reason))


def _open_container(data: AudioSource, name: str):
    if isinstance(data, (str, os.PathLike)):
        if not os.path.isfile(data):
            raise AudioDecodeError(name, "file does not exist")
        return av.open(os.fspath(data))
    if isinstance(data, np.ndarray):
        data = data.tobytes()
    data = bytes(data)
    if not data:
        raise AudioDecodeError(name, "empty input (0 bytes)")
    return av.open(io.BytesIO(data))


def audio_seconds(data: AudioSource, name: str | None = None) -> float:
    """The duration of an audio file or its bytes, from the container (nothing is decoded)."""
    with _open_container(data, name or "audio") as container:
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration or 0) / av.time_base


def decode_audio(data: AudioSource, sample_rate: int = 32000, name: str | None = None,
                 channels: int | None = 1) -> np.ndarray:
    """Decode bytes (or a uint8 array, or a file path) to a float32 waveform at `sample_rate`.

    `channels=1` (default): mono, channels averaged, shape (samples,). `channels=None`: every channel of
    the file, (file channels, samples). `channels=N` >= 2: (N, samples) from an N-channel file, or a
    mono file repeated N times; other channel counts raise `AudioDecodeError`. Audio at another rate is
    resampled with FFmpeg's resampler. Raises `AudioDecodeError` when the input is empty, unreadable,
    has no audio stream or yields no samples. A stream cut in the middle decodes to the audio that is present.
    """
    if channels is not None and (not isinstance(channels, int) or channels < 1):
        raise ValueError(f"channels must be None or an integer >= 1, got {channels!r}")
    if name is None:
        name = os.fspath(data) if isinstance(data, (str, os.PathLike)) else "<bytes>"
    chunks = []
    try:
        with _open_container(data, name) as container:
            if not container.streams.audio:
                raise AudioDecodeError(name, "no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", layout=None, rate=sample_rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except AudioDecodeError:
        raise
    except (av.FFmpegError, ValueError, StopIteration, EOFError) as error:
        raise AudioDecodeError(name, f"{type(error).__name__}: {error}") from error
    chunks = [c for c in chunks if c.shape[-1]]
    if not chunks:
        raise AudioDecodeError(name, "no audio samples decoded")
    planar = np.concatenate(chunks, axis=-1).astype(np.float32, copy=False)  # (channels, samples)
    if channels == 1:
        return planar.mean(axis=0, dtype=np.float32) if planar.shape[0] > 1 else planar[0]
    if channels is None or planar.shape[0] == channels:
        return planar
    if planar.shape[0] == 1:
        return np.repeat(planar, channels, axis=0)
    raise AudioDecodeError(name, f"has {planar.shape[0]} channels; channels={channels} takes {channels}-channel "
                                 "or mono audio")


def pad_or_truncate(x: np.ndarray, length: int, offset: int = 0) -> np.ndarray:
    """Return `length` samples of `x` (along its last axis) starting at `offset`, zero-padded at the end when
    too short."""
    if length < 0 or offset < 0:
        raise ValueError(f"length and offset must be >= 0, got length={length}, offset={offset}")
    x = x[..., offset:offset + length]
    if x.shape[-1] < length:
        x = np.concatenate((x, np.zeros((*x.shape[:-1], length - x.shape[-1]), dtype=x.dtype)), axis=-1)
    return x


def encode_audio(waveform: np.ndarray, sample_rate: int, container_format: str = "mp3",
                 compression_level: int | None = None) -> bytes:
    """Encode a float waveform, (samples,) mono or (channels, samples) with 1-2 channels, to file bytes.

    `container_format` is one of mp3, wav, flac, ogg (Opus; needs 8/12/16/24/48 kHz).
    `compression_level` is passed to the encoder (for mp3: LAME's quality, 0 best ... 9 fastest).
    """
    if container_format not in _ENCODERS:
        raise ValueError(f"unsupported container format {container_format!r}; choose from {sorted(_ENCODERS)}")
    planar = np.atleast_2d(np.asarray(waveform, dtype=np.float32))
    if planar.ndim != 2 or planar.shape[0] not in (1, 2) or planar.shape[1] == 0:
        raise ValueError(f"waveform must be (samples,) or (1|2, samples) and non-empty, got {planar.shape}")
    codec, _ = _ENCODERS[container_format]
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        options = {} if compression_level is None else {"compression_level": str(int(compression_level))}
        stream = container.add_stream(codec, rate=sample_rate, layout=layout, options=options)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(np.clip(planar, -1.0, 1.0)),
                                           format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def encode_mp3(waveform: np.ndarray, sample_rate: int, compression_level: int | None = None) -> bytes:
    """Encode a float waveform in [-1, 1] to the bytes of an mp3 file (LAME's default quality unless
    `compression_level`, 0 best ... 9 fastest, is given)."""
    return encode_audio(waveform, sample_rate, "mp3", compression_level)
