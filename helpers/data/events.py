"""Strong labels: sound events (onset, offset, class) per clip, read from the formats people have, stored
compactly beside the audio and turned into frame targets on the fly.

Formats (`read_events`):

- `dcase`: DCASE / DESED TSV with the columns `filename`, `onset`, `offset`, `event_label`; a row whose
  label (and times) are empty marks a clip without events.
- `audioset`: AudioSet strong TSV with `segment_id` (`<YouTube id>_<start ms>`), `start_time_seconds`,
  `end_time_seconds` and `label` (a MID); times are seconds from the segment's start.

Storage (`attach_events`): the HDF5-mp3 file of a split gets `event_index` (rows + 1, int64: the events of
row i are `event_index[i]:event_index[i + 1]`), `event_onset` / `event_offset` (float32 seconds) and
`event_class` (int16), and `strong` (uint8 per row: 1 when the clip has strong labels, 0 for a clip with
clip labels only). Events of one class that overlap or touch are merged. Clips the annotations list but the
file lacks are counted and named.

Frames (`frame_targets`): frame i covers [i * hop, (i + 1) * hop) seconds of the (cropped) clip and is active
for a class when an event of that class overlaps it (onset frame floor(onset / hop), offset frame
ceil(offset / hop), as DCASE's baseline encodes).
"""

from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import h5py
import numpy as np

from helpers.data.clip_ids import clip_id, file_clip_ids

logger = logging.getLogger(__name__)

EVENT_INDEX_KEY, EVENT_ONSET_KEY, EVENT_OFFSET_KEY, EVENT_CLASS_KEY, STRONG_KEY = (
    "event_index", "event_onset", "event_offset", "event_class", "strong")
EVENT_KEYS = (EVENT_INDEX_KEY, EVENT_ONSET_KEY, EVENT_OFFSET_KEY, EVENT_CLASS_KEY, STRONG_KEY)
FORMATS = {"dcase": ("filename", "onset", "offset", "event_label"),
           "audioset": ("segment_id", "start_time_seconds", "end_time_seconds", "label")}
DEFAULT_FRAME_SECONDS = 0.04  # PretrainedSED's 40 ms: 250 frames per 10 s


class EventFileError(ValueError):
    """A strong-label file cannot be read; the message names the file and line."""


@dataclass
class EventTable:
    """Events per clip id: {id: [(onset, offset, class index), ...]} (a listed clip may have none), the
    class names in index order, and the rows skipped with `skip_bad_rows` as (file, line, reason)."""

    events: dict[str, list[tuple[float, float, int]]]
    classes: list[str]
    bad_rows: list[tuple[str, int, str]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # clip id -> its name as the file writes it

    def subset(self, ids) -> "EventTable":
        """The table of the clips `ids` only."""
        return EventTable({clip: self.events[clip] for clip in ids if clip in self.events}, self.classes,
                          self.bad_rows, {clip: self.names[clip] for clip in ids if clip in self.names})


def merge_overlapping(events: Sequence[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """The events with those of one class that overlap or touch merged, sorted by (onset, class)."""
    merged: list[list] = []
    open_of: dict[int, list] = {}
    for onset, offset, label in sorted(events, key=lambda event: (event[2], event[0], event[1])):
        current = open_of.get(label)
        if current is not None and onset <= current[1]:
            current[1] = max(current[1], offset)
            continue
        current = [onset, offset, label]
        open_of[label] = current
        merged.append(current)
    return sorted((tuple(event) for event in merged), key=lambda event: (event[0], event[2]))


def read_events(path: str | os.PathLike, file_format: str, classes: Sequence[str] | Mapping[str, int] | None = None,
                *, skip_bad_rows: bool = False, clip_seconds: Mapping[str, float] | None = None) -> EventTable:
    """Read a DCASE or AudioSet strong TSV into an `EventTable` of merged events.

    classes: the label names (DCASE `event_label`s, AudioSet MIDs) in index order, or a name -> index map;
    None: the sorted labels the file uses. clip_seconds: clip id -> duration, to refuse onsets past a clip's end.
    Bad rows (onset >= offset, a negative onset, an onset past the clip, an unknown label, unreadable times) are
    an EventFileError naming the file and line, or with `skip_bad_rows` counted in `bad_rows` and left out.
    """
    path = os.fspath(path)
    if file_format not in FORMATS:
        raise ValueError(f"events format {file_format!r}; allowed: {', '.join(FORMATS)}")
    name_key, onset_key, offset_key, label_key = FORMATS[file_format]
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file, delimiter="\t")
        missing = [key for key in FORMATS[file_format] if key not in (reader.fieldnames or [])]
        if missing:
            raise EventFileError(f"{path!r}: the header lacks column(s) {missing} of the {file_format} format "
                                 f"({', '.join(FORMATS[file_format])}); it has {reader.fieldnames}")
        rows = [(number, row) for number, row in enumerate(reader, start=2)]
    if classes is None:
        classes = sorted({(row[label_key] or "").strip() for _, row in rows} - {""})
    index_of = dict(classes) if isinstance(classes, Mapping) else {name: index for index, name in enumerate(classes)}
    names = [name for name, _ in sorted(index_of.items(), key=lambda item: item[1])]
    events: dict[str, list[tuple[float, float, int]]] = {}
    bad: list[tuple[str, int, str]] = []
    written: dict[str, str] = {}
    for number, row in rows:
        raw_name = (row[name_key] or "").strip()
        clip = clip_id(raw_name.rsplit("_", 1)[0] if file_format == "audioset" else raw_name)
        written.setdefault(clip, raw_name)
        label = (row[label_key] or "").strip()
        problem = None
        if not raw_name:
            problem = f"empty {name_key}"
        elif not label and not (row[onset_key] or "").strip() and not (row[offset_key] or "").strip():
            events.setdefault(clip, [])  # a clip listed without events
            continue
        else:
            try:
                onset, offset = float(row[onset_key]), float(row[offset_key])
            except (TypeError, ValueError):
                onset = offset = math.nan
            duration = (clip_seconds or {}).get(clip)
            if not (math.isfinite(onset) and math.isfinite(offset)):
                problem = f"onset {row[onset_key]!r} / offset {row[offset_key]!r} are not numbers"
            elif onset < 0 or onset >= offset:
                problem = f"onset {onset} must be >= 0 and before offset {offset}"
            elif duration is not None and onset >= duration:
                problem = f"onset {onset} lies past the end of the clip ({duration:.3f} s)"
            elif label not in index_of:
                problem = f"label {label!r} is not one of the {len(index_of)} classes"
        if problem:
            if not skip_bad_rows:
                raise EventFileError(f"{path!r} line {number}: {problem} (--skip-bad-rows counts and skips such "
                                     f"rows)")
            bad.append((path, number, problem))
            continue
        offset = min(offset, duration) if duration is not None else offset
        events.setdefault(clip, []).append((onset, offset, index_of[label]))
    if bad:
        logger.warning("%s: %d bad row(s) skipped, e.g. line %d: %s", path, len(bad), bad[0][1], bad[0][2])
    return EventTable({clip: merge_overlapping(found) for clip, found in events.items()}, names, bad,
                      {clip: written[clip] for clip in events})


@dataclass
class AttachReport:
    """What `attach_events` did to one file: rows with strong labels, events stored, and the ids the
    annotations list but the file lacks (sorted)."""

    path: str
    strong_rows: int
    events: int
    missing: list[str]


def attach_events(hdf5_file: str | os.PathLike, table: EventTable) -> AttachReport:
    """Store `table`'s events of the clips of an HDF5-mp3 file beside their audio (replacing earlier ones)."""
    path = os.fspath(hdf5_file)
    ids = [clip.decode("utf-8") for clip in file_clip_ids(path).tolist()]
    index = np.zeros(len(ids) + 1, dtype=np.int64)
    strong = np.zeros(len(ids), dtype=np.uint8)
    onsets, offsets, labels = [], [], []
    for row, clip in enumerate(ids):
        found = table.events.get(clip)
        if found is not None:
            strong[row] = 1
            onsets += [event[0] for event in found]
            offsets += [event[1] for event in found]
            labels += [event[2] for event in found]
        index[row + 1] = len(onsets)
    present = set(ids)
    missing = sorted(clip for clip in table.events if clip not in present)
    with h5py.File(path, "a") as file:
        for key in EVENT_KEYS:
            if key in file:
                del file[key]
        file.create_dataset(EVENT_INDEX_KEY, data=index)
        file.create_dataset(EVENT_ONSET_KEY, data=np.asarray(onsets, dtype=np.float32))
        file.create_dataset(EVENT_OFFSET_KEY, data=np.asarray(offsets, dtype=np.float32))
        file.create_dataset(EVENT_CLASS_KEY, data=np.asarray(labels, dtype=np.int16))
        file.create_dataset(STRONG_KEY, data=strong)
        file.attrs["event_classes"] = len(table.classes)
    if missing:
        shown = ", ".join(missing[:20]) + (", ..." if len(missing) > 20 else "")
        logger.warning("%s: %d clip(s) with strong labels are not in the file: %s", path, len(missing), shown)
    logger.info("%s: strong labels for %d of %d clips, %d events", path, int(strong.sum()), len(ids), len(onsets))
    return AttachReport(path, int(strong.sum()), len(onsets), missing)


def has_events(hdf5_file: str | os.PathLike) -> bool:
    with h5py.File(os.fspath(hdf5_file), "r") as file:
        return all(key in file for key in EVENT_KEYS)


def validate_events(hdf5_file: str | os.PathLike, classes: int) -> None:
    """A clear error when an HDF5-mp3 file lacks strong labels or holds inconsistent ones."""
    path = os.fspath(hdf5_file)
    with h5py.File(path, "r") as file:
        missing = [key for key in EVENT_KEYS if key not in file]
        if missing:
            raise ValueError(f"{path!r} holds no strong labels (lacks {', '.join(missing)}); attach them with "
                             "`python -m helpers.data.events attach` or `python -m custom prepare ... --events`")
        rows, index = len(file["mp3"]), file[EVENT_INDEX_KEY]
        if index.shape != (rows + 1,) or len(file[STRONG_KEY]) != rows:
            raise ValueError(f"{path!r}: event_index has {index.shape[0]} entries and strong {len(file[STRONG_KEY])} "
                             f"for {rows} clips; reattach the events")
        stored = int(file.attrs.get("event_classes", classes))
        if stored != classes:
            raise ValueError(f"{path!r}: its events use {stored} classes, the config {classes}")


def read_clip_events(file: h5py.File, row: int) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray]:
    """(strong?, onsets, offsets, classes) of file row `row` of an open HDF5-mp3 file with events."""
    start, end = (int(value) for value in file[EVENT_INDEX_KEY][row:row + 2])
    return (bool(file[STRONG_KEY][row]), file[EVENT_ONSET_KEY][start:end], file[EVENT_OFFSET_KEY][start:end],
            file[EVENT_CLASS_KEY][start:end])


def frame_count(clip_seconds: float, frame_seconds: float = DEFAULT_FRAME_SECONDS) -> int:
    """Frames of a clip: 250 for 10 s at 40 ms."""
    return int(round(clip_seconds / frame_seconds))


def frame_targets(onsets, offsets, classes, n_classes: int, n_frames: int,
                  frame_seconds: float = DEFAULT_FRAME_SECONDS, start_seconds: float = 0.0) -> np.ndarray:
    """(n_frames, n_classes) float32 0/1 targets of events (seconds from the clip's start) for the window of
    the clip that begins at `start_seconds` (a training crop)."""
    targets = np.zeros((n_frames, n_classes), dtype=np.float32)
    for onset, offset, label in zip(onsets, offsets, classes):
        first = max(int(math.floor(round((onset - start_seconds) / frame_seconds, 6))), 0)
        last = min(int(math.ceil(round((offset - start_seconds) / frame_seconds, 6))), n_frames)
        if first < last:
            targets[first:last, int(label)] = 1.0
    return targets


def frames_to_events(active: np.ndarray, frame_seconds: float = DEFAULT_FRAME_SECONDS,
                     class_names: Sequence[str] | None = None) -> list[tuple[float, float, object]]:
    """Runs of active frames ((frames, classes) booleans) as (onset, offset, class) events, sorted by onset."""
    events = []
    for label in range(active.shape[1]):
        column = np.concatenate([[0], active[:, label].astype(np.int8), [0]])
        changes = np.flatnonzero(np.diff(column))
        for start, end in zip(changes[::2], changes[1::2]):
            events.append((start * frame_seconds, end * frame_seconds,
                           class_names[label] if class_names is not None else label))
    return sorted(events, key=lambda event: (event[0], str(event[2])))


def roll_frames(targets: np.ndarray, shift_samples: int, hop_samples: float) -> np.ndarray:
    """Frame targets rolled with their audio: a circular shift of `shift_samples` samples moves them by the
    nearest whole number of frames."""
    return np.roll(targets, int(round(shift_samples / hop_samples)), axis=0)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m helpers.data.events attach --hdf5 FILE.hdf --events TSV --format audioset|dcase --labels CSV`:
    store a strong-label TSV's events in an HDF5-mp3 file (AudioSet strong: `--labels` holds the MIDs, e.g.
    metadata/audioset_class_labels_indices.csv; DCASE: the `event_label`s in the display_name column)."""
    import argparse

    from helpers.data.labels import read_label_file

    parser = argparse.ArgumentParser(prog="python -m helpers.data.events", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    attach = commands.add_parser("attach", help="store a TSV's events beside the audio of an HDF5-mp3 file")
    attach.add_argument("--hdf5", required=True, nargs="+", help="the HDF5-mp3 file(s) of the clips")
    attach.add_argument("--events", required=True, help="the strong-label TSV")
    attach.add_argument("--format", choices=sorted(FORMATS), default="audioset")
    attach.add_argument("--labels", required=True, help="the label file (index,mid,display_name) of the classes")
    attach.add_argument("--skip-bad-rows", action="store_true", help="count and list bad rows instead of stopping")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    labels = read_label_file(args.labels)
    classes = [label.mid if args.format == "audioset" else label.display_name for label in labels]
    try:
        table = read_events(args.events, args.format, classes, skip_bad_rows=args.skip_bad_rows)
    except EventFileError as error:
        logger.error("%s", error)
        return 2
    stored = set()
    for path in args.hdf5:
        report = attach_events(path, table)
        stored |= set(table.events) - set(report.missing)
        print(f"{path}: strong labels for {report.strong_rows} clips, {report.events} events")
    missing = sorted(set(table.events) - stored)
    print(f"{len(table.events)} annotated clips, {len(missing)} in none of the files"
          + (f" (e.g. {', '.join(missing[:10])})" if missing else "")
          + (f"; {len(table.bad_rows)} bad rows skipped" if table.bad_rows else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
