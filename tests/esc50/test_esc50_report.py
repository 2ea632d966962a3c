"""python -m esc50.report: the copy's esc50_mp3.hdf against the release's esc50.csv, with the fold fingerprints
the runs print."""
import json

import numpy as np
import pytest

from esc50.dataset import evaluation_set
from helpers.data import DataOptions
from esc50.report import main
from helpers.data import HDF5DatasetWriter, PackedBitsTargets, encode_mp3
from tests.helpers.data.clips import SR, tone

META = [("1-100-A-0.wav", 1, 0, "dog"), ("1-101-A-1.wav", 1, 1, "rooster"), ("2-102-A-0.wav", 2, 0, "dog"),
        ("3-103-A-1.wav", 3, 1, "rooster"), ("4-104-A-2.wav", 4, 2, "pig"), ("5-105-A-2.wav", 5, 2, "pig")]
# the copy: 3-103-A-1 is missing, 4-104-A-2 is stored as class 0, 9-999-A-0 is not in the list
STORED = [("1-100-A-0.mp3", 1, 0), ("1-101-A-1.mp3", 1, 1), ("2-102-A-0.mp3", 2, 0), ("4-104-A-2.mp3", 4, 0),
          ("5-105-A-2.mp3", 5, 2), ("9-999-A-0.mp3", 5, 0)]


@pytest.fixture
def release(tmp_path):
    meta = tmp_path / "esc50.csv"
    meta.write_text("filename,fold,target,category,esc10,src_file,take\n"
                    + "".join(f"{name},{fold},{target},{category},False,1,A\n" for name, fold, target, category in META))
    (tmp_path / "mp3").mkdir()
    with HDF5DatasetWriter(tmp_path / "mp3" / "esc50_mp3.hdf", PackedBitsTargets(50)) as writer:
        for name, _, target in STORED:
            writer.append(name, encode_mp3(tone(440, 0.2), SR), np.eye(50)[target])
        writer.add_dataset("fold", np.array([fold for _, fold, _ in STORED]))
    return {"meta": meta, "hdf5": tmp_path, "out": tmp_path / "report"}


def test_esc50_report_counts_missing_extra_and_relabelled_clips_per_category(release):
    report = main(["--meta", str(release["meta"]), "--hdf5", str(release["hdf5"]), "--out", str(release["out"])])
    split = json.loads((release["out"] / "report.json").read_text())["splits"]["esc50"]
    assert (split["listed"], split["present"], split["missing"], split["extra"], split["label_mismatch"]) == (6, 5, 1, 1, 1)
    assert (release["out"] / "missing_esc50_ids.txt").read_text() == "3-103-A-1\n"
    assert (release["out"] / "label_mismatch_esc50_ids.txt").read_text() == "4-104-A-2\n"
    coverage = {entry["name"]: entry["coverage"] for entry in split["classes"] if entry["coverage"] is not None}
    assert coverage == {"dog": 1.0, "rooster": 0.5, "pig": 1.0}
    path = str(release["hdf5"] / "mp3" / "esc50_mp3.hdf")
    assert report["fold5_fingerprint"] == evaluation_set(path, 5, DataOptions(clip_length=5)).fingerprint()  # what fold=5 runs print
    assert report["fold5_fingerprint"] != report["fold1_fingerprint"]


def test_esc50_report_names_a_category_that_changes(release):
    release["meta"].write_text(release["meta"].read_text().replace("2-102-A-0.wav,2,0,dog", "2-102-A-0.wav,2,0,cat"))
    with pytest.raises(ValueError, match=r"esc50.csv' line 4: target 0 is 'cat' here but 'dog' before"):
        main(["--meta", str(release["meta"]), "--hdf5", str(release["hdf5"]), "--out", str(release["out"])])
