"""FSD50K: preparation into train/val/eval files, random crops in training, variable-length evaluation."""

import numpy as np
import pytest

from fsd50k.dataset import evaluation_set, training_set
from helpers.data import DataOptions
from fsd50k.prepare_scripts.create_h5pymp3_dataset import prepare_fsd50k
from helpers.data import encode_audio, read_label_file, set_dataset_epoch
from tests.helpers.data.clips import tone


@pytest.fixture(scope="module")
def fsd50k_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("FSD50K")
    truth = root / "FSD50K.ground_truth"
    truth.mkdir()
    names = [f"Name_{index:03d}" for index in range(200)]
    (truth / "vocabulary.csv").write_text("".join(f"{i},{name},/m/x{i}\n" for i, name in enumerate(names)))
    (truth / "dev.csv").write_text('fname,labels,mids,split\n'
                                   '11,"Name_000,Name_005","/m/x0,/m/x5",train\n'
                                   '12,Name_199,/m/x199,train\n'
                                   '13,Name_010,/m/x10,val\n')
    (truth / "eval.csv").write_text('fname,labels,mids\n21,"Name_001,Name_002","/m/x1,/m/x2"\n')
    for folder, fname, seconds in [("FSD50K.dev_audio", 11, 3.0), ("FSD50K.dev_audio", 12, 0.5),
                                   ("FSD50K.dev_audio", 13, 1.5), ("FSD50K.eval_audio", 21, 2.0)]:
        (root / folder).mkdir(exist_ok=True)
        (root / folder / f"{fname}.wav").write_bytes(encode_audio(tone(440.0, seconds, 44100), 44100, "wav"))
    out = tmp_path_factory.mktemp("hdf")
    reports = prepare_fsd50k(root, out, workers=1)
    assert {name: report.written for name, report in reports.items()} == {
        "FSD50K.train_mp3.hdf": 2, "FSD50K.val_mp3.hdf": 1, "FSD50K.eval_mp3.hdf": 1}
    return out


def test_targets_and_lengths(fsd50k_files):
    out = fsd50k_files
    first_seconds = training_set(str(out / "FSD50K.train_mp3.hdf"), DataOptions(clip_length=1, gain_augment=0, roll=False))
    whole_clip = evaluation_set(str(out / "FSD50K.train_mp3.hdf"), DataOptions(clip_length=None))[0][0]
    for epoch in range(3):  # upstream: every epoch the clip's first second
        set_dataset_epoch(first_seconds, epoch)
        np.testing.assert_array_equal(first_seconds[0][0], whole_clip[:, :32000])
    training = training_set(str(out / "FSD50K.train_mp3.hdf"), DataOptions(clip_length=1, gain_augment=0, roll=False,
                                                                          random_crop=True))
    waveform, name, target = training[0]
    assert waveform.shape == (1, 32000) and name == "11.mp3"
    np.testing.assert_array_equal(np.flatnonzero(target), [0, 5])
    crops = set()
    for epoch in range(5):  # 3 s clip, 1 s random crops: one per (seed, epoch)
        set_dataset_epoch(training, epoch)
        crops.add(training[0][0].tobytes())
    assert len(crops) > 1
    valid = evaluation_set(str(out / "FSD50K.val_mp3.hdf"), DataOptions(clip_length=1))
    assert valid[0][0].shape == (1, 32000) and np.flatnonzero(valid[0][2]).tolist() == [10]
    whole = evaluation_set(str(out / "FSD50K.eval_mp3.hdf"), DataOptions(clip_length=None))
    assert abs(whole[0][0].shape[1] - 64000) < 700 and np.flatnonzero(whole[0][2]).tolist() == [1, 2]


def test_label_file(fsd50k_files):
    out = fsd50k_files
    labels = read_label_file(out / "fsd50k_class_labels_indices.csv")
    assert len(labels) == 200 and labels[5] == (5, "/m/x5", "Name_005")
