"""Sound events from frame probabilities (``python -m passt_hear tag --events``): each class's probability over
time is median-filtered and compared with its threshold; every run of frames at or above it is one event with
an onset, an offset, the label and a confidence (the highest probability in the run)."""
import argparse
import csv
import json
import os
from dataclasses import asdict, dataclass
from typing import Iterable, List, Sequence, Tuple

import numpy as np

from helpers.data.labels import Label

EVENT_COLUMNS = ("file", "onset", "offset", "index", "mid", "label", "confidence")


@dataclass(frozen=True)
class Event:
    """One event: seconds from the start of ``file``, the class (index, mid, display name), its confidence."""
    file: str
    onset: float
    offset: float
    index: int
    mid: str
    label: str
    confidence: float


def median_filter(probabilities: np.ndarray, size: int) -> np.ndarray:
    """Running median over time (axis 0) of ``size`` frames (odd; 1: unchanged); the track is mirrored at its
    ends, edge frames included (scipy.ndimage.median_filter's default)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"median filter size must be an odd number of frames >= 1, got {size}")
    if size == 1 or len(probabilities) == 0:
        return probabilities
    half = size // 2
    padded = np.pad(probabilities, ((half, half), (0, 0)), mode="symmetric")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, size, axis=0), axis=-1)


def active_runs(active: np.ndarray) -> List[Tuple[int, int]]:
    """``(first, last)`` index of each run of True values in a 1-D boolean array."""
    edges = np.diff(np.concatenate(([0], np.asarray(active, dtype=np.int8), [0])))
    return [(int(first), int(last)) for first, last in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1)]


def find_events(times: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray, labels: Sequence[Label],
                hop: float, duration: float, median_frames: int = 1, file: str = "") -> List[Event]:
    """Events of every class in a ``(frames, classes)`` probability track whose frames are centred at ``times``
    (seconds, ``hop`` apart): runs of frames whose median-filtered probability reaches the class's threshold.

    A frame stands for ``[t - hop/2, t + hop/2]``, cut to ``[0, duration]``; the confidence is the highest
    unfiltered probability in the run. Sorted by onset, then class index.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape != (len(times), len(labels)):
        raise ValueError(f"probabilities must be (frames, classes) = ({len(times)}, {len(labels)}), "
                         f"got {probabilities.shape}")
    active = median_filter(probabilities, median_frames) >= np.asarray(thresholds)[None, :]
    events = []
    for index, label in enumerate(labels):
        for first, last in active_runs(active[:, index]):
            events.append(Event(file, round(max(0.0, float(times[first]) - hop / 2), 3),
                                round(min(duration, float(times[last]) + hop / 2), 3), index, label.mid,
                                label.display_name, round(float(probabilities[first:last + 1, index].max()), 5)))
    return sorted(events, key=lambda event: (event.onset, event.index))


def class_thresholds(labels: Sequence[Label], default, per_class: Iterable[Tuple[str, float]] = (),
                     source: str = "--class-threshold") -> np.ndarray:
    """One threshold per class: ``default`` (one value, or one per class), except the classes named in
    ``per_class`` (by display name, mid or index). An unknown name or a value outside [0, 1] is a ValueError
    naming it and ``source``."""
    thresholds = np.array(np.broadcast_to(np.asarray(default, dtype=np.float64), (len(labels),)))
    if not ((thresholds >= 0) & (thresholds <= 1)).all():
        raise ValueError(f"--threshold {default!r} must lie in [0, 1]")
    lookup = {}
    for label in labels:
        lookup.update({label.display_name: label.index, label.mid: label.index, str(label.index): label.index})
    for name, value in per_class:
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{source}: threshold {value!r} for {name!r} must lie in [0, 1]")
        if name not in lookup:
            raise ValueError(f"{source}: no class {name!r} (give a display name, mid or index of the label file)")
        thresholds[lookup[name]] = float(value)
    return thresholds


def threshold_pair(text: str) -> Tuple[str, float]:
    """``NAME=VALUE`` of ``--class-threshold`` (the name may contain ``=``; the last one separates)."""
    name, separator, value = text.rpartition("=")
    try:
        if separator and name.strip():
            return name.strip(), float(value)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. 'Dog=0.3'), got {text!r}")


def read_threshold_file(path: str) -> List[Tuple[str, float]]:
    """``label,threshold`` rows of a CSV file (header optional); errors name the file and line."""
    pairs = []
    with open(path, newline="", encoding="utf-8-sig") as file:
        for line_number, row in enumerate(csv.reader(file), start=1):
            if not row or (line_number == 1 and row[-1].strip().lower() == "threshold"):
                continue
            try:
                if len(row) != 2:
                    raise ValueError
                pairs.append((row[0].strip(), float(row[1])))
            except ValueError:
                raise ValueError(f"threshold file {path} line {line_number}: expected label,threshold, got {row}") \
                    from None
    return pairs


def add_event_options(parser: argparse.ArgumentParser) -> None:
    """``tag``'s event options."""
    group = parser.add_argument_group("events", "onset, offset, label and confidence from the frame probabilities "
                                                "(windows of --frame-window every --frame-hop s)")
    group.add_argument("--events", action="store_true", help="print the events of each file (in the JSON: "
                                                             "'events')")
    group.add_argument("--threshold", type=float, default=0.5, help="probability an event must reach, every "
                                                                    "class (default 0.5)")
    group.add_argument("--class-threshold", type=threshold_pair, action="append", default=[], metavar="NAME=VALUE",
                       help="threshold of one class (display name, mid or index); repeatable")
    group.add_argument("--thresholds", metavar="FILE.csv", help="per-class thresholds, rows label,threshold")
    group.add_argument("--median-filter", type=float, default=0.0, metavar="SECONDS",
                       help="median-filter each class's probabilities over this long before thresholding "
                            "(rounded to an odd number of frames; default 0: off)")
    group.add_argument("--events-out", metavar="FILE.csv|FILE.json", help="also write every file's events there")


def event_settings(args, labels: Sequence[Label]) -> Tuple[np.ndarray, int]:
    """The thresholds per class and the median filter's width in frames of the ``tag`` arguments."""
    pairs = read_threshold_file(args.thresholds) if args.thresholds else []
    thresholds = class_thresholds(labels, args.threshold, pairs, f"threshold file {args.thresholds}")
    thresholds = class_thresholds(labels, thresholds, args.class_threshold, "--class-threshold")
    if args.events_out and os.path.splitext(args.events_out)[1].lower() not in (".csv", ".json"):
        raise ValueError(f"--events-out {args.events_out}: the file name must end in .csv or .json")
    return thresholds, 2 * int(round(max(args.median_filter, 0.0) / args.frame_hop / 2)) + 1


def file_events(tags, labels: Sequence[Label], thresholds: np.ndarray, median_frames: int) -> List[Event]:
    """The events of a tagged file (``passt_hear.tagging.FileTags`` with frames)."""
    frames = tags.frames
    hop = float(frames.times[1] - frames.times[0]) if len(frames.times) > 1 else tags.duration
    return find_events(frames.times, frames.probabilities, thresholds, labels, hop, tags.duration, median_frames,
                       tags.path)


def format_events(events: Sequence[Event]) -> str:
    """Readable lines: onset, offset, confidence and label of each event (or that there is none)."""
    if not events:
        return "  events: none"
    return "\n".join(["  events (onset - offset s, confidence, label):"]
                     + [f"  {e.onset:8.2f} - {e.offset:8.2f}  {e.confidence:.3f}  {e.label}" for e in events])


def event_dicts(events: Sequence[Event]) -> List[dict]:
    return [asdict(event) for event in events]


def write_events(path: str, events: Sequence[Event]) -> None:
    """All events in one CSV (``EVENT_COLUMNS``) or JSON file, chosen by the extension."""
    if os.path.splitext(path)[1].lower() == ".json":
        with open(path, "w", encoding="utf-8") as file:
            json.dump(event_dicts(events), file, indent=1, ensure_ascii=False)
            file.write("\n")
        return
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=EVENT_COLUMNS)
        writer.writeheader()
        writer.writerows(event_dicts(events))
