"""python -m fsd50k.report: a copy's three files against dev.csv (train/val) and eval.csv."""
from helpers.data import DataOptions
import json

import numpy as np
import pytest

from fsd50k.dataset import NUM_CLASSES
from fsd50k.report import main
from helpers.data import PackedBitsTargets, encode_mp3, make_evaluation_set, write_hdf5_dataset
from tests.helpers.data.clips import SR, tone


@pytest.fixture
def release(tmp_path):
    truth = tmp_path / "FSD50K.ground_truth"
    truth.mkdir()
    (truth / "vocabulary.csv").write_text("".join(f"{i},Label_{i},/m/{i:03d}\n" for i in range(NUM_CLASSES)))
    (truth / "dev.csv").write_text('fname,labels,mids,split\n10,"Label_0,Label_1","/m/000,/m/001",train\n'
                                   '11,Label_1,/m/001,train\n12,Label_2,/m/002,val\n')
    (truth / "eval.csv").write_text("fname,labels,mids\n20,Label_0,/m/000\n21,Label_2,/m/002\n")
    mp3 = tmp_path / "mp3"
    mp3.mkdir()
    for file_name, names, classes in (("FSD50K.train_mp3.hdf", ["10.mp3"], [[0, 1]]),  # 11 missing
                                      ("FSD50K.val_mp3.hdf", ["12.mp3"], [[2]]),
                                      ("FSD50K.eval_mp3.hdf", ["20.mp3", "21.mp3", "99.mp3"], [[0], [1], [3]])):
        targets = [np.isin(np.arange(NUM_CLASSES), chosen).astype(np.float32) for chosen in classes]
        write_hdf5_dataset(mp3 / file_name, names, [encode_mp3(tone(440, 0.2), SR)] * len(names), targets,
                           PackedBitsTargets(NUM_CLASSES))
    return {"truth": truth, "hdf5": tmp_path, "out": tmp_path / "report"}


def test_fsd50k_report_per_split(release):
    report = main(["--ground-truth", str(release["truth"]), "--hdf5", str(release["hdf5"]), "--out", str(release["out"])])
    splits = json.loads((release["out"] / "report.json").read_text())["splits"]
    figures = {name: (split["listed"], split["present"], split["missing"], split["extra"], split["label_mismatch"])
               for name, split in splits.items()}
    assert figures == {"train": (2, 1, 1, 0, 0), "valid": (1, 1, 0, 0, 0), "eval": (2, 2, 0, 1, 1)}
    assert (release["out"] / "label_mismatch_eval_ids.txt").read_text() == "21\n"
    eval_file = str(release["hdf5"] / "mp3" / "FSD50K.eval_mp3.hdf")
    assert report["eval_fingerprint"] == make_evaluation_set(eval_file, NUM_CLASSES, DataOptions()).fingerprint()


def test_fsd50k_report_names_an_unknown_label(release):
    dev = release["truth"] / "dev.csv"
    dev.write_text(dev.read_text().replace("11,Label_1", "11,Label_x"))
    with pytest.raises(ValueError, match=r"dev.csv' line 3: label 'Label_x' is not in vocabulary.csv"):
        main(["--ground-truth", str(release["truth"]), "--hdf5", str(release["hdf5"]), "--out", str(release["out"])])
