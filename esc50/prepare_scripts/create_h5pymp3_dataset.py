"""Prepare ESC-50 (https://github.com/karolpiczak/ESC-50) as one HDF5-mp3 file with folds.

Reads `meta/esc50.csv` (filename, fold, target, category, ...) and `audio/*.wav` from the ESC-50
folder, converts the audio to 32 kHz mono mp3 (resumable) and writes `esc50_mp3.hdf` (one-hot
targets of 50 classes plus a `fold` dataset) and `esc50_class_labels_indices.csv` (the category names).

    python -m esc50.prepare_scripts.create_h5pymp3_dataset --esc50-dir ESC-50-master --out-dir audioset_hdf5s/mp3
"""

from __future__ import annotations

import csv
import logging
import os
import pathlib

import numpy as np

from esc50.dataset import DATA_FILE, FOLD_KEY, NUM_CLASSES, NUM_FOLDS
from helpers.data import PackedBitsTargets, write_label_file
from helpers.data.prepare import PackReport, convert_folder_to_mp3, pack_mp3_files, release_cli
from helpers.data.processes import wait_for

META_COLUMNS = ("filename", "fold", "target", "category")
LABEL_FILE = "esc50_class_labels_indices.csv"
logger = logging.getLogger(__name__)


def read_meta(meta_csv: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of esc50.csv; errors name the file, line and value."""
    if not os.path.isfile(meta_csv):
        raise FileNotFoundError(f"ESC-50 meta file {os.fspath(meta_csv)!r} does not exist")
    with open(meta_csv, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = [column for column in META_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{os.fspath(meta_csv)!r} lacks column(s) {missing}")
        rows = list(reader)
    for line_number, row in enumerate(rows, start=2):
        if not (row["target"].isdigit() and int(row["target"]) < NUM_CLASSES):
            raise ValueError(f"{os.fspath(meta_csv)!r} line {line_number}: target {row['target']!r} not in 0..49")
        if not (row["fold"].isdigit() and 1 <= int(row["fold"]) <= NUM_FOLDS):
            raise ValueError(f"{os.fspath(meta_csv)!r} line {line_number}: fold {row['fold']!r} not in 1..5")
    return rows


def prepare_esc50(esc50_dir: str | os.PathLike | None, out_dir: str | os.PathLike,
                  mp3_dir: str | os.PathLike | None = None, workers: int | None = None,
                  meta_csv: str | os.PathLike | None = None, audio_dir: str | os.PathLike | None = None) -> PackReport:
    """Convert the ESC-50 release (`esc50_dir` with meta/esc50.csv and audio/, or upstream's `meta_csv` and
    `audio_dir`, e.g. its resampled audio_32k/) into `out_dir`/esc50_mp3.hdf; mp3s go to `mp3_dir`."""
    esc50_dir = pathlib.Path(esc50_dir) if esc50_dir else None
    meta_csv = pathlib.Path(meta_csv) if meta_csv else esc50_dir / "meta" / "esc50.csv"
    audio_dir = pathlib.Path(audio_dir) if audio_dir else esc50_dir / "audio"
    mp3_dir = pathlib.Path(mp3_dir) if mp3_dir else (esc50_dir or audio_dir.parent) / "mp3"
    rows = read_meta(meta_csv)
    convert_folder_to_mp3(audio_dir, mp3_dir, workers=workers)
    categories = {int(row["target"]): row["category"] for row in rows}
    names = [(categories.get(index, f"class {index}"),) * 2 for index in range(NUM_CLASSES)]
    os.makedirs(out_dir, exist_ok=True)
    write_label_file(os.path.join(out_dir, LABEL_FILE), names)

    def clips():
        for row in rows:
            target = np.zeros(NUM_CLASSES, dtype=np.float32)
            target[int(row["target"])] = 1
            mp3_name = pathlib.Path(row["filename"]).with_suffix(".mp3").name
            yield mp3_name, str(mp3_dir / mp3_name), target

    return pack_mp3_files(os.path.join(out_dir, DATA_FILE), clips(), PackedBitsTargets(NUM_CLASSES),
                          total=len(rows), extra_datasets={FOLD_KEY: [int(row["fold"]) for row in rows]})


def ensure_esc50_hdf5(esc50_hdf5: str | os.PathLike, meta_csv: str | os.PathLike, audio_path: str | os.PathLike,
                      timeout: float = 3600.0, poll_seconds: float = 1.0) -> str:
    """`esc50_hdf5`, converted once from upstream's layout (`meta_csv` + the wav files in `audio_path`) when it
    does not exist yet. Under DDP only LOCAL_RANK 0 converts; the other processes wait up to `timeout` s."""
    esc50_hdf5 = os.fspath(esc50_hdf5)
    if os.path.isfile(esc50_hdf5) or not os.path.isfile(meta_csv):
        return esc50_hdf5
    if int(os.environ.get("LOCAL_RANK", 0)) == 0:
        logger.info("%s does not exist: converting upstream's ESC-50 layout (%s, %s) into it once", esc50_hdf5,
                    meta_csv, audio_path)
        out_dir = os.path.dirname(esc50_hdf5) or "."
        prepare_esc50(None, out_dir, mp3_dir=os.path.join(out_dir, "esc50_clips"), meta_csv=meta_csv,
                      audio_dir=audio_path)
        return esc50_hdf5
    return wait_for(lambda: esc50_hdf5 if os.path.isfile(esc50_hdf5) else None, timeout, poll_seconds,
                    f"{esc50_hdf5} did not appear within {timeout:.0f} s; the process with LOCAL_RANK 0 converts "
                    f"{meta_csv} (did it fail?)")


def main(argv: list[str] | None = None) -> None:
    release_cli(argv, __doc__, "--esc50-dir", "ESC-50 folder with meta/esc50.csv and audio/",
                "folder for esc50_mp3.hdf and the label file",
                lambda *args: {DATA_FILE: prepare_esc50(*args)})


if __name__ == "__main__":
    main()
