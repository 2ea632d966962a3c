"""Builders for small generated audio and HDF5-mp3 files used across the data tests."""

from __future__ import annotations

import numpy as np

from helpers.data import PackedBitsTargets, encode_mp3, write_hdf5_dataset

SR = 32000


def tone(frequency: float, seconds: float = 1.0, sample_rate: int = SR, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def dominant_frequency(waveform: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(waveform))
    return float(np.fft.rfftfreq(len(waveform), 1.0 / sample_rate)[spectrum.argmax()])


def make_targets(n_clips: int, classes_num: int, seed: int = 0) -> np.ndarray:
    """Multi-hot targets: clip i has class i % classes_num plus sometimes one more."""
    rng = np.random.default_rng(seed)
    targets = np.zeros((n_clips, classes_num), dtype=np.float32)
    for clip in range(n_clips):
        targets[clip, clip % classes_num] = 1
        if rng.random() < 0.5:
            targets[clip, rng.integers(classes_num)] = 1
    return targets


def write_tone_hdf5(path, n_clips: int = 4, classes_num: int = 12, seconds: float = 1.0,
                    corrupt: dict[int, bytes] | None = None) -> tuple[list[str], np.ndarray, list[float]]:
    """Clip i is a tone at 200 * (i + 1) Hz; `corrupt` replaces some clips' bytes. Returns names,
    targets and frequencies."""
    names = [f"clip{i}.mp3" for i in range(n_clips)]
    frequencies = [200.0 * (i + 1) for i in range(n_clips)]
    audio = [encode_mp3(tone(f, seconds), SR) for f in frequencies]
    for index, data in (corrupt or {}).items():
        audio[index] = data
    targets = make_targets(n_clips, classes_num)
    write_hdf5_dataset(path, names, audio, targets, PackedBitsTargets(classes_num))
    return names, targets, frequencies
