"""Write a small synthetic multi-label dataset in the AudioSet HDF5-mp3 layout, so that everything runs
without AudioSet.

Each class owns its own band on the mel scale (about 200 Hz - 10 kHz, bands do not overlap) and one of
five sound types inside that band: a tone with vibrato, band-limited noise, repeated chirps, a click
train of short tone bursts, or an amplitude-modulated tone. A clip holds 1-3 events of distinct
classes (1-2.5 s each, random onsets) over faint background noise, encoded as real mp3 bytes.

    python -m audioset.prepare_scripts.make_demo_dataset --out demo_data
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np

from helpers.data import PackedBitsTargets, encode_mp3, write_label_file
from helpers.data.hdf5 import HDF5DatasetWriter
from helpers.data.synthetic import EVENT_SECONDS, class_bands, class_names, synthesize_event  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)

MP3_COMPRESSION_LEVEL = 7  # LAME quality: about twice as fast as the default, plenty for synthetic sounds


def synthesize_clip(labels: list[int], n_classes: int, clip_samples: int, sample_rate: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Events of the given classes at random onsets over faint background noise; peak <= 0.9."""
    clip = 0.004 * rng.standard_normal(clip_samples)
    for label in labels:
        n = min(clip_samples, int(rng.uniform(*EVENT_SECONDS) * sample_rate))
        onset = int(rng.integers(0, clip_samples - n + 1))
        clip[onset:onset + n] += rng.uniform(0.15, 0.35) * synthesize_event(label, n_classes, n, sample_rate, rng)
    peak = np.abs(clip).max()
    if peak > 0.9:
        clip *= 0.9 / peak
    return clip.astype(np.float32)


def _write_split(path: str, split_seed: int, n_clips: int, n_classes: int, clip_samples: int, sample_rate: int,
                 seed: int, prefix: str, max_events: int = 3) -> None:
    codec = PackedBitsTargets(n_classes)
    with HDF5DatasetWriter(path, codec) as writer:
        for clip_number in range(n_clips):
            rng = np.random.default_rng([seed, split_seed, clip_number])
            first = clip_number % n_classes  # every class occurs once n_clips >= n_classes
            others = rng.permutation([c for c in range(n_classes) if c != first])
            extra = int(rng.integers(0, min(max_events - 1, n_classes - 1), endpoint=True))
            labels = [first, *others[:extra].tolist()]
            waveform = synthesize_clip(labels, n_classes, clip_samples, sample_rate, rng)
            target = np.zeros(n_classes, dtype=np.float32)
            target[labels] = 1
            writer.append(f"Y{prefix}{clip_number:05d}.mp3", encode_mp3(waveform, sample_rate, MP3_COMPRESSION_LEVEL), target)


def make_demo_dataset(out_dir: str | os.PathLike, n_train: int = 200, n_eval: int = 60, n_unbalanced: int = 40,
                      n_classes: int = 10, sample_rate: int = 32000, clip_length: float = 5.0,
                      seed: int = 0, max_events: int = 3) -> dict[str, str]:
    """Write the demo dataset under `out_dir` and return its paths:
    `balanced_train_hdf5`, `unbalanced_train_hdf5` (skipped when n_unbalanced=0), `eval_hdf5` (all
    in `out_dir/mp3/`), and `label_file` (`out_dir/class_labels_indices.csv`, n_classes rows). Each clip
    holds 1 to `max_events` events of distinct classes."""
    if n_classes < 2:
        raise ValueError(f"need at least 2 classes, got n_classes={n_classes}")
    if max_events < 1:
        raise ValueError(f"need at least 1 event per clip, got max_events={max_events}")
    if clip_length < EVENT_SECONDS[1]:
        raise ValueError(f"clip_length must be >= {EVENT_SECONDS[1]} s to hold an event, got {clip_length}")
    out_dir = os.fspath(out_dir)
    os.makedirs(os.path.join(out_dir, "mp3"), exist_ok=True)
    clip_samples = int(round(clip_length * sample_rate))
    paths = {"label_file": os.path.join(out_dir, "class_labels_indices.csv")}
    write_label_file(paths["label_file"], class_names(n_classes))
    splits = [("balanced_train_hdf5", "balanced_train_segments_mp3.hdf", 0, n_train, "demo-bal-"),
              ("unbalanced_train_hdf5", "unbalanced_train_segments_mp3.hdf", 1, n_unbalanced, "demo-unbal-"),
              ("eval_hdf5", "eval_segments_mp3.hdf", 2, n_eval, "demo-eval-")]
    for key, file_name, split_seed, n_clips, prefix in splits:
        if n_clips == 0 and key == "unbalanced_train_hdf5":
            continue
        if n_clips <= 0:
            raise ValueError(f"{key}: need at least one clip, got {n_clips}")
        paths[key] = os.path.join(out_dir, "mp3", file_name)
        started = time.perf_counter()
        _write_split(paths[key], split_seed, n_clips, n_classes, clip_samples, sample_rate, seed, prefix, max_events)
        logger.info("wrote %d clips to %s in %.1f s", n_clips, paths[key], time.perf_counter() - started)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_data", help="output folder (default: demo_data)")
    parser.add_argument("--n-train", type=int, default=200, help="clips in the balanced training file")
    parser.add_argument("--n-unbalanced", type=int, default=40, help="clips in the unbalanced training file (0: none)")
    parser.add_argument("--n-eval", type=int, default=60, help="clips in the evaluation file")
    parser.add_argument("--n-classes", type=int, default=10)
    parser.add_argument("--sample-rate", type=int, default=32000)
    parser.add_argument("--clip-length", type=float, default=5.0, help="seconds per clip")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    paths = make_demo_dataset(args.out, n_train=args.n_train, n_eval=args.n_eval, n_unbalanced=args.n_unbalanced,
                              n_classes=args.n_classes, sample_rate=args.sample_rate, clip_length=args.clip_length,
                              seed=args.seed)
    for key, path in paths.items():
        print(f"{key}: {path}")


if __name__ == "__main__":
    main()
