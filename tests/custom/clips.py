"""Generated audio folders for the custom/ and ex_custom tests: each class has its own sound in its own band
(the demo dataset's synthesis), clips of varied length, rate and channel count, written with the project's
encoder."""

from __future__ import annotations

import pathlib

import numpy as np

from audioset.prepare_scripts.make_demo_dataset import synthesize_event
from helpers.data import encode_audio

CLASSES = ("birdsong", "engine", "knocking")
N_BANDS = 6  # the demo's bands; class i uses band 2 * i, so neighbours are far apart
FORMATS = (("wav", 16000), ("flac", 44100), ("mp3", 32000), ("ogg", 48000))


def clip(labels: list[int], seconds: float, rate: int, rng: np.random.Generator, channels: int = 1) -> np.ndarray:
    """`seconds` of faint noise with one event per label (each 80-100% of the clip), peak <= 0.9."""
    n = int(seconds * rate)
    waveform = 0.003 * rng.standard_normal(n)
    for label in labels:
        length = int(n * rng.uniform(0.8, 1.0))
        onset = int(rng.integers(0, n - length + 1))
        waveform[onset:onset + length] += 0.3 * synthesize_event(2 * label, N_BANDS, length, rate, rng)
    waveform *= 0.9 / max(0.9, np.abs(waveform).max())
    return waveform if channels == 1 else np.stack((waveform, 0.5 * waveform))


def write(path: pathlib.Path, labels: list[int], seconds: float, fmt: int, rng, channels: int = 1) -> None:
    container, rate = FORMATS[fmt % len(FORMATS)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_audio(clip(labels, seconds, rate, rng, channels), rate, container))


def class_folders(root: pathlib.Path, per_class: int, seed: int = 0, seconds=(1.5, 3.0)) -> dict[str, list[str]]:
    """`root/<class>/[nested/]<odd name>.<ext>` files, every fourth stereo; returns the names per class."""
    rng = np.random.default_rng(seed)
    names = {}
    for label, name in enumerate(CLASSES):
        names[name] = []
        for index in range(per_class):
            container, _ = FORMATS[index % len(FORMATS)]
            relative = f"{name}/{'take two/' if index % 3 == 0 else ''}clip {index:02d} é.{container}"
            write(root / relative, [label], rng.uniform(*seconds), index, rng, 2 if index % 4 == 1 else 1)
            names[name].append(relative)
    return names


def multi_label_csv(root: pathlib.Path, n_clips: int, seed: int = 0, splits=None, seconds=(1.5, 3.0)) -> pathlib.Path:
    """Flat `root/audio/` files and `root/labels.csv` (filename,labels[,split]); clip i has class i % 3 and
    every second clip one more class. `splits(i)` gives clip i's split (None: no split column)."""
    rng = np.random.default_rng(seed)
    lines = ["filename,labels" + (",split" if splits else "")]
    for index in range(n_clips):
        labels = [index % 3] + ([(index + 1 + index // 6 % 2) % 3] if index % 2 else [])
        container, _ = FORMATS[index % len(FORMATS)]
        name = f"rec_{index:03d}.{container}"
        write(root / "audio" / name, labels, rng.uniform(*seconds), index, rng)
        row = f"{name},{';'.join(CLASSES[label] for label in labels)}"
        lines.append(row + (f",{splits(index)}" if splits else ""))
    csv_path = root / "labels.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path
