"""FSD50K specifics: 200 classes; training (dev minus validation), validation and evaluation files.

Clips have variable length (0.3-30 s). Training cuts the first `clip_length` seconds (as upstream) or,
with `random_crop`, `clip_length` seconds at a random offset; validation/evaluation cut from the start,
or keep every clip whole with `variable_eval=True` (then use batch size 1).
"""

from __future__ import annotations

from torch.utils.data import Dataset

from helpers.data import DataOptions, HDF5AudioDataset, make_evaluation_set, make_training_set

NUM_CLASSES = 200
TRAIN_FILE = "FSD50K.train_mp3.hdf"
VALID_FILE = "FSD50K.val_mp3.hdf"
EVAL_FILE = "FSD50K.eval_mp3.hdf"


def training_set(path: str, options: DataOptions) -> Dataset:
    """Each clip's first `clip_length` seconds (as upstream), or with `options.random_crop` a crop at a random
    offset drawn from (seed, epoch, clip), augmented as `options` say."""
    return make_training_set([path], NUM_CLASSES, options)


def evaluation_set(path: str, options: DataOptions) -> HDF5AudioDataset:
    """The validation or evaluation set (`options.clip_length=None`: whole clips, use batch size 1); failed
    clips come back as None (use `collate_drop_failed`)."""
    return make_evaluation_set(path, NUM_CLASSES, options)
