"""helpers.data.options: the decoding and augmentation settings as one immutable, picklable object."""
import dataclasses
import pickle

import numpy as np

import pytest

from torch.utils.data import ConcatDataset

from helpers.data import DataOptions, HDF5AudioDataset, RollDataset, WaveformMixupDataset, make_training_set
from helpers.data.seeding import set_dataset_epoch
from tests.helpers.data.clips import write_tone_hdf5


def test_options_are_immutable_down_to_their_dicts():
    options = DataOptions(roll_conf={"axis": 1, "shift_range": 50}, wavmix={"rate": 0.5})
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.clip_length = 5
    with pytest.raises(TypeError, match="read-only"):
        options.roll_conf["axis"] = 0
    with pytest.raises(TypeError, match="read-only"):
        options.wavmix.update(rate=1.0)


@pytest.mark.parametrize("field, value", [("sample_rate", 0), ("clip_length", -1), ("ir_augment", 2),
                                          ("channels", 0)])
def test_a_bad_value_is_refused_naming_the_option(field, value):
    with pytest.raises(ValueError, match=f"data option {field}={value!r}; allowed"):
        DataOptions(**{field: value})


def test_from_config_takes_the_options_of_a_basedataset_config_and_nothing_else():
    basedataset = {"base_dir": "x/", "eval_hdf5": "x/e.hdf", "num_of_classes": 5, "clip_length": 5, "wavmix": 0,
                   "gain_augment": 0, "ir_augment": 0.0, "roll": False, "roll_conf": {"axis": 1}, "fold": 2}
    options = DataOptions.from_config(basedataset, seed=3)
    assert (options.clip_length, options.wavmix, options.augments, options.seed, options.roll) == (5, 0, False, 3, False)
    assert not DataOptions().replace(gain_augment=0).augments and DataOptions(ir_augment=0.5, ir_path="irs/", gain_augment=0).augments


def test_evaluation_options_keep_decoding_and_drop_augmentation_and_teachers():
    options = DataOptions(sample_rate=16000, clip_length=None, channels=2, in_mem=True, gain_augment=7,
                          wavmix=1, random_crop=True, teachers=(None,)).for_evaluation()
    assert (options.sample_rate, options.clip_length, options.channels, options.in_mem) == (16000, None, 2, True)
    assert not options.augments and not options.roll and not options.wavmix and not options.random_crop
    assert options.teachers is None


def test_options_survive_pickling_as_dataloader_workers_receive_them():
    options = DataOptions(roll_conf={"axis": 1, "shift": None}, wavmix={"beta": 2.0}, seed=7)
    again = pickle.loads(pickle.dumps(options))
    assert again == options and again.roll_conf == {"axis": 1, "shift": None}
    with pytest.raises(TypeError):
        again.roll_conf["axis"] = 2


def test_impulse_responses_need_a_folder():
    with pytest.raises(ValueError, match="ir_path=None; allowed: a folder of impulse responses when ir_augment=0.5"):
        DataOptions(ir_augment=0.5)


def test_a_training_set_is_its_parts_seeded_by_file_then_rolled_and_mixed(tmp_path):
    """make_training_set(files, n, options) == its parts (seed + 1000 k), rolled (seed + 1), mixed (seed + 2)."""
    paths = [tmp_path / "first.hdf", tmp_path / "second.hdf"]
    for number, path in enumerate(paths):
        write_tone_hdf5(path, n_clips=4 - number, classes_num=4, seconds=0.5)
    options = DataOptions(sample_rate=16000, clip_length=0.25, gain_augment=6, random_crop=True,
                          roll_conf={"shift_range": 300}, wavmix=True, seed=5)
    built = make_training_set(paths, 4, options)
    parts = [HDF5AudioDataset(path, 4, options.replace(seed=5 + 1000 * number), augment=True)
             for number, path in enumerate(paths)]
    by_hand = WaveformMixupDataset(RollDataset(ConcatDataset(parts), shift_range=300, seed=6), seed=7)
    for epoch in (0, 3):
        set_dataset_epoch(built, epoch)
        set_dataset_epoch(by_hand, epoch)
        for index in range(len(built)):
            (waveform, name, target), (expected, expected_name, expected_target) = built[index], by_hand[index]
            np.testing.assert_array_equal(waveform, expected)
            assert name == expected_name
            np.testing.assert_array_equal(target, expected_target)
    assert pickle.loads(pickle.dumps(built))[2][1] == built[2][1]  # what DataLoader workers receive
