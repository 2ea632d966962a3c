"""Your own data as `python -m custom prepare` writes it (custom/README.md): one folder holding
`train_mp3.hdf`, `valid_mp3.hdf` and (optionally) `eval_mp3.hdf`, the label file `class_labels_indices.csv`
and `dataset.json` (classes, label mode, channels, clips per split).

Clips have any length and are stored at 32 kHz, mono or stereo. Training takes `clip_length`-second crops
(at a random offset with `random_crop`; shorter clips are zero-padded); evaluation keeps whole clips
(`clip_length=None`, batch size 1) unless given a length. Targets are multi-hot (one-hot for single-label
data) packed bits.
"""

from __future__ import annotations

import json
import os
from types import MappingProxyType

from torch.utils.data import Dataset

from helpers.data import DataOptions, HDF5AudioDataset, make_evaluation_set, make_training_set

SPLIT_FILES = MappingProxyType({"train": "train_mp3.hdf", "valid": "valid_mp3.hdf", "eval": "eval_mp3.hdf"})
LABEL_FILE = "class_labels_indices.csv"
INFO_FILE = "dataset.json"
INFO_KEYS = ("classes", "multi_label", "channels", "sample_rate", "splits")


def read_info(base_dir: str | os.PathLike) -> dict:
    """The `dataset.json` of a prepared folder; errors name the file and the missing keys."""
    path = os.path.join(base_dir, INFO_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path!r} does not exist: prepare the folder with `python -m custom prepare`")
    with open(path, encoding="utf-8") as file:
        try:
            info = json.load(file)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path!r} is not valid JSON: {error}") from error
    missing = [key for key in INFO_KEYS if not isinstance(info, dict) or key not in info]
    if missing:
        raise ValueError(f"{path!r} lacks key(s) {missing}; rerun `python -m custom prepare`")
    return info


def label_space(base_dir: str | os.PathLike) -> tuple[int | None, bool | None]:
    """(number of classes, multi-label?) of a prepared folder, or (None, None) when it is not prepared yet."""
    try:
        info = read_info(base_dir)
    except (OSError, ValueError):
        return None, None
    return len(info["classes"]), bool(info["multi_label"])


def prepared_channels(base_dir: str | os.PathLike) -> int:
    """The channels a prepared folder's mp3s keep (1 or 2, `prepare --channels`); 1 when it is not prepared yet."""
    try:
        return int(read_info(base_dir)["channels"])
    except (OSError, ValueError):
        return 1




def prepared_value(base_dir: str | os.PathLike, key: str, missing):
    """`dataset.json`'s `key` of a prepared folder (`missing` when it is not prepared or lacks the key)."""
    try:
        return read_info(base_dir).get(key, missing)
    except (OSError, ValueError):
        return missing


def training_set(path: str, num_classes: int, options: DataOptions) -> Dataset:
    """`options.clip_length`-second crops of the training clips (random offsets drawn from (seed, epoch, clip)
    with `options.random_crop`), augmented as `options` say (`options.frame_seconds`: frame targets from the
    clips' strong labels, `prepare --events`)."""
    return make_training_set([path], num_classes, options)


def evaluation_set(path: str, num_classes: int, options: DataOptions) -> HDF5AudioDataset:
    """Whole clips (`options.clip_length=None`: use batch size 1) or their first `clip_length` seconds; failed
    clips come back as None (use `collate_drop_failed`)."""
    return make_evaluation_set(path, num_classes, options)


def config_problems(config, training: bool) -> list[str]:
    """What an ex_custom.py config cannot do with this folder (read from the resolved config)."""
    dataset, problems = config["basedataset"], []
    if dataset["num_of_classes"] is None and config["models"]["net"]["n_classes"] is None:
        problems.append(f"basedataset.base_dir: {dataset['base_dir']!r} holds no prepared dataset "
                        f"({INFO_FILE}); run `python -m custom prepare AUDIO_DIR --out {dataset['base_dir']}`")
    if dataset["eval_clip_length"] is None and any(config["datasets"][split]["batch_size"] != 1
                                                   for split in ("valid", "eval")):
        problems.append("datasets.valid/eval.batch_size: whole clips of any length (basedataset.eval_clip_length="
                        "None) need batch size 1; allowed: 1, or set eval_clip_length")
    return problems
