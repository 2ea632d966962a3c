"""OpenMIC: preparation from a miniature release, 40-wide label+mask targets, mask-aware mixup."""

import numpy as np
import pytest
import torch

from helpers.data import encode_audio, validate_hdf5
from helpers.data import set_dataset_epoch
from helpers.data import DataOptions
from openmic.dataset import (TARGET_CODEC, evaluation_set, training_set, mix_openmic_targets,
                             split_labels_and_mask)
from openmic.prepare_scripts.create_h5pymp3_dataset import prepare_openmic
from tests.helpers.data.clips import tone

KEYS = ["000046_3840", "000135_483840", "000139_119040", "000141_153600"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    release = tmp_path_factory.mktemp("openmic-2018")
    y_true = np.zeros((4, 20), np.float32)
    y_mask = np.zeros((4, 20), bool)
    y_true[0, 3], y_mask[0, [3, 5]] = 0.8, True
    y_true[1, 0], y_mask[1, 0] = 1.0, True
    y_true[2, 7], y_mask[2, 7] = 0.3, True
    # clip 3 has no known label and is left out
    np.savez(release / "openmic-2018.npz", sample_key=np.array(KEYS), Y_true=y_true, Y_mask=y_mask)
    (release / "partitions").mkdir()
    (release / "partitions" / "split01_train.csv").write_text("\n".join([KEYS[0], KEYS[1], KEYS[3]]) + "\n")
    (release / "partitions" / "split01_test.csv").write_text(KEYS[2] + "\n")
    for number, key in enumerate(KEYS):
        folder = release / "audio" / key[:3]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{key}.ogg").write_bytes(encode_audio(tone(300.0 + 100 * number, 1.0, 48000), 48000, "ogg"))
    out = tmp_path_factory.mktemp("hdf")
    reports = prepare_openmic(release, out, workers=1)
    return out, reports, y_true, y_mask


def test_prepared_files_hold_labels_and_masks(prepared):
    out, reports, y_true, y_mask = prepared
    assert reports["openmic_train.csv_mp3.hdf"].written == 2 and reports["openmic_test.csv_mp3.hdf"].written == 1
    assert validate_hdf5(out / "openmic_train.csv_mp3.hdf", 40, TARGET_CODEC) == 2
    test_set = evaluation_set(str(out / "openmic_test.csv_mp3.hdf"), DataOptions(clip_length=1))
    waveform, name, target = test_set[0]
    assert waveform.shape == (1, 32000) and name == f"{KEYS[2]}.mp3"
    labels, mask = split_labels_and_mask(target)
    np.testing.assert_allclose(labels, y_true[2])
    np.testing.assert_array_equal(mask, y_mask[2])


def test_known_label_wavmix_keeps_a_binary_mask_and_zero_unknown_labels(prepared):
    out = prepared[0]
    training = training_set(str(out / "openmic_train.csv_mp3.hdf"), DataOptions(wavmix={"rate": 1.0}, clip_length=1),
                            known_label_mixup=True)
    for index in range(2):
        waveform, _, target = training[index]
        assert waveform.shape == (1, 32000) and target.shape == (40,)
        labels, mask = split_labels_and_mask(target)
        assert set(np.unique(mask)) <= {0.0, 1.0} and (labels[mask == 0] == 0).all()


def test_default_wavmix_mixes_labels_and_mask_linearly_as_upstream(prepared):
    path = str(prepared[0] / "openmic_train.csv_mp3.hdf")
    plain = training_set(path, DataOptions(wavmix=False, clip_length=1, gain_augment=0, roll=False))
    mixed = training_set(path, DataOptions(wavmix={"rate": 1.0}, clip_length=1, gain_augment=0, roll=False))
    targets = [plain[index][2] for index in range(2)]
    fractional_masks = 0
    for epoch in range(6):
        set_dataset_epoch(mixed, epoch)
        for index in range(2):
            target, own, other = mixed[index][2], targets[index], targets[1 - index]
            if np.allclose(target, own):
                continue  # mixed with itself
            weight = (target[0] - other[0]) / (own[0] - other[0]) if own[0] != other[0] else \
                (target[3] - other[3]) / (own[3] - other[3])
            np.testing.assert_allclose(target, weight * own + (1 - weight) * other, atol=1e-6)
            fractional_masks += not set(np.unique(split_labels_and_mask(target)[1])) <= {0.0, 1.0}
    assert fractional_masks > 0


def test_mixing_respects_the_masks():
    y1 = np.zeros(40, np.float32)
    y2 = np.zeros(40, np.float32)
    y1[2], y1[22] = 1.0, 1.0      # label 2 known positive in clip 1
    y1[4] = 1.0                    # label 4 "positive" but unknown: must not leak
    y2[3], y2[23], y2[22] = 1.0, 1.0, 1.0  # label 3 positive; label 2 known negative
    mixed = mix_openmic_targets(y1, y2, 0.7)
    labels, mask = split_labels_and_mask(mixed)
    assert labels[2] == pytest.approx(0.7) and labels[3] == pytest.approx(0.3) and labels[4] == 0
    np.testing.assert_array_equal(np.flatnonzero(mask), [2, 3])


def test_split_works_on_torch_batches_and_checks_width():
    labels, mask = split_labels_and_mask(torch.arange(80.0).reshape(2, 40))
    assert labels.shape == mask.shape == (2, 20) and mask[0, 0] == 20
    with pytest.raises(ValueError, match="40"):
        split_labels_and_mask(np.zeros(20))
