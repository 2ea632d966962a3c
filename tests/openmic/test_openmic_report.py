"""python -m openmic.report: a copy against the release's partitions and labels (positives and known labels)."""
from helpers.data import DataOptions
import json

import numpy as np
import pytest

from helpers.data import encode_mp3, make_evaluation_set, write_hdf5_dataset
from openmic.dataset import NUM_INSTRUMENTS, TARGET_CODEC, TEST_FILE, TRAIN_FILE
from openmic.report import main
from tests.helpers.data.clips import SR, tone


def target(positive=(), negative=()):
    row = np.zeros(2 * NUM_INSTRUMENTS, np.float32)
    for index in positive:
        row[index], row[NUM_INSTRUMENTS + index] = 0.9, 1
    for index in negative:
        row[index], row[NUM_INSTRUMENTS + index] = 0.1, 1
    return row


RELEASE = {"000001_0": target([0]), "000002_0": target([1], [0]), "000003_0": target(), "000004_0": target([0, 1]),
           "000005_0": target([2])}


@pytest.fixture
def release(tmp_path):
    keys = list(RELEASE)
    y = np.stack([RELEASE[key] for key in keys])
    np.savez(tmp_path / "openmic-2018.npz", sample_key=np.array(keys), Y_true=y[:, :NUM_INSTRUMENTS],
             Y_mask=y[:, NUM_INSTRUMENTS:] > 0.5)
    (tmp_path / "partitions").mkdir()
    (tmp_path / "partitions" / "split01_train.csv").write_text("000001_0\n000002_0\n000003_0\n")  # 000003_0: no label
    (tmp_path / "partitions" / "split01_test.csv").write_text("000004_0\n000005_0\n")
    (tmp_path / "class-map.json").write_text(json.dumps({f"instrument{i:02d}": i for i in range(NUM_INSTRUMENTS)}))
    mp3 = tmp_path / "mp3"
    mp3.mkdir()
    audio = encode_mp3(tone(440, 0.2), SR)
    # train: 000002_0 stored without its known negative; eval: 000005_0 missing
    write_hdf5_dataset(mp3 / TRAIN_FILE, ["000001_0.mp3", "000002_0.mp3"], [audio] * 2,
                       [RELEASE["000001_0"], target([1])], TARGET_CODEC)
    write_hdf5_dataset(mp3 / TEST_FILE, ["000004_0.mp3"], [audio], [RELEASE["000004_0"]], TARGET_CODEC)
    return tmp_path


def test_openmic_report_compares_positives_and_known_labels(release):
    out = release / "report"
    report = main(["--release-dir", str(release), "--hdf5", str(release), "--out", str(out)])
    saved = json.loads((out / "report.json").read_text())
    figures = {name: (split["listed"], split["present"], split["missing"], split["label_mismatch"])
               for name, split in saved["splits"].items()}
    assert figures == {"train": (2, 2, 0, 1), "eval": (2, 1, 1, 0)}
    assert saved["left_out_unlabelled"] == {"train": 1, "eval": 0}
    coverage = {entry["name"]: entry["coverage"] for entry in saved["splits"]["eval"]["classes"]
                if entry["coverage"] is not None}
    assert coverage == {"instrument00: positive": 1.0, "instrument01: positive": 1.0, "instrument02: positive": 0.0,
                        "instrument00: labelled": 1.0, "instrument01: labelled": 1.0, "instrument02: labelled": 0.0}
    assert report["eval_fingerprint"] == make_evaluation_set(release / "mp3" / TEST_FILE, 2 * NUM_INSTRUMENTS, DataOptions(), target_decoder=TARGET_CODEC).fingerprint()
