"""Prepare OpenMIC-2018 from its extracted release (https://zenodo.org/record/1432913, openmic-2018-v1.0.0.tgz).

The release folder holds `openmic-2018.npz` (sample_key, Y_true, Y_mask), `partitions/split01_train.csv`
and `split01_test.csv` (one sample key per line) and `audio/<3-char prefix>/<sample_key>.ogg`.
The audio is converted to 32 kHz mono mp3 (resumable), then packed into `openmic_train.csv_mp3.hdf`
and `openmic_test.csv_mp3.hdf` with 40-wide targets (20 labels + 20 mask). Clips without any known
label are left out.

    python -m openmic.prepare_scripts.create_h5pymp3_dataset --release-dir openmic-2018 --out-dir audioset_hdf5s/mp3
"""

from __future__ import annotations

import logging
import os
import pathlib

import numpy as np

from helpers.data.prepare import PackReport, convert_folder_to_mp3, pack_mp3_files, release_cli
from openmic.dataset import NUM_INSTRUMENTS, TARGET_CODEC, TEST_FILE, TRAIN_FILE

logger = logging.getLogger(__name__)

SPLITS = (("split01_train.csv", TRAIN_FILE), ("split01_test.csv", TEST_FILE))


def read_release_labels(npz_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """sample_key -> 40-wide target (Y_true, then Y_mask as 0/1)."""
    if not os.path.isfile(npz_path):
        raise FileNotFoundError(f"OpenMIC label file {os.fspath(npz_path)!r} does not exist")
    with np.load(npz_path, allow_pickle=True) as release:
        missing = [key for key in ("sample_key", "Y_true", "Y_mask") if key not in release.files]
        if missing:
            raise KeyError(f"{os.fspath(npz_path)!r} lacks array(s) {missing}")
        keys, y_true, y_mask = release["sample_key"], release["Y_true"], release["Y_mask"]
    if y_true.shape[1:] != (NUM_INSTRUMENTS,) or y_mask.shape != y_true.shape or len(keys) != len(y_true):
        raise ValueError(f"{os.fspath(npz_path)!r}: expected Y_true/Y_mask of shape (N, {NUM_INSTRUMENTS}) and N keys, "
                         f"got {y_true.shape}, {y_mask.shape}, {len(keys)} keys")
    targets = np.concatenate([y_true, y_mask.astype(np.float32)], axis=1).astype(np.float32)
    return {str(key): target for key, target in zip(keys, targets)}


def read_partition(csv_path: str | os.PathLike) -> list[str]:
    """The sample keys of a partition file (one per line)."""
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"OpenMIC partition file {os.fspath(csv_path)!r} does not exist")
    with open(csv_path, encoding="utf-8") as file:
        return [line.strip() for line in file if line.strip()]


def prepare_openmic(release_dir: str | os.PathLike, out_dir: str | os.PathLike, mp3_dir: str | os.PathLike | None = None,
                    workers: int | None = None) -> dict[str, PackReport]:
    """Convert and pack both partitions; returns a report per written file name."""
    release_dir = pathlib.Path(release_dir)
    mp3_dir = pathlib.Path(mp3_dir) if mp3_dir else release_dir / "mp3"
    labels = read_release_labels(release_dir / "openmic-2018.npz")
    convert_folder_to_mp3(release_dir / "audio", mp3_dir, workers=workers)
    mp3_files = {path.stem: str(path) for path in mp3_dir.rglob("*.mp3")}
    reports = {}
    for partition, file_name in SPLITS:
        keys = read_partition(release_dir / "partitions" / partition)
        unknown = [key for key in keys if key not in labels]
        if unknown:
            raise KeyError(f"{partition}: {len(unknown)} sample keys are not in openmic-2018.npz, e.g. {unknown[:3]}")
        labelled = [key for key in keys if labels[key][NUM_INSTRUMENTS:].any()]
        if len(labelled) < len(keys):
            logger.info("%s: leaving out %d clips without any known label", partition, len(keys) - len(labelled))
        clips = ((f"{key}.mp3", mp3_files.get(key, ""), labels[key]) for key in labelled)
        reports[file_name] = pack_mp3_files(os.path.join(out_dir, file_name), clips, TARGET_CODEC, total=len(labelled))
    return reports


def main(argv: list[str] | None = None) -> None:
    release_cli(argv, __doc__, "--release-dir", "extracted openmic-2018 folder (with openmic-2018.npz)",
                "folder for the two .hdf files", prepare_openmic)


if __name__ == "__main__":
    main()
