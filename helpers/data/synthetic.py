"""Synthetic sounds for demos, tests and benchmarks: each class owns its own band on the mel scale (about
200 Hz - 10 kHz, bands do not overlap) and one of five sound types inside that band: a tone with vibrato,
band-limited noise, repeated chirps, a click train of short tone bursts, or an amplitude-modulated tone."""

from __future__ import annotations

import numpy as np

SOUND_TYPES = ("tone", "noise band", "chirps", "clicks", "AM tone")
LOWEST_HZ, HIGHEST_HZ = 200.0, 10000.0
EVENT_SECONDS = (1.0, 2.5)
FADE_SECONDS = 0.02


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


def class_bands(n_classes: int) -> list[tuple[float, float, float]]:
    """(low, center, high) Hz per class: equal, non-touching slices of the mel range."""
    edges = np.linspace(hz_to_mel(LOWEST_HZ), hz_to_mel(HIGHEST_HZ), n_classes + 1)
    bands = []
    for low, high in zip(edges[:-1], edges[1:]):
        margin = (high - low) * 0.25  # keep a gap between neighbouring classes
        bands.append((float(mel_to_hz(low + margin)), float(mel_to_hz((low + high) / 2)),
                      float(mel_to_hz(high - margin))))
    return bands


def class_names(n_classes: int) -> list[tuple[str, str]]:
    """(mid, display_name) per class, e.g. ("/demo/03", "clicks 1150 Hz")."""
    return [(f"/demo/{index:02d}", f"{SOUND_TYPES[index % len(SOUND_TYPES)]} {center:.0f} Hz")
            for index, (_, center, _) in enumerate(class_bands(n_classes))]


def _band_noise(n: int, low: float, high: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequencies = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spectrum[(frequencies < low) | (frequencies > high)] = 0
    noise = np.fft.irfft(spectrum, n)
    return noise / (np.abs(noise).max() + 1e-9)


def synthesize_event(class_index: int, n_classes: int, n: int, sample_rate: int,
                     rng: np.random.Generator) -> np.ndarray:
    """`n` samples of class `class_index`'s sound, peak 1, with short fades."""
    low, center, high = class_bands(n_classes)[class_index]
    t = np.arange(n) / sample_rate
    kind = SOUND_TYPES[class_index % len(SOUND_TYPES)]
    if kind == "tone":
        depth = 0.3 * (high - center)
        phase = 2 * np.pi * np.cumsum(center + depth * np.sin(2 * np.pi * 5.0 * t)) / sample_rate
        event = np.sin(phase)
    elif kind == "noise band":
        event = _band_noise(n, low, high, sample_rate, rng)
    elif kind == "chirps":
        period = 0.25
        position = (t % period) / period
        frequency = low + (high - low) * position
        event = np.sin(2 * np.pi * np.cumsum(frequency) / sample_rate)
    elif kind == "clicks":
        event = np.zeros(n)
        burst_n = int(0.012 * sample_rate)
        burst = np.sin(2 * np.pi * center * np.arange(burst_n) / sample_rate) * np.hanning(burst_n)
        for start in range(0, n - burst_n, int(sample_rate / 10.0)):
            event[start:start + burst_n] += burst
    else:  # AM tone
        event = np.sin(2 * np.pi * center * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 7.0 * t))
    fade = min(int(FADE_SECONDS * sample_rate), n // 2)
    envelope = np.ones(n)
    envelope[:fade] = np.linspace(0, 1, fade)
    envelope[n - fade:] = np.linspace(1, 0, fade)
    return event * envelope
