"""The data report of an AudioSet copy against Google's segment lists (helpers.data.report does the work).

    python -m audioset.report --segments DIR --hdf5 DIR --out REPORT_DIR [--audio]

`--segments` holds `balanced_train_segments.csv`, `unbalanced_train_segments.csv` and `eval_segments.csv`
(Google's format: `#` comment lines, then `YTID, start_seconds, end_seconds, "mid,mid,..."`; a list that is
not there is skipped); `--hdf5` holds the HDF5-mp3 files (`balanced_train_segments_mp3.hdf`, ...), directly or
in its `mp3/`. A stored clip's YouTube id comes from its `audio_name` (`helpers.data.clip_ids`). The labels'
MIDs map to classes with `--labels` (default `metadata/audioset_class_labels_indices.csv`).
"""

from __future__ import annotations

import csv
import logging
import os

import numpy as np

from audioset.dataset import BALANCED_TRAIN_FILE, EVAL_FILE, UNBALANCED_TRAIN_FILE
from helpers.data import read_label_file
from helpers.data.labels import mid_to_index
from helpers.data.report import CHUNK_ROWS, ClipList, parse_report_arguments, report_parser, run_report, stored_file

logger = logging.getLogger(__name__)

DEFAULT_LABEL_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "metadata",
                                  "audioset_class_labels_indices.csv")
# split: (Google's list, this project's HDF5 file)
SPLITS = {"balanced_train": ("balanced_train_segments.csv", BALANCED_TRAIN_FILE),
          "unbalanced_train": ("unbalanced_train_segments.csv", UNBALANCED_TRAIN_FILE),
          "eval": ("eval_segments.csv", EVAL_FILE)}
MIN_SECONDS = 9.0  # AudioSet segments are 10 s; many real clips end a little early


def read_segment_list(path: str | os.PathLike, index_of: dict[str, int], classes_num: int,
                      chunk_rows: int = CHUNK_ROWS) -> ClipList:
    """A segment CSV as a `ClipList` (YouTube ids, packed labels), read in chunks of rows into arrays sized by
    a first pass that counts the rows (so the labels are held once).

    Raises FileNotFoundError, or ValueError naming the file and line of a row without 4 columns, with an
    empty id, start/end that are not numbers, or a MID that is not in the label file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"segment list {path!r} does not exist")
    with open(path, encoding="utf-8") as file:
        rows = sum(1 for line in file if line.strip() and not line.startswith("#"))
    packed = np.zeros((rows, (classes_num + 7) // 8), dtype=np.uint8)
    id_parts, done = [], 0
    ids, label_rows, label_columns = [], [], []

    def flush():
        nonlocal done
        labels = np.zeros((len(ids), classes_num), dtype=bool)
        labels[label_rows, label_columns] = True
        packed[done:done + len(ids)] = np.packbits(labels, axis=1)
        id_parts.append(np.array(ids, dtype=np.bytes_))
        done += len(ids)
        ids.clear(), label_rows.clear(), label_columns.clear()

    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.reader(file, skipinitialspace=True)
        for row in reader:
            if not row or row[0].startswith("#"):
                continue
            where = f"segment list {path!r} line {reader.line_num}"
            if len(row) != 4:
                raise ValueError(f"{where}: expected 4 columns (YTID, start_seconds, end_seconds, positive_labels), "
                                 f"found {len(row)}: {row}")
            ytid = row[0].strip()
            if not ytid:
                raise ValueError(f"{where}: empty YTID")
            try:
                float(row[1]), float(row[2])
            except ValueError:
                raise ValueError(f"{where}: start/end seconds are not numbers: {row[1:3]}") from None
            for mid in row[3].split(","):
                mid = mid.strip()
                if mid:
                    if mid not in index_of:
                        raise ValueError(f"{where}: label {mid!r} is not in the label file")
                    label_rows.append(len(ids))
                    label_columns.append(index_of[mid])
            ids.append(ytid.encode("utf-8"))
            if len(ids) == chunk_rows:
                flush()
    flush()
    if done != rows:
        raise ValueError(f"segment list {path!r} changed while it was read ({rows} rows, then {done})")
    return ClipList(np.concatenate(id_parts), packed, path)


def main(argv: list[str] | None = None) -> dict:
    parser = report_parser(__doc__, "--segments", "folder of Google's segment CSVs", "folder of the HDF5-mp3 files")
    parser.add_argument("--labels", default=DEFAULT_LABEL_FILE, help="label file (index,mid,display_name)")
    args = parse_report_arguments(parser, argv)
    labels = read_label_file(args.labels)
    index_of = mid_to_index(labels)
    splits = {}
    for name, (list_name, file_name) in SPLITS.items():
        list_path = os.path.join(args.segments, list_name)
        if not os.path.isfile(list_path):
            logger.warning("no %s in %s: split %s not reported", list_name, args.segments, name)
            continue
        splits[name] = (read_segment_list(list_path, index_of, len(labels)), stored_file(args.hdf5, file_name))
    if not splits:
        raise FileNotFoundError(f"{args.segments!r} holds none of {', '.join(entry[0] for entry in SPLITS.values())}")
    return run_report(args, "audioset", splits, labels, MIN_SECONDS)


if __name__ == "__main__":
    main()
