"""The data report of a folder `python -m custom prepare` wrote, against your own list (helpers.data.report
does the work):

    python -m custom report AUDIO_DIR --hdf5 OUT --out REPORT_DIR [--csv LABELS.csv] [--audio]

The list is what `prepare` read: the CSV's rows (every row, whether its file exists or not) or, without
--csv, the audio files below AUDIO_DIR's class folders. A clip's id is its path relative to AUDIO_DIR
without the audio extension (`dogs/bark 01`, helpers.data.clip_ids), the stored `audio_name` likewise.

A listed clip belongs to the split its CSV row gives. Without a split column it belongs to the split whose
file stores it (prepare's seeded split, which is recorded nowhere else); a listed clip stored in no file has no
known split: it counts as missing overall (`unassigned`: count, prepare's reasons from skipped.tsv, listed
positives per class; ids in missing_unassigned_ids.txt) and in no split. `missing_reasons` counts, per split,
skipped.tsv's reasons for the missing clips; `split_overlap` names clips stored in two splits. The classes
are dataset.json's, then the list's labels the copy has no class for (every clip of them skipped;
`unprepared_classes`, coverage 0). The report's `valid_fingerprint` and `eval_fingerprint` are those
ex_custom.py runs print.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import pathlib
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from custom.dataset import LABEL_FILE, SPLIT_FILES, read_info
from custom.prepare import SKIPPED_FILE, clips_from_folders, read_csv_rows
from helpers.data import Label, PackedBitsTargets, read_label_file
from helpers.data.clip_ids import clip_id, file_clip_ids
from helpers.data.hdf5 import validate_hdf5
from helpers.data.report import ClipList, StoredTargets, add_report_arguments, run_report

MIN_SECONDS = 0.5  # your own clips have any length; shorter than half a second is worth a look
EXIT_OK, EXIT_USAGE = 0, 2


@dataclass(frozen=True)
class Listed:
    """One clip of the user's list: id, labels, the split it gives (None: prepare draws one)."""

    id: str
    labels: tuple[str, ...]
    split: str | None


def read_listing(audio_dir: str | os.PathLike, csv_path: str | os.PathLike | None = None) -> list[Listed]:
    """The user's list as prepare reads it: every CSV row (with its line), or the files of the class folders."""
    if csv_path:
        return [Listed(clip_id(clip.name), clip.labels, clip.split) for _, clip in read_csv_rows(csv_path, audio_dir)]
    clips, _ = clips_from_folders(audio_dir)
    return [Listed(clip_id(clip.name), clip.labels, None) for clip in clips]


def read_skipped(out_dir: str | os.PathLike) -> dict[str, str]:
    """Clip id -> reason, from prepare's skipped.tsv (empty when there is none)."""
    path = pathlib.Path(out_dir) / SKIPPED_FILE
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", newline="") as file:
        return {clip_id(row[0]): row[1] if len(row) > 1 else "" for row in csv.reader(file, delimiter="\t") if row}


def prepared_labels(out_dir: str | os.PathLike) -> list[str]:
    """dataset.json's classes, checked against the label file; a mismatch names both files."""
    classes = list(read_info(out_dir)["classes"])
    label_path = os.path.join(out_dir, LABEL_FILE)
    names = [label.display_name for label in read_label_file(label_path)]
    if names != classes:
        raise ValueError(f"{label_path!r} lists {len(names)} classes that differ from dataset.json's {len(classes)}; "
                         "rerun `python -m custom prepare`")
    return classes


def widen(stored_classes: int, classes: int) -> StoredTargets:
    """Stored packed rows of `stored_classes` classes as packed rows of `classes` (the extra ones never set)."""
    def to_bits(rows: np.ndarray) -> np.ndarray:
        bits = np.unpackbits(rows, axis=1, count=stored_classes)
        return np.packbits(np.pad(bits, ((0, 0), (0, classes - stored_classes))), axis=1)

    return StoredTargets(PackedBitsTargets(stored_classes), to_bits if classes > stored_classes else None)


def clip_list(clips: Sequence[Listed], index_of: dict[str, int], source: str) -> ClipList:
    """Listed clips as ids and packed multi-hot labels."""
    labels = np.zeros((len(clips), len(index_of)), dtype=bool)
    for row, clip in enumerate(clips):
        labels[row, [index_of[label] for label in clip.labels]] = True
    return ClipList(np.array([clip.id.encode("utf-8") for clip in clips], dtype=np.bytes_),
                    np.packbits(labels, axis=1), source)


def stored_ids(files: dict[str, str | None]) -> dict[str, set[str]]:
    """Per split, the ids its file stores (none without a file)."""
    return {split: {clip.decode("utf-8") for clip in file_clip_ids(path).tolist()} if path else set()
            for split, path in files.items()}


def split_lists(listing: Sequence[Listed], stored: dict[str, set[str]], index_of: dict[str, int],
                source: str) -> tuple[dict[str, ClipList], list[Listed]]:
    """({split: its ClipList}, the listed clips of no known split): a clip's split is the list's, else every
    split whose file stores it."""
    if listing and listing[0].split is not None:
        return {split: clip_list([clip for clip in listing if clip.split == split], index_of, source)
                for split in stored}, []
    lists = {split: clip_list([clip for clip in listing if clip.id in ids], index_of, source)
             for split, ids in stored.items()}
    anywhere = set().union(*stored.values())
    return lists, [clip for clip in listing if clip.id not in anywhere]


def split_overlap(stored: dict[str, set[str]]) -> list[str]:
    """Ids stored in more than one split's file (a clip trained on and scored)."""
    counts = Counter(clip for ids in stored.values() for clip in ids)
    return sorted(clip for clip, count in counts.items() if count > 1)


def missing_reasons(lists: dict[str, ClipList], stored: dict[str, set[str]], skipped: dict[str, str]) -> dict:
    """Per split, prepare's reasons (skipped.tsv) for its missing clips, counted."""
    reasons = {}
    for split, listed in lists.items():
        missing = {clip.decode("utf-8") for clip in listed.ids.tolist()} - stored[split]
        reasons[split] = dict(sorted(Counter(skipped.get(clip, "not in skipped.tsv") for clip in missing).items()))
    return reasons


def build(args) -> dict:
    """Read the list and the prepared folder, write the report (run_report) and the unassigned clips."""
    listing = read_listing(args.audio_dir, args.csv)
    stored_classes, info = prepared_labels(args.hdf5), read_info(args.hdf5)
    unknown = sorted({label for clip in listing for label in clip.labels} - set(stored_classes))
    classes = stored_classes + unknown
    index_of = {label: index for index, label in enumerate(classes)}
    files = {split: os.path.join(args.hdf5, file) for split, file in SPLIT_FILES.items()}
    files = {split: path if os.path.isfile(path) else None for split, path in files.items()}
    given = bool(listing) and listing[0].split is not None
    files = {split: path for split, path in files.items()
             if path or split in info["splits"] or (given and any(clip.split == split for clip in listing))}
    for path in filter(None, files.values()):
        validate_hdf5(path, len(stored_classes))  # another layout: an error naming the file, before any reading
    source = os.fspath(args.csv or args.audio_dir)
    stored = stored_ids(files)
    lists, unassigned = split_lists(listing, stored, index_of, source)
    skipped = read_skipped(args.hdf5)
    reasons = Counter(skipped.get(clip.id, "not in skipped.tsv") for clip in unassigned)
    extra = {"source": source, "split_from": "list" if given else "stored files",
             "unprepared_classes": unknown, "split_overlap": split_overlap(stored),
             "missing_reasons": missing_reasons(lists, stored, skipped),
             "unassigned": {"missing": len(unassigned), "file": "missing_unassigned_ids.txt",
                            "reasons": dict(sorted(reasons.items())),
                            "listed_positives": dict(sorted(Counter(label for clip in unassigned
                                                                    for label in clip.labels).items()))},
             "listed": len(listing)}
    labels = [Label(index, name, name) for index, name in enumerate(classes)]
    splits = {split: (lists[split], path) for split, path in files.items()}
    report = run_report(args, "custom", splits, labels, MIN_SECONDS, extra, widen(len(stored_classes), len(classes)))
    with open(os.path.join(args.out, "missing_unassigned_ids.txt"), "w", encoding="utf-8") as file:
        file.write("".join(f"{name}\n" for name in sorted(clip.id for clip in unassigned)))
    with open(os.path.join(args.out, "report.md"), "a", encoding="utf-8") as file:
        file.write(notes(report))
    if unassigned:
        print(f"{len(unassigned):,} listed clips stored in no split (split unknown, missing overall; "
              f"missing_unassigned_ids.txt): " + ", ".join(f"{count} {reason}" for reason, count in reasons.items()))
    return report


def notes(report: dict) -> str:
    """report.md's closing lines: where splits come from, unassigned clips, classes the copy lacks, overlaps."""
    lines = ["", f"Listed: {report['listed']:,} clips in {report['source']}; splits from the "
             f"{report['split_from']}."]
    for split, reasons in report["missing_reasons"].items():
        if reasons:
            lines.append(f"{split}: why prepare left its missing clips out (skipped.tsv): "
                         + ", ".join(f"{count:,} {reason}" for reason, count in reasons.items()) + ".")
    unassigned = report["unassigned"]
    if unassigned["missing"]:
        reasons = ", ".join(f"{count:,} {reason}" for reason, count in unassigned["reasons"].items())
        lines.append(f"{unassigned['missing']:,} listed clips are stored in no split file: prepare's split is unknown, "
                     f"so they are missing overall and counted in no split ({reasons}; ids in "
                     f"{unassigned['file']}).")
    if report["unprepared_classes"]:
        lines.append("Classes of the list the copy has none of: " + ", ".join(report["unprepared_classes"]) + ".")
    if report["split_overlap"]:
        lines.append(f"Clips stored in more than one split: {len(report['split_overlap']):,} (report.json "
                     "`split_overlap`).")
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report command's options (AUDIO_DIR, --hdf5, --csv and add_report_arguments')."""
    parser.add_argument("audio_dir", metavar="AUDIO_DIR", help="the audio folder given to prepare (one sub-folder "
                                                               "per class unless --csv is given)")
    parser.add_argument("--hdf5", required=True, help="the folder prepare wrote (its --out)")
    parser.add_argument("--csv", help="the filename,labels[,split] CSV given to prepare")
    add_report_arguments(parser)


def command(args) -> int:
    """Run the report; 0 when written, 2 (with the error on stderr) for unusable input."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        build(args)
    except (ValueError, FileNotFoundError) as error:  # PrepareError, HDF5FormatError: naming file and line
        sys.stderr.write(f"error: {error}\n")
        return EXIT_USAGE
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m custom.report ...` (the same as `python -m custom report ...`)."""
    parser = argparse.ArgumentParser(prog="python -m custom report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
