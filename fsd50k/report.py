"""The data report of an FSD50K copy against the release's ground truth (helpers.data.report does the work).

    python -m fsd50k.report --ground-truth FSD50K/FSD50K.ground_truth --hdf5 DIR --out REPORT_DIR [--audio]

Splits `train` and `valid` (dev.csv's `split` train / val) and `eval` (eval.csv), against `FSD50K.train_mp3.hdf`,
`FSD50K.val_mp3.hdf` and `FSD50K.eval_mp3.hdf` in DIR or DIR/mp3; labels are vocabulary.csv's names. A clip's
id is its `fname` (the stored `<fname>.mp3` without the extension). The report's `valid_fingerprint` and
`eval_fingerprint` are those the runs print.
"""

from __future__ import annotations

import os

import numpy as np

from fsd50k.dataset import EVAL_FILE, NUM_CLASSES, TRAIN_FILE, VALID_FILE
from fsd50k.prepare_scripts.create_h5pymp3_dataset import read_ground_truth, read_vocabulary
from helpers.data import Label
from helpers.data.clip_ids import clip_ids
from helpers.data.report import ClipList, parse_report_arguments, report_parser, run_report, stored_file

MIN_SECONDS = 0.3  # FSD50K clips last 0.3 to 30 s


def clip_list(path: str, rows: list[dict[str, str]], line_numbers: list[int], index_of: dict[str, int]) -> ClipList:
    """Rows of dev.csv / eval.csv as a `ClipList`; a label outside the vocabulary is a ValueError naming the file
    and line."""
    labels = np.zeros((len(rows), NUM_CLASSES), dtype=bool)
    for position, (row, line_number) in enumerate(zip(rows, line_numbers)):
        for name in row["labels"].split(","):
            if name.strip() not in index_of:
                raise ValueError(f"{path!r} line {line_number}: label {name.strip()!r} is not in vocabulary.csv")
            labels[position, index_of[name.strip()]] = True
    return ClipList(clip_ids(row["fname"] for row in rows), np.packbits(labels, axis=1), path)


def read_splits(ground_truth: str) -> tuple[dict[str, ClipList], list[Label]]:
    """The train, valid and eval lists of a `FSD50K.ground_truth` folder and the 200 classes."""
    vocabulary = read_vocabulary(os.path.join(ground_truth, "vocabulary.csv"))
    index_of = {name: index for index, (name, _) in enumerate(vocabulary)}
    dev_path, eval_path = os.path.join(ground_truth, "dev.csv"), os.path.join(ground_truth, "eval.csv")
    dev, evaluation = read_ground_truth(dev_path), read_ground_truth(eval_path)
    if dev and "split" not in dev[0]:
        raise ValueError(f"{dev_path!r} lacks the `split` column (train/val)")
    lists = {}
    for name, split in (("train", "train"), ("valid", "val")):
        lines = [number for number, row in enumerate(dev, start=2) if row["split"] == split]
        lists[name] = clip_list(dev_path, [dev[number - 2] for number in lines], lines, index_of)
    lists["eval"] = clip_list(eval_path, evaluation, list(range(2, len(evaluation) + 2)), index_of)
    labels = [Label(index, mid, name) for index, (name, mid) in enumerate(vocabulary)]
    return lists, labels


def main(argv: list[str] | None = None) -> dict:
    args = parse_report_arguments(report_parser(__doc__, "--ground-truth", "the release's FSD50K.ground_truth folder",
                                                "folder of the three .hdf files"), argv)
    lists, labels = read_splits(args.ground_truth)
    files = {"train": TRAIN_FILE, "valid": VALID_FILE, "eval": EVAL_FILE}
    splits = {name: (listed, stored_file(args.hdf5, files[name])) for name, listed in lists.items()}
    return run_report(args, "fsd50k", splits, labels, MIN_SECONDS)


if __name__ == "__main__":
    main()
