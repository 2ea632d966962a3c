"""Write a folder of generated clips with strong labels, the input `python -m custom prepare --events` takes:
`OUT/audio/clip_NNNN.wav` and `OUT/events.tsv` (DCASE columns: filename, onset, offset, event_label).

Each clip holds 0-4 events of the synthetic classes (helpers.data.synthetic: one mel band and sound type per
class) at known onsets over faint noise; events of one class never overlap, so every onset and offset in the
TSV is exactly where its sound starts and ends. Clips without events are listed with an empty label.

    python -m custom.event_demo --out sed_demo [--clips 240] [--classes 6] [--clip-length 5]
"""

from __future__ import annotations

import argparse
import logging
import os

import numpy as np

from helpers.data.audio import encode_audio
from helpers.data.atomic import write_text
from helpers.data.synthetic import class_names, synthesize_event

logger = logging.getLogger(__name__)

EVENT_SECONDS = (0.3, 1.6)
NOISE_LEVEL = 0.004
EVENTS_FILE = "events.tsv"


def clip_events(rng: np.random.Generator, n_classes: int, clip_length: float, max_events: int = 4):
    """(onset, offset, class) of one clip: onsets on a 10 ms grid, no two events of one class overlapping."""
    events = []
    for _ in range(int(rng.integers(0, max_events + 1))):
        label = int(rng.integers(n_classes))
        length = round(float(rng.uniform(*EVENT_SECONDS)), 2)
        onset = round(float(rng.uniform(0, clip_length - length)), 2)
        if all(label != other or onset >= end or onset + length <= start for start, end, other in events):
            events.append((onset, round(onset + length, 2), label))
    return sorted(events)


def make_event_demo(out_dir: str | os.PathLike, clips: int = 240, n_classes: int = 6, clip_length: float = 5.0,
                    sample_rate: int = 32000, seed: int = 0) -> str:
    """Write the clips and the events TSV below `out_dir`; returns the TSV's path."""
    audio_dir = os.path.join(out_dir, "audio")
    os.makedirs(audio_dir, exist_ok=True)
    names = [name for _, name in class_names(n_classes)]
    rows = ["filename\tonset\toffset\tevent_label\n"]
    samples = int(round(clip_length * sample_rate))
    for number in range(clips):
        rng = np.random.default_rng([seed, number])
        waveform = NOISE_LEVEL * rng.standard_normal(samples)
        events = clip_events(rng, n_classes, clip_length)
        for onset, offset, label in events:
            start, end = int(round(onset * sample_rate)), int(round(offset * sample_rate))
            waveform[start:end] += rng.uniform(0.2, 0.4) * synthesize_event(label, n_classes, end - start,
                                                                            sample_rate, rng)
        file_name = f"clip_{number:04d}.wav"
        with open(os.path.join(audio_dir, file_name), "wb") as file:
            file.write(encode_audio(np.clip(waveform, -0.95, 0.95).astype(np.float32), sample_rate, "wav"))
        rows += [f"{file_name}\t{onset:.2f}\t{offset:.2f}\t{names[label]}\n" for onset, offset, label in events]
        if not events:
            rows.append(f"{file_name}\t\t\t\n")
    path = os.path.join(out_dir, EVENTS_FILE)
    write_text(path, "".join(rows))
    logger.info("wrote %d clips with %d events to %s", clips, len(rows) - 1, out_dir)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="sed_demo", help="output folder (default: sed_demo)")
    parser.add_argument("--clips", type=int, default=240)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--clip-length", type=float, default=5.0, help="seconds per clip")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(make_event_demo(args.out, args.clips, args.classes, args.clip_length, seed=args.seed))


if __name__ == "__main__":
    main()
