"""Prepare your own audio for training:

    python -m custom prepare AUDIO_DIR --out OUT [--csv LABELS.csv] [--split 0.8,0.1,0.1] [--channels 2]
    python -m custom prepare AUDIO_DIR --out OUT --events EVENTS.tsv [--skip-bad-rows]   # strong labels

(`python -m custom report AUDIO_DIR --hdf5 OUT --out REPORT_DIR [--csv LABELS.csv]`: see custom.report.)

Labels come from one sub-folder per class (`AUDIO_DIR/<class>/**/<file>`) or from a CSV with the columns
`filename,labels[,split]` (header optional; file names relative to AUDIO_DIR; labels separated by `;`; split
one of train, valid, eval). Every file FFmpeg reads (any rate, channel count and length) is converted to
32 kHz mp3 below `OUT/mp3/`, in parallel with a progress bar; a rerun keeps what is converted (resumable).
The clips are then packed into `OUT/train_mp3.hdf`, `valid_mp3.hdf` and `eval_mp3.hdf` (the CSV's splits, or
a seeded split stratified by label), next to `OUT/class_labels_indices.csv` (for `python -m passt_hear tag
--labels`) and `OUT/dataset.json`. Unreadable files are skipped, listed at the end and in `OUT/skipped.tsv`.

`--events` (a DCASE TSV: filename, onset, offset, event_label; file names relative to AUDIO_DIR; a row without
a label lists a clip without events) gives strong labels: its files are the clips (or, with `--csv`, those of
the CSV's clips it lists), its labels the classes, and each split's events are stored beside the audio
(`helpers.data.events`); ex_custom.py then trains a frame-level model.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import pathlib
import posixpath
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Sequence

import numpy as np

from custom.dataset import INFO_FILE, LABEL_FILE, SPLIT_FILES
from helpers.data import PackedBitsTargets, write_label_file
from helpers.data.atomic import write_text
from helpers.data.audio import AudioDecodeError, audio_seconds
from helpers.data.clip_ids import clip_id
from helpers.data.events import EventFileError, EventTable, attach_events, read_events
from helpers.data.labels import multi_hot
from helpers.data.prepare import AUDIO_EXTENSIONS, convert_files_to_mp3, find_audio_files, pack_mp3_files

logger = logging.getLogger(__name__)

SPLITS = tuple(SPLIT_FILES)
SPLIT_NAMES = MappingProxyType({"train": "train", "training": "train", "valid": "valid", "val": "valid",
                                "validation": "valid", "eval": "eval", "evaluation": "eval", "test": "eval"})
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
SKIPPED_FILE = "skipped.tsv"
MP3_SETTINGS_FILE = "settings.json"
EXIT_OK, EXIT_USAGE = 0, 2


class PrepareError(ValueError):
    """The listing or the options cannot be prepared; the message names the file, line or value."""


@dataclass(frozen=True)
class Clip:
    """One audio file: its path relative to the audio folder (posix, its `audio_name`), labels, given split."""

    name: str
    labels: tuple[str, ...]
    split: str | None = None


@dataclass
class Prepared:
    """What `prepare` wrote: classes in index order, the label mode, clips per split and the skipped files."""

    out_dir: str
    classes: list[str]
    multi_label: bool
    splits: dict[str, int]
    skipped: list[tuple[str, str]] = field(default_factory=list)


# --- listing -----------------------------------------------------------------------------------------------
def clips_from_folders(audio_dir: str | os.PathLike) -> tuple[list[Clip], list[tuple[str, str]]]:
    """One clip per audio file below a class folder `audio_dir/<class>/` (any depth); files directly in
    `audio_dir` are skipped. Raises PrepareError when there is no audio file at all."""
    audio_dir = pathlib.Path(audio_dir)
    files = find_audio_files(audio_dir)
    if not files:
        raise PrepareError(f"no audio files below {str(audio_dir)!r} (looked for {', '.join(AUDIO_EXTENSIONS)})")
    clips, skipped = [], []
    for path in files:
        relative = path.relative_to(audio_dir)
        if len(relative.parts) < 2:
            skipped.append((relative.as_posix(), "not inside a class folder"))
        else:
            clips.append(Clip(relative.as_posix(), (relative.parts[0],)))
    if not clips:
        raise PrepareError(f"{str(audio_dir)!r} holds audio files but no class folders: put each class's files in "
                           "a sub-folder named after the class, or pass --csv")
    return clips, skipped


def _csv_name(text: str, where: str, audio_dir: pathlib.Path) -> str:
    name = posixpath.normpath(text.strip().replace("\\", "/"))
    if not text.strip() or name.startswith("/") or name == ".." or name.startswith("../"):
        raise PrepareError(f"{where}: filename {text!r} must be a path inside {str(audio_dir)!r}")
    return name


def read_csv_rows(csv_path: str | os.PathLike, audio_dir: str | os.PathLike) -> list[tuple[int, Clip]]:
    """Every row of a `filename,labels[,split]` CSV with its line number, whether its file exists or not.
    Raises PrepareError naming the file and line for a malformed row, an unknown split, a file listed twice,
    or a split given for some rows only."""
    csv_path, audio_dir = pathlib.Path(csv_path), pathlib.Path(audio_dir)
    if not csv_path.is_file():
        raise PrepareError(f"label CSV {str(csv_path)!r} does not exist")
    if not audio_dir.is_dir():
        raise PrepareError(f"audio folder {str(audio_dir)!r} does not exist")
    with open(csv_path, newline="", encoding="utf-8-sig") as file:
        rows = list(csv.reader(file))
    first = 0
    if rows and rows[0] and rows[0][0].strip().lower() == "filename":
        header = [cell.strip().lower() for cell in rows[0]]
        if header not in (["filename", "labels"], ["filename", "labels", "split"]):
            raise PrepareError(f"{str(csv_path)!r} line 1: header must be filename,labels[,split], found {rows[0]}")
        first = 1
    listed, seen, with_split, without_split = [], {}, [], []
    for line_number, row in enumerate(rows[first:], start=first + 1):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{str(csv_path)!r} line {line_number}"
        if len(row) not in (2, 3):
            raise PrepareError(f"{where}: expected filename,labels[,split], found {len(row)} columns: {row}")
        name = _csv_name(row[0], where, audio_dir)
        if name in seen:
            raise PrepareError(f"{where}: {name!r} is listed twice (first on line {seen[name]})")
        seen[name] = line_number
        labels = tuple(dict.fromkeys(label.strip() for label in row[1].split(";") if label.strip()))
        split = row[2].strip().lower() if len(row) == 3 else ""
        if split and split not in SPLIT_NAMES:
            raise PrepareError(f"{where}: split {row[2]!r}; allowed: train, valid, eval (or val, validation, test)")
        (with_split if split else without_split).append(line_number)
        listed.append((line_number, Clip(name, labels, SPLIT_NAMES.get(split))))
    if with_split and without_split:
        raise PrepareError(f"{str(csv_path)!r}: lines {with_split[:3]} give a split but lines {without_split[:3]} "
                           "do not; give one for every row or for none (then a stratified split is drawn)")
    if not seen:
        raise PrepareError(f"label CSV {str(csv_path)!r} lists no files")
    return listed


def clips_from_csv(csv_path: str | os.PathLike,
                   audio_dir: str | os.PathLike) -> tuple[list[Clip], list[tuple[str, str]]]:
    """The clips a `filename,labels[,split]` CSV lists (`read_csv_rows`; files that do not exist are skipped)."""
    clips, skipped = [], []
    for _, clip in read_csv_rows(csv_path, audio_dir):
        if (pathlib.Path(audio_dir) / clip.name).is_file():
            clips.append(clip)
        else:
            skipped.append((clip.name, "file does not exist"))
    return clips, skipped


def _read_event_file(path, skip_bad_rows: bool, classes=None, seconds=None) -> EventTable:
    if not os.path.isfile(path):
        raise PrepareError(f"events file {os.fspath(path)!r} does not exist")
    try:
        return read_events(path, "dcase", classes, skip_bad_rows=skip_bad_rows, clip_seconds=seconds)
    except (EventFileError, AudioDecodeError) as error:
        raise PrepareError(str(error)) from None


def clips_from_events(table: EventTable, audio_dir: str | os.PathLike) -> tuple[list[Clip], list[tuple[str, str]]]:
    """One clip per file the events list (its labels: its events' classes); files that do not exist are skipped."""
    clips, skipped = [], []
    for clip, name in sorted(table.names.items()):
        labels = tuple(sorted({table.classes[event[2]] for event in table.events[clip]}))
        name = _csv_name(name, f"events of {name!r}", pathlib.Path(audio_dir))
        if (pathlib.Path(audio_dir) / name).is_file():
            clips.append(Clip(name, labels))
        else:
            skipped.append((name, "file does not exist"))
    if not clips:
        raise PrepareError(f"none of the {len(table.names)} files the events list is in {os.fspath(audio_dir)!r}")
    return clips, skipped


# --- splitting ---------------------------------------------------------------------------------------------
def _largest_remainder(sizes: Sequence[int], fraction: float, caps: Sequence[int]) -> list[int]:
    """Per-stratum counts near `size * fraction` that add up to round(total * fraction), each at most its cap."""
    total = min(math.floor(sum(sizes) * fraction + 0.5), sum(caps))
    quotas = [size * fraction for size in sizes]
    counts = [min(math.floor(quota), cap) for quota, cap in zip(quotas, caps)]
    order = sorted(range(len(sizes)), key=lambda i: (-(quotas[i] - math.floor(quotas[i])), -sizes[i], i))
    while sum(counts) < total:
        for i in order:
            if sum(counts) < total and counts[i] < caps[i]:
                counts[i] += 1
    return counts


def stratified_split(clips: Sequence[Clip], fractions: Sequence[float] = DEFAULT_FRACTIONS,
                     seed: int = 0) -> dict[str, list[Clip]]:
    """Clips drawn into train/valid/eval by `fractions`, seeded, stratified by label: each clip counts for its
    rarest label (a clip without labels for none), and each stratum gives its share to valid and eval
    (largest remainders, so the split sizes are round(clips * fraction))."""
    counts = Counter(label for clip in clips for label in clip.labels)
    strata = defaultdict(list)
    for clip in sorted(clips, key=lambda clip: clip.name):
        key = min(clip.labels, key=lambda label: (counts[label], label)) if clip.labels else ""
        strata[key].append(clip)
    keys = sorted(strata)
    rng = np.random.default_rng(seed)
    members = [[strata[key][i] for i in rng.permutation(len(strata[key]))] for key in keys]
    sizes = [len(group) for group in members]
    evaluation = _largest_remainder(sizes, fractions[2], sizes)
    valid = _largest_remainder(sizes, fractions[1], [size - count for size, count in zip(sizes, evaluation)])
    splits = {split: [] for split in SPLITS}
    for group, n_eval, n_valid in zip(members, evaluation, valid):
        splits["eval"] += group[:n_eval]
        splits["valid"] += group[n_eval:n_eval + n_valid]
        splits["train"] += group[n_eval + n_valid:]
    return splits


def parse_fractions(text: str) -> tuple[float, float, float]:
    """`train,valid,eval` fractions (e.g. 0.8,0.1,0.1); train and valid > 0, eval >= 0, summing to 1."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or values[0] <= 0 or values[1] <= 0 or values[2] < 0 or abs(sum(values) - 1) > 1e-6:
        raise PrepareError(f"--split {text!r}: give train,valid,eval fractions summing to 1, train and valid > 0 "
                           "(e.g. 0.8,0.1,0.1 or 0.9,0.1,0)")
    return values


def assign_splits(clips: Sequence[Clip], fractions: Sequence[float], seed: int) -> dict[str, list[Clip]]:
    """The CSV's splits when it gives them, else `stratified_split`; each split sorted by name. Raises
    PrepareError when train or valid (or a requested eval split) would be empty."""
    given = bool(clips) and clips[0].split is not None
    if given:
        splits = {split: [clip for clip in clips if clip.split == split] for split in SPLITS}
    else:
        splits = stratified_split(clips, fractions, seed)
    for split in SPLITS:
        if not splits[split] and (split != "eval" or (not given and fractions[2] > 0)):
            how = "the CSV gives none" if given else f"{len(clips)} clips at fraction {fractions[SPLITS.index(split)]}"
            raise PrepareError(f"the {split} split would be empty ({how}); add clips or change the split")
    return {split: sorted(members, key=lambda clip: clip.name) for split, members in splits.items()}


# --- preparing ---------------------------------------------------------------------------------------------
def mp3_path(mp3_dir: pathlib.Path, clip: Clip) -> pathlib.Path:
    """Where a clip's converted mp3 lives: its relative path with `.mp3` appended (a.wav and a.flac differ)."""
    return mp3_dir / (clip.name + ".mp3")


def _check_mp3_settings(mp3_dir: pathlib.Path, settings: dict) -> None:
    """Converted files are reused only with the settings they were written with."""
    path = mp3_dir / MP3_SETTINGS_FILE
    if path.is_file():
        written = json.loads(path.read_text(encoding="utf-8"))
        if written != settings:
            raise PrepareError(f"{str(mp3_dir)!r} holds files converted with {written}, not {settings}; use another "
                               "--out (or --mp3-dir), or delete that folder")
    write_text(path, json.dumps(settings))


def prepare(audio_dir: str | os.PathLike, out_dir: str | os.PathLike, csv_path: str | os.PathLike | None = None,
            fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0, channels: int = 1,
            sample_rate: int = 32000, workers: int | None = None,
            mp3_dir: str | os.PathLike | None = None, events_path: str | os.PathLike | None = None,
            skip_bad_rows: bool = False) -> Prepared:
    """List, convert (resumable), split and pack `audio_dir` into `out_dir`; see the module docstring.

    channels: 1 mono-mixes every file; 2 keeps stereo files stereo (mono files stay mono; the dataset repeats
    them). Labels with more than one label per clip anywhere (or a clip without labels) make the dataset
    multi-label. Raises PrepareError for listings that cannot work (nothing to prepare, a bad CSV, an empty
    split); files that do not convert are skipped and reported. `events_path`: strong labels (see the module).
    """
    if channels not in (1, 2):
        raise PrepareError(f"--channels {channels}: the mp3 files hold 1 or 2 channels")
    audio_dir, out_dir = pathlib.Path(audio_dir), pathlib.Path(out_dir)
    mp3_dir = pathlib.Path(mp3_dir) if mp3_dir else out_dir / "mp3"
    table = None
    if events_path:
        table = _read_event_file(events_path, skip_bad_rows)
        clips, skipped = clips_from_csv(csv_path, audio_dir) if csv_path else clips_from_events(table, audio_dir)
    else:
        clips, skipped = clips_from_csv(csv_path, audio_dir) if csv_path else clips_from_folders(audio_dir)
    _check_mp3_settings(mp3_dir, {"sample_rate": int(sample_rate), "channels": int(channels)})
    by_source = {os.fspath(audio_dir / clip.name): clip for clip in clips}
    report = convert_files_to_mp3([(source, mp3_path(mp3_dir, clip)) for source, clip in by_source.items()],
                                  mp3_dir / "conversion_failures.tsv", sample_rate, workers, channels,
                                  description=f"{audio_dir} to {mp3_dir}")
    failed = {source: reason for source, reason in report.failed}
    skipped += [(by_source[source].name, reason) for source, reason in failed.items()]
    clips = [clip for source, clip in by_source.items() if source not in failed]
    if not clips:
        raise PrepareError(f"none of the {len(by_source)} listed files in {str(audio_dir)!r} could be read; "
                           f"see {str(mp3_dir / 'conversion_failures.tsv')!r}")
    classes = sorted({label for clip in clips for label in clip.labels} | set(table.classes if table else ()))
    if not classes:
        raise PrepareError("no clip has a label")
    if table is not None:  # in the final class order, onsets checked against the converted clips' lengths
        seconds = {clip_id(clip.name): audio_seconds(mp3_path(mp3_dir, clip)) for clip in clips}
        table = _read_event_file(events_path, skip_bad_rows, classes, seconds)
    multi_label = table is not None or any(len(clip.labels) != 1 for clip in clips)
    splits = assign_splits(clips, fractions, seed)
    index_of = {label: index for index, label in enumerate(classes)}
    write_label_file(out_dir / LABEL_FILE, [(label, label) for label in classes])
    for split, members in splits.items():
        path = out_dir / SPLIT_FILES[split]
        if not members:
            path.unlink(missing_ok=True)  # an eval file of an earlier run with other splits
            continue
        rows = ((clip.name, mp3_path(mp3_dir, clip), multi_hot(clip.labels, index_of, len(classes),
                                                               f"clip {clip.name}", LABEL_FILE))
                for clip in members)
        pack_mp3_files(path, rows, PackedBitsTargets(len(classes)), total=len(members))
        if table is not None:
            attach_events(path, table.subset(clip_id(clip.name) for clip in members))
    skipped.sort()
    write_text(out_dir / SKIPPED_FILE, "".join(f"{name}\t{reason}\n" for name, reason in skipped))
    counts = {split: len(members) for split, members in splits.items() if members}
    info = {"classes": classes, "multi_label": multi_label, "channels": channels, "sample_rate": int(sample_rate),
            "splits": counts, "split": "csv" if clips[0].split else {"fractions": list(fractions), "seed": seed},
            "skipped": len(skipped), "strong": table is not None,
            "bad_event_rows": len(table.bad_rows) if table else 0}
    write_text(out_dir / INFO_FILE, json.dumps(info, indent=1, ensure_ascii=False) + "\n")
    return Prepared(os.fspath(out_dir), classes, multi_label, counts, skipped)


# --- command line ------------------------------------------------------------------------------------------
def summary(result: Prepared, most: int = 20) -> str:
    """The closing report: classes, label mode, clips per split, and the skipped files by name."""
    mode = "multi-label (BCE, mAP)" if result.multi_label else "single-label (cross-entropy, accuracy)"
    lines = [f"prepared {result.out_dir}: {len(result.classes)} classes, {mode}; "
             + ", ".join(f"{split} {count}" for split, count in result.splits.items()) + " clips"]
    if result.skipped:
        lines.append(f"skipped {len(result.skipped)} files (all listed in "
                     f"{os.path.join(result.out_dir, SKIPPED_FILE)}):")
        lines += [f"  {name}: {reason}" for name, reason in result.skipped[:most]]
        if len(result.skipped) > most:
            lines.append(f"  ... and {len(result.skipped) - most} more")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m custom", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("prepare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                  help="turn a folder of audio files into the HDF5-mp3 training format")
    command.add_argument("audio_dir", metavar="AUDIO_DIR", help="the audio files (one sub-folder per class "
                                                                "unless --csv is given)")
    command.add_argument("--out", required=True, help="folder for the .hdf files, the label file and dataset.json "
                                                      "(ex_custom.py's basedataset.base_dir)")
    command.add_argument("--csv", help="filename,labels[,split] rows; labels separated by ';'")
    command.add_argument("--split", default="0.8,0.1,0.1", help="train,valid,eval fractions of the stratified "
                                                                "split when the CSV gives none (default 0.8,0.1,0.1)")
    command.add_argument("--seed", type=int, default=0, help="seed of the stratified split (default 0)")
    command.add_argument("--channels", type=int, choices=(1, 2), default=1,
                         help="1: mono-mix every file (default); 2: keep stereo files stereo")
    command.add_argument("--sample-rate", type=int, default=32000, help="rate of the stored mp3s (default 32000, "
                                                                        "the model's)")
    command.add_argument("--mp3-dir", help="where the converted files go (default: OUT/mp3)")
    command.add_argument("--workers", type=int, default=None, help="conversion processes (default: all CPUs)")
    command.add_argument("--events", help="strong labels: a DCASE TSV (filename, onset, offset, event_label)")
    command.add_argument("--skip-bad-rows", action="store_true", help="count and list bad event rows instead of "
                                                                      "stopping at the first")
    from custom import report  # imported here: custom.report imports this module

    report.add_arguments(commands.add_parser("report", description=report.__doc__,
                                             formatter_class=argparse.RawDescriptionHelpFormatter,
                                             help="what the prepared files hold against your list (data report)"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0 when the files were written (skipped audio files are reported), 2 for unusable input."""
    args = build_parser().parse_args(argv)
    if args.command == "report":
        from custom.report import command

        return command(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = prepare(args.audio_dir, args.out, args.csv, parse_fractions(args.split), args.seed, args.channels,
                         args.sample_rate, args.workers, args.mp3_dir, args.events, args.skip_bad_rows)
    except (PrepareError, FileNotFoundError) as error:
        sys.stderr.write(f"error: {error}\n")
        return EXIT_USAGE
    print(summary(result))
    return EXIT_OK
