"""FSD50K specifics: 200 classes; training (dev minus validation), validation and evaluation files.

Clips have variable length (0.3-30 s). Training cuts the first `clip_length` seconds (as upstream) or,
with `random_crop`, `clip_length` seconds at a random offset; validation/evaluation cut from the start,
or keep every clip whole with `variable_eval=True` (then use batch size 1).
"""

from __future__ import annotations

import os

from torch.utils.data import Dataset

from helpers.data import HDF5AudioDataset, make_evaluation_set, make_training_set

NUM_CLASSES = 200
TRAIN_FILE = "FSD50K.train_mp3.hdf"
VALID_FILE = "FSD50K.val_mp3.hdf"
EVAL_FILE = "FSD50K.eval_mp3.hdf"


def hdf5_paths(base_dir: str = "audioset_hdf5s/") -> dict[str, str]:
    """The three file paths under `base_dir/mp3/`, keyed by their config names."""
    return {"balanced_train_hdf5": os.path.join(base_dir, "mp3", TRAIN_FILE),
            "valid_hdf5": os.path.join(base_dir, "mp3", VALID_FILE),
            "eval_hdf5": os.path.join(base_dir, "mp3", EVAL_FILE)}


def get_training_set(balanced_train_hdf5: str, roll: bool = True, roll_conf: dict | None = None,
                     wavmix: bool | dict = False, clip_length: float = 10, random_crop: bool = False,
                     **options) -> Dataset:
    """Training set of each clip's first `clip_length` seconds (as upstream), or with `random_crop` a crop at
    a random offset drawn from (seed, epoch, clip), augmented. options: sample_rate, gain_augment,
    ir_augment, ir_path, cut_irs_offset, in_mem, seed."""
    return make_training_set([balanced_train_hdf5], NUM_CLASSES, roll=roll, roll_conf=roll_conf, wavmix=wavmix,
                             clip_length=clip_length, random_crop=random_crop, **options)


def _evaluation_set(hdf5_file: str, variable_eval: bool, sample_rate: int, clip_length: float,
                    in_mem: bool) -> HDF5AudioDataset:
    return make_evaluation_set(hdf5_file, NUM_CLASSES, sample_rate=sample_rate,
                               clip_length=None if variable_eval else clip_length, in_mem=in_mem)


def get_valid_set(valid_hdf5: str, variable_eval: bool = False, sample_rate: int = 32000, clip_length: float = 10,
                  in_mem: bool = False) -> HDF5AudioDataset:
    """Validation set; failed clips come back as None (use `collate_drop_failed`)."""
    return _evaluation_set(valid_hdf5, variable_eval, sample_rate, clip_length, in_mem)


def get_eval_set(eval_hdf5: str, variable_eval: bool = False, sample_rate: int = 32000, clip_length: float = 10,
                 in_mem: bool = False) -> HDF5AudioDataset:
    """Evaluation set; failed clips come back as None (use `collate_drop_failed`)."""
    return _evaluation_set(eval_hdf5, variable_eval, sample_rate, clip_length, in_mem)
