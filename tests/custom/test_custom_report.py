"""`python -m custom report`: a prepared folder against the user's own list (a CSV with or without a split
column, or the class folders), with known missing, extra, duplicated and relabelled clips giving exactly those
figures, and the fingerprints ex_custom.py runs record."""
import json

import numpy as np
import pytest

from custom.dataset import INFO_FILE, LABEL_FILE, SPLIT_FILES, evaluation_set
from helpers.data import DataOptions

WHOLE = DataOptions(clip_length=None)  # whole clips, as the custom experiment evaluates
from custom.prepare import main
from custom.report import main as report_main
from helpers.data import PackedBitsTargets, encode_mp3, write_hdf5_dataset, write_label_file
from helpers.loaders import evaluation_loader, record_clip_sets
from tests.custom.clips import class_folders
from tests.helpers.data.clips import SR, tone

CLASSES = ["birdsong", "engine", "knocking"]
# the user's list: (file, labels, split); t4 is the only clip of `whistle`, which the copy never got
LISTED = [("a/t1.wav", "birdsong", "train"), ("a/t2.wav", "engine", "train"), ("b/t1.wav", "knocking", "train"),
          ("t3.wav", "birdsong;engine", "train"), ("t4.wav", "whistle", "train"),
          ("v1.wav", "birdsong", "valid"), ("v2.wav", "engine", "valid"), ("v3.wav", "knocking", "valid"),
          ("e1.wav", "birdsong", "eval"), ("e2.wav", "engine", "eval"), ("e3.wav", "knocking", "eval"),
          ("e4.wav", "engine", "eval")]
# the copy: train lacks t4, has a stray clip and a/t2 twice; valid lacks v3 and stores v2 as knocking;
# eval also holds v1 (a clip in two splits)
STORED = {"train": [("a/t1.wav", ["birdsong"]), ("a/t2.wav", ["engine"]), ("a/t2.wav", ["engine"]),
                    ("b/t1.wav", ["knocking"]), ("stray.wav", ["engine"]), ("t3.wav", ["birdsong", "engine"])],
          "valid": [("v1.wav", ["birdsong"]), ("v2.wav", ["knocking"])],
          "eval": [("e1.wav", ["birdsong"]), ("e2.wav", ["engine"]), ("e3.wav", ["knocking"]),
                   ("e4.wav", ["engine"]), ("v1.wav", ["birdsong"])]}


def write_copy(root, split_column=True):
    """A prepared folder as `prepare` writes it (HDF5 files, label file, dataset.json) and the labels CSV."""
    out, audio = root / "prepared", root / "audio"
    out.mkdir()
    audio.mkdir()
    mp3 = encode_mp3(tone(440, 0.3), SR)
    for split, rows in STORED.items():
        targets = [np.isin(CLASSES, labels).astype(np.float32) for _, labels in rows]
        write_hdf5_dataset(out / SPLIT_FILES[split], [name for name, _ in rows], [mp3] * len(rows), targets,
                           PackedBitsTargets(len(CLASSES)))
    write_label_file(out / LABEL_FILE, [(name, name) for name in CLASSES])
    (out / "skipped.tsv").write_text("t4.wav\tfile does not exist\n")
    (out / INFO_FILE).write_text(json.dumps({"classes": CLASSES, "multi_label": True, "channels": 1,
                                             "sample_rate": SR, "splits": {"train": 6, "valid": 2, "eval": 5}}))
    lines = ["filename,labels" + (",split" if split_column else "")]
    lines += [f"{name},{labels}" + (f",{split}" if split_column else "") for name, labels, split in LISTED]
    csv_path = root / "labels.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    return audio, out, csv_path


def report(capsys, audio, out, csv_path, report_dir, *extra):
    status = main(["report", str(audio), "--hdf5", str(out), "--out", str(report_dir),
                   *(["--csv", str(csv_path)] if csv_path else []), *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def figures(split):
    return {key: split[key] for key in ("listed", "present", "missing", "extra", "duplicates", "duplicate_rows",
                                        "label_mismatch", "rows")}


class TestCsvWithSplits:
    @pytest.fixture(scope="class")
    def written(self, tmp_path_factory):
        root = tmp_path_factory.mktemp("copy")
        return (*write_copy(root), root / "report")

    @pytest.fixture
    def result(self, written, capsys):
        audio, out, csv_path, report_dir = written
        status, stdout, _ = report(capsys, audio, out, csv_path, report_dir)
        return status, stdout, json.loads((report_dir / "report.json").read_text())

    def test_each_split_counts_missing_extra_duplicated_and_relabelled_clips(self, result):
        status, stdout, data = result
        assert status == 0
        assert {name: figures(split) for name, split in data["splits"].items()} == {
            "train": dict(listed=5, present=4, missing=1, extra=1, duplicates=1, duplicate_rows=1, label_mismatch=0,
                          rows=6),
            "valid": dict(listed=3, present=2, missing=1, extra=0, duplicates=0, duplicate_rows=0, label_mismatch=1,
                          rows=2),
            "eval": dict(listed=4, present=4, missing=0, extra=1, duplicates=0, duplicate_rows=0, label_mismatch=0,
                         rows=5)}
        assert "train: 4 of 5 listed clips present, 1 missing, 1 extra, 1 duplicated, 0 relabelled" in stdout
        assert data["split_from"] == "list" and data["unassigned"]["missing"] == 0 and data["listed"] == 12
        assert data["split_overlap"] == ["v1"]
        assert data["missing_reasons"] == {"train": {"file does not exist": 1}, "valid": {"not in skipped.tsv": 1},
                                           "eval": {}}  # prepare's skipped.tsv names t4

    def test_equal_file_names_in_two_folders_are_two_clips_and_the_id_files_name_them(self, result, written):
        report_dir = written[3]
        assert (report_dir / "present_train_ids.txt").read_text() == "a/t1\na/t2\nb/t1\nstray\nt3\n"
        assert (report_dir / "missing_train_ids.txt").read_text() == "t4\n"
        assert (report_dir / "extra_train_ids.txt").read_text() == "stray\n"
        assert (report_dir / "duplicates_train_ids.txt").read_text() == "a/t2\n"
        assert (report_dir / "label_mismatch_valid_ids.txt").read_text() == "v2\n"
        assert (report_dir / "missing_valid_ids.txt").read_text() == "v3\n"
        assert (report_dir / "extra_eval_ids.txt").read_text() == "v1\n"

    def test_per_class_coverage_with_the_class_the_copy_lacks(self, result):
        data = result[2]
        assert data["unprepared_classes"] == ["whistle"] and data["classes"] == 4
        coverage = {name: {entry["name"]: (entry["listed_positives"], entry["present_positives"], entry["coverage"])
                           for entry in split["classes"]} for name, split in data["splits"].items()}
        assert coverage["train"] == {"birdsong": (2, 2, 1.0), "engine": (2, 2, 1.0), "knocking": (1, 1, 1.0),
                                     "whistle": (1, 0, 0.0)}
        assert coverage["valid"] == {"birdsong": (1, 1, 1.0), "engine": (1, 1, 1.0), "knocking": (1, 0, 0.0),
                                     "whistle": (0, 0, None)}
        assert [entry["name"] for entry in data["splits"]["train"]["lowest_coverage"]][0] == "whistle"
        assert [entry["name"] for entry in data["splits"]["valid"]["lowest_coverage"]][0] == "knocking"

    def test_fingerprints_are_those_a_run_records(self, result, written):
        data, out = result[2], written[1]
        loaders = {f"{split}_": evaluation_loader(evaluation_set(str(out / SPLIT_FILES[split]), 3, WHOLE), 1, 0)
                   for split in ("valid", "eval")}
        run = record_clip_sets(None, loaders)  # what ex_custom.py's runs record and print
        assert data["valid_fingerprint"] == run["valid_fingerprint"] == data["splits"]["valid"]["fingerprint"]
        assert data["eval_fingerprint"] == run["eval_fingerprint"]
        assert data["valid_fingerprint"] != data["eval_fingerprint"]

    def test_markdown_and_plot(self, result, written):
        report_dir = written[3]
        text = (report_dir / "report.md").read_text()
        assert "# Data report: custom" in text and "| valid | 3 | 2 | 1 | 0 | 0 | 1 |" in text
        assert "Classes of the list the copy has none of: whistle." in text
        assert "train: why prepare left its missing clips out (skipped.tsv): 1 file does not exist." in text
        assert (report_dir / "coverage.png").stat().st_size > 0
        assert (report_dir / "missing_unassigned_ids.txt").read_text() == ""


def test_without_a_split_column_a_clip_stored_nowhere_is_missing_overall(tmp_path, capsys):
    audio, out, csv_path = write_copy(tmp_path, split_column=False)
    status, stdout, _ = report(capsys, audio, out, csv_path, tmp_path / "report")
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert status == 0 and data["split_from"] == "stored files"
    # a listed clip belongs to every split that stores it, so no split misses one
    assert {name: (split["listed"], split["present"], split["missing"], split["extra"], split["label_mismatch"])
            for name, split in data["splits"].items()} == {"train": (4, 4, 0, 1, 0), "valid": (2, 2, 0, 0, 1),
                                                           "eval": (5, 5, 0, 0, 0)}
    assert data["unassigned"] == {"missing": 2, "file": "missing_unassigned_ids.txt",
                                  "reasons": {"file does not exist": 1, "not in skipped.tsv": 1},
                                  "listed_positives": {"knocking": 1, "whistle": 1}}
    assert (tmp_path / "report" / "missing_unassigned_ids.txt").read_text() == "t4\nv3\n"
    assert "2 listed clips stored in no split" in stdout
    assert "2 listed clips are stored in no split file" in (tmp_path / "report" / "report.md").read_text()


def test_a_folder_prepare_wrote_matches_its_class_folders(tmp_path, capsys):
    root = tmp_path / "audio"
    names = class_folders(root, 3, seconds=(0.3, 0.6))
    (root / "engine" / "broken clip.wav").write_bytes(b"RIFF\x00\x00 not really a wav file" * 8)
    out = tmp_path / "prepared"
    assert main(["prepare", str(root), "--out", str(out), "--split", "0.34,0.33,0.33", "--workers", "1"]) == 0
    capsys.readouterr()
    status = main(["report", str(root), "--hdf5", str(out), "--out", str(tmp_path / "report")])
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert status == 0
    splits = data["splits"]
    assert sum(split["present"] for split in splits.values()) == 9
    assert all(split["missing"] == split["extra"] == split["label_mismatch"] == split["duplicates"] == 0
               for split in splits.values())
    present = sorted(sum(((tmp_path / "report" / f"present_{name}_ids.txt").read_text().splitlines()
                          for name in splits), []))
    assert present == sorted(name.rsplit(".", 1)[0] for name in sum(names.values(), []))  # folders kept
    assert data["unassigned"]["missing"] == 1 and list(data["unassigned"]["reasons"]) != ["not in skipped.tsv"]
    assert (tmp_path / "report" / "missing_unassigned_ids.txt").read_text() == "engine/broken clip\n"
    assert data["eval_fingerprint"] == evaluation_set(str(out / SPLIT_FILES["eval"]), 3, WHOLE).fingerprint()


class TestBadInput:
    def test_a_malformed_csv_row_names_the_file_and_line(self, tmp_path, capsys):
        audio, out, csv_path = write_copy(tmp_path)
        csv_path.write_text(csv_path.read_text() + "lonely.wav\n")
        status, _, err = report(capsys, audio, out, csv_path, tmp_path / "report")
        assert status == 2 and f"{str(csv_path)!r} line 14: expected filename,labels[,split]" in err

    def test_an_hdf5_file_of_another_layout_is_named(self, tmp_path, capsys):
        audio, out, csv_path = write_copy(tmp_path)
        write_hdf5_dataset(out / SPLIT_FILES["valid"], ["v1.wav"], [encode_mp3(tone(440, 0.3), SR)],
                           [np.zeros(527, dtype=np.float32)], PackedBitsTargets(527))
        status, _, err = report(capsys, audio, out, csv_path, tmp_path / "report")
        assert status == 2 and "valid_mp3.hdf" in err and "width" in err

    def test_a_folder_not_prepared_is_named(self, tmp_path, capsys):
        audio, out, csv_path = write_copy(tmp_path)
        (out / INFO_FILE).unlink()
        status = report_main([str(audio), "--hdf5", str(out), "--out", str(tmp_path / "report"), "--csv",
                              str(csv_path)])  # python -m custom.report
        err = capsys.readouterr().err
        assert status == 2 and "dataset.json" in err and "does not exist" in err


def test_audio_decodes_every_stored_clip(tmp_path, capsys):
    audio, out, csv_path = write_copy(tmp_path)
    status, _, _ = report(capsys, audio, out, csv_path, tmp_path / "report", "--audio", "--workers", "1")
    splits = json.loads((tmp_path / "report" / "report.json").read_text())["splits"]
    assert status == 0 and splits["train"]["audio"]["clips"] == 6 and splits["train"]["audio"]["undecodable"] == []
    assert len(splits["eval"]["audio"]["short"]) == 5  # 0.3 s clips, under the default 0.5 s
