"""AudioSet factories over a tiny demo dataset, and the demo generator's output."""

from helpers.data import DataOptions
import numpy as np
import pytest

from audioset.dataset import (AudioSetDataset, get_ft_cls_balanced_sample_weights, get_ft_weighted_sampler,
                              evaluation_set, preload_mp3, training_set)
from audioset.prepare_scripts.make_demo_dataset import class_bands, make_demo_dataset
from helpers.data import read_label_file, read_targets, PackedBitsTargets, validate_hdf5
from helpers.data.hdf5 import read_audio_names

CLASSES = 6


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return make_demo_dataset(out, n_train=12, n_eval=6, n_unbalanced=4, n_classes=CLASSES, clip_length=2.5, seed=3)


def test_demo_files_are_valid_and_every_class_occurs(demo):
    labels = read_label_file(demo["label_file"])
    assert len(labels) == CLASSES and len({label.display_name for label in labels}) == CLASSES
    for key, clips in (("balanced_train_hdf5", 12), ("unbalanced_train_hdf5", 4), ("eval_hdf5", 6)):
        assert validate_hdf5(demo[key], CLASSES) == clips
    for key in ("balanced_train_hdf5", "eval_hdf5"):
        targets = read_targets(demo[key], PackedBitsTargets(CLASSES))
        assert targets.sum(axis=0).min() >= 1
        assert set(targets.sum(axis=1)) <= {1.0, 2.0, 3.0}
    assert demo["balanced_train_hdf5"].endswith("mp3/balanced_train_segments_mp3.hdf")


def test_demo_is_deterministic_given_the_seed(demo, tmp_path):
    again = make_demo_dataset(tmp_path, n_train=12, n_eval=6, n_unbalanced=4, n_classes=CLASSES, clip_length=2.5,
                              seed=3)
    codec = PackedBitsTargets(CLASSES)
    np.testing.assert_array_equal(read_targets(again["eval_hdf5"], codec), read_targets(demo["eval_hdf5"], codec))
    assert read_audio_names(again["eval_hdf5"]) == read_audio_names(demo["eval_hdf5"])


def test_demo_class_bands_are_separated():
    bands = class_bands(10)
    assert all(high < next_low for (_, _, high), (next_low, _, _) in zip(bands, bands[1:]))
    assert bands[0][0] >= 150 and bands[-1][2] <= 11000


def test_single_label_demo_clip_has_its_energy_in_its_class_band(demo):
    dataset = AudioSetDataset(demo["eval_hdf5"], CLASSES, DataOptions(clip_length=2.5))
    bands = class_bands(CLASSES)
    checked = 0
    for index in range(len(dataset)):
        waveform, _, target = dataset[index]
        if target.sum() != 1:
            continue
        low, _, high = bands[int(target.argmax())]
        spectrum = np.abs(np.fft.rfft(waveform[0])) ** 2
        frequencies = np.fft.rfftfreq(waveform.shape[1], 1 / 32000)
        in_band = spectrum[(frequencies >= low * 0.9) & (frequencies <= high * 1.1)].sum()
        assert in_band / spectrum.sum() > 0.5
        checked += 1
    assert checked > 0


def test_full_training_set_concatenates_and_matches_the_weights(demo):
    options = DataOptions(clip_length=2.5, gain_augment=3, wavmix=True)
    training = training_set([demo["balanced_train_hdf5"], demo["unbalanced_train_hdf5"]], options, CLASSES)
    assert len(training) == 16
    waveform, name, target = training[13]
    assert waveform.shape == (1, 80000) and waveform.dtype == np.float32 and target.shape == (CLASSES,)
    weights = get_ft_cls_balanced_sample_weights(demo["balanced_train_hdf5"], demo["unbalanced_train_hdf5"],
                                                 classes_num=CLASSES, sample_weight_offset=0)
    assert weights.shape == (16,) and (weights > 0).all()
    sampler = get_ft_weighted_sampler(weights, epoch_len=10, sampler_replace=True, num_replicas=2, rank=1)
    assert len(sampler) == 5 and all(0 <= index < 16 for index in sampler)


def test_test_set_is_unaugmented_evaluation_data(demo):
    test_set = evaluation_set(demo["eval_hdf5"], DataOptions(clip_length=2.5), CLASSES)
    assert not test_set.training and test_set.augmenter is None
    np.testing.assert_array_equal(test_set[0][0], test_set[0][0])


def test_preload_reads_both_training_files_and_a_missing_file_is_named(demo, tmp_path):
    assert preload_mp3(demo["balanced_train_hdf5"], demo["unbalanced_train_hdf5"]) > 0
    with pytest.raises(FileNotFoundError, match="missing.hdf"):
        evaluation_set(str(tmp_path / "missing.hdf"), DataOptions())
