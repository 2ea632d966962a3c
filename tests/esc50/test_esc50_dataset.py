"""ESC-50: preparation with folds, train on four folds and test on the fifth, one-hot targets."""

import numpy as np
import pytest

from esc50.dataset import CLIP_SECONDS, evaluation_set, fold_indices, read_folds, training_set
from helpers.data import DataOptions
from esc50.prepare_scripts.create_h5pymp3_dataset import main, prepare_esc50
from helpers.data import HDF5FormatError, encode_audio, read_label_file, write_hdf5_dataset, PackedBitsTargets
from tests.helpers.data.clips import tone

ROWS = [(f"{fold}-1000{n}-A-{target}.wav", fold, target, f"category{target}")
        for n, (fold, target) in enumerate([(1, 0), (1, 7), (2, 7), (3, 49), (4, 1), (5, 2), (5, 0)])]


@pytest.fixture(scope="module")
def esc50_release(tmp_path_factory):
    root = tmp_path_factory.mktemp("ESC-50-master")
    (root / "meta").mkdir()
    (root / "audio").mkdir()
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for number, (filename, fold, target, category) in enumerate(ROWS):
        lines.append(f"{filename},{fold},{target},{category},False,1000{number},A")
        (root / "audio" / filename).write_bytes(encode_audio(tone(200.0 + 50 * number, 5.0, 44100), 44100, "wav"))
    (root / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def esc50_file(esc50_release, tmp_path_factory):
    out = tmp_path_factory.mktemp("hdf")
    report = prepare_esc50(esc50_release, out, workers=1)
    assert report.written == len(ROWS)
    return out


def test_folds_are_stored_and_split(esc50_file):
    path = str(esc50_file / "esc50_mp3.hdf")
    np.testing.assert_array_equal(read_folds(path), [row[1] for row in ROWS])
    np.testing.assert_array_equal(fold_indices(path, 5, training=False), [5, 6])
    np.testing.assert_array_equal(fold_indices(path, 5, training=True), [0, 1, 2, 3, 4])
    with pytest.raises(ValueError, match="fold"):
        fold_indices(path, 6, training=True)


def test_training_and_test_sets_have_one_hot_targets_of_their_folds(esc50_file):
    path = str(esc50_file / "esc50_mp3.hdf")
    training = training_set(path, 1, DataOptions(clip_length=CLIP_SECONDS, wavmix=False))
    test = evaluation_set(path, 1, DataOptions(clip_length=CLIP_SECONDS))
    assert (len(training), len(test)) == (5, 2)
    waveform, name, target = test[1]
    assert waveform.shape == (1, 5 * 32000) and name == "1-10001-A-7.mp3"
    assert target.shape == (50,) and target.sum() == 1 and target.argmax() == 7
    assert {training[i][1] for i in range(5)}.isdisjoint({test[i][1] for i in range(2)})
    whole = evaluation_set(path, None, DataOptions(clip_length=CLIP_SECONDS))  # every fold in file order (save_logits)
    assert [whole[i][1] for i in range(len(whole))] == [row[0].replace(".wav", ".mp3") for row in ROWS]


def test_label_file_lists_the_categories(esc50_file):
    labels = read_label_file(esc50_file / "esc50_class_labels_indices.csv")
    assert len(labels) == 50 and labels[49].display_name == "category49" and labels[3].display_name == "class 3"


def test_file_without_folds_is_rejected(tmp_path):
    path = tmp_path / "nofold.hdf"
    write_hdf5_dataset(path, ["a"], [b"x"], np.zeros((1, 50)), PackedBitsTargets(50))
    with pytest.raises(HDF5FormatError, match="'fold'"):
        read_folds(path)


def test_command_line_prepares_the_release_and_reports_the_file(esc50_file, esc50_release, tmp_path, capsys):
    main(["--esc50-dir", str(esc50_release), "--out-dir", str(tmp_path), "--workers", "1"])
    assert capsys.readouterr().out == f"esc50_mp3.hdf: {len(ROWS)} clips, 0 without audio\n"
    assert read_folds(tmp_path / "esc50_mp3.hdf").tolist() == [fold for _, fold, _, _ in ROWS]
