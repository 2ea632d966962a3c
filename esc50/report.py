"""The data report of an ESC-50 copy against the release's `meta/esc50.csv` (helpers.data.report does the work).

    python -m esc50.report --meta ESC-50-master/meta/esc50.csv --hdf5 DIR --out REPORT_DIR [--audio]

One split, `esc50` (every fold; the file is `esc50_mp3.hdf` in DIR or DIR/mp3). A clip's id is its file name
without the extension (`1-100032-A-0`); the classes are esc50.csv's `target` and `category`. The report also
gives `fold<k>_fingerprint`: the `eval_fingerprint` a run with `basedataset.fold=k` prints.
"""

from __future__ import annotations

import logging
import os

import h5py
import numpy as np

from esc50.dataset import DATA_FILE, NUM_CLASSES, NUM_FOLDS, read_folds
from esc50.prepare_scripts.create_h5pymp3_dataset import read_meta
from helpers.data import Label
from helpers.data.clip_ids import clip_ids, file_clip_ids, fingerprint
from helpers.data.report import ClipList, parse_report_arguments, report_parser, run_report, stored_file

logger = logging.getLogger(__name__)
MIN_SECONDS = 4.5  # ESC-50 clips are 5 s


def read_clip_list(meta_csv: str | os.PathLike) -> tuple[ClipList, list[Label]]:
    """esc50.csv as a `ClipList` (one-hot labels) and its 50 classes; a target that comes with two category
    names is a ValueError naming the file and line."""
    meta_csv = os.fspath(meta_csv)
    rows = read_meta(meta_csv)
    names: dict[int, str] = {}
    for line_number, row in enumerate(rows, start=2):
        target, category = int(row["target"]), row["category"].strip()
        if names.setdefault(target, category) != category:
            raise ValueError(f"{meta_csv!r} line {line_number}: target {target} is {category!r} here but "
                             f"{names[target]!r} before")
    labels = np.zeros((len(rows), NUM_CLASSES), dtype=bool)
    labels[np.arange(len(rows)), [int(row["target"]) for row in rows]] = True
    classes = [Label(index, names.get(index, f"class {index}"), names.get(index, f"class {index}"))
               for index in range(NUM_CLASSES)]
    return ClipList(clip_ids(row["filename"] for row in rows), np.packbits(labels, axis=1), meta_csv), classes


def fold_fingerprints(hdf5_file: str) -> dict[str, str]:
    """`fold<k>_fingerprint` of the stored clips of each fold (what a run tests on with fold=k)."""
    ids, folds = file_clip_ids(hdf5_file), read_folds(hdf5_file)
    return {f"fold{fold}_fingerprint": fingerprint(ids[folds == fold]) for fold in range(1, NUM_FOLDS + 1)}


def main(argv: list[str] | None = None) -> dict:
    args = parse_report_arguments(report_parser(__doc__, "--meta", "the release's meta/esc50.csv",
                                                "folder holding esc50_mp3.hdf"), argv)
    listed, labels = read_clip_list(args.meta)
    path = stored_file(args.hdf5, DATA_FILE)
    extra = None
    if os.path.isfile(path):
        with h5py.File(path, "r") as file:
            has_folds = "fold" in file
        extra = fold_fingerprints(path) if has_folds else None
    return run_report(args, "esc50", {"esc50": (listed, path)}, labels, MIN_SECONDS, extra)


if __name__ == "__main__":
    main()
