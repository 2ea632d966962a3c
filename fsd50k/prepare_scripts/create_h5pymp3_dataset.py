"""Prepare FSD50K (https://zenodo.org/record/4060432) as train/val/eval HDF5-mp3 files.

Reads `FSD50K.ground_truth/vocabulary.csv` (no header: index, label name, mid), `dev.csv`
(fname, labels, mids, split with train/val) and `eval.csv` (fname, labels, mids), converts
`FSD50K.dev_audio/` and `FSD50K.eval_audio/` to 32 kHz mono mp3 (resumable) and writes
`FSD50K.train_mp3.hdf`, `FSD50K.val_mp3.hdf`, `FSD50K.eval_mp3.hdf` and `fsd50k_class_labels_indices.csv`.

    python -m fsd50k.prepare_scripts.create_h5pymp3_dataset --fsd50k-dir FSD50K --out-dir audioset_hdf5s/mp3
"""

from __future__ import annotations

import csv
import os
import pathlib

from fsd50k.dataset import EVAL_FILE, NUM_CLASSES, TRAIN_FILE, VALID_FILE
from helpers.data import PackedBitsTargets, write_label_file
from helpers.data.labels import multi_hot
from helpers.data.prepare import PackReport, convert_folder_to_mp3, pack_mp3_files, release_cli

LABEL_FILE = "fsd50k_class_labels_indices.csv"


def read_vocabulary(path: str | os.PathLike) -> list[tuple[str, str]]:
    """(label name, mid) in class-index order."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"FSD50K vocabulary {os.fspath(path)!r} does not exist")
    with open(path, newline="", encoding="utf-8") as file:
        rows = [row for row in csv.reader(file) if row]
    vocabulary = []
    for line_number, row in enumerate(rows, start=1):
        if len(row) != 3 or not row[0].isdigit() or int(row[0]) != len(vocabulary):
            raise ValueError(f"{os.fspath(path)!r} line {line_number}: expected `{len(vocabulary)},name,mid`, got {row}")
        vocabulary.append((row[1], row[2]))
    if len(vocabulary) != NUM_CLASSES:
        raise ValueError(f"{os.fspath(path)!r} has {len(vocabulary)} classes, FSD50K has {NUM_CLASSES}")
    return vocabulary


def read_ground_truth(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of dev.csv / eval.csv."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"FSD50K ground truth {os.fspath(path)!r} does not exist")
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = [column for column in ("fname", "labels") if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{os.fspath(path)!r} lacks column(s) {missing}")
        return list(reader)


def prepare_fsd50k(fsd50k_dir: str | os.PathLike, out_dir: str | os.PathLike,
                   mp3_dir: str | os.PathLike | None = None, workers: int | None = None) -> dict[str, PackReport]:
    fsd50k_dir = pathlib.Path(fsd50k_dir)
    mp3_dir = pathlib.Path(mp3_dir) if mp3_dir else fsd50k_dir / "mp3"
    truth = fsd50k_dir / "FSD50K.ground_truth"
    vocabulary = read_vocabulary(truth / "vocabulary.csv")
    index_of = {name: index for index, (name, _) in enumerate(vocabulary)}
    dev, evaluation = read_ground_truth(truth / "dev.csv"), read_ground_truth(truth / "eval.csv")
    if dev and "split" not in dev[0]:
        raise ValueError(f"{str(truth / 'dev.csv')!r} lacks the `split` column (train/val)")
    for folder in ("FSD50K.dev_audio", "FSD50K.eval_audio"):
        convert_folder_to_mp3(fsd50k_dir / folder, mp3_dir / folder, workers=workers)
    os.makedirs(out_dir, exist_ok=True)
    write_label_file(os.path.join(out_dir, LABEL_FILE), [(mid, name) for name, mid in vocabulary])
    splits = [(TRAIN_FILE, [row for row in dev if row["split"] == "train"], "FSD50K.dev_audio"),
              (VALID_FILE, [row for row in dev if row["split"] == "val"], "FSD50K.dev_audio"),
              (EVAL_FILE, evaluation, "FSD50K.eval_audio")]
    reports = {}
    for file_name, rows, folder in splits:
        def clips(rows=rows, folder=folder):
            for row in rows:
                target = multi_hot(row["labels"].split(","), index_of, NUM_CLASSES, f"clip {row['fname']}",
                                   "vocabulary.csv")
                yield f"{row['fname']}.mp3", str(mp3_dir / folder / f"{row['fname']}.mp3"), target

        reports[file_name] = pack_mp3_files(os.path.join(out_dir, file_name), clips(),
                                            PackedBitsTargets(NUM_CLASSES), total=len(rows))
    return reports


def main(argv: list[str] | None = None) -> None:
    release_cli(argv, __doc__, "--fsd50k-dir", "FSD50K folder with FSD50K.ground_truth/ and audio",
                "folder for the three .hdf files and the label file", prepare_fsd50k)


if __name__ == "__main__":
    main()
