"""python -m audioset.report: a generated copy with known missing, extra, duplicated and relabelled clips gives
exactly those figures, its per-class coverage and its fingerprint; bad lists and files are errors naming them."""
from helpers.data import DataOptions
import json

import h5py
import numpy as np
import pytest

from audioset.report import main, read_segment_list
from helpers.data import HDF5FormatError, PackedBitsTargets, encode_mp3, make_evaluation_set, write_hdf5_dataset
from helpers.data.clip_ids import fingerprint
from helpers.data.labels import write_label_file
from tests.helpers.data.clips import SR, tone

MIDS = ["/m/a", "/m/b", "/m/c", "/m/d"]
HEADER = ("# Segments csv created Sun Mar  5 10:54:31 2017\n# num_ytids=6, num_segs=6, num_unique_labels=4, "
          "num_positive_labels=10\n# YTID, start_seconds, end_seconds, positive_labels\n")
EVAL_LIST = {"eval0000001": "/m/a", "eval0000002": "/m/a,/m/b", "eval0000003": "/m/b", "eval0000004": "/m/c",
             "eval0000005": "/m/a,/m/c", "eval0000006": "/m/c"}
# what the copy stores: eval0000004 and eval0000006 are missing, eval0000003 has other labels, eval0000005 is
# stored twice, extra000001 is not listed
EVAL_STORED = [("Yeval0000001.mp3", "/m/a"), ("Yeval0000002_30.000_40.000.mp3", "/m/a,/m/b"),
               ("Yeval0000003.mp3", "/m/c"), ("Yeval0000005.mp3", "/m/a,/m/c"), ("Yextra000001.mp3", "/m/d"),
               ("Yeval0000005.mp3", "/m/a,/m/c")]


def segment_csv(path, rows):
    path.write_text(HEADER + "".join(f'{ytid},30.000,40.000,"{mids}"\n' for ytid, mids in rows))


def stored_file(path, clips):
    targets = [np.isin(MIDS, mids.split(",")).astype(np.float32) for _, mids in clips]
    write_hdf5_dataset(path, [name for name, _ in clips], [encode_mp3(tone(440, 0.2), SR)] * len(clips), targets,
                       PackedBitsTargets(len(MIDS)))


@pytest.fixture
def copy(tmp_path):
    """Lists (balanced: two clips, one listed twice; eval: EVAL_LIST; unbalanced: one clip) and a copy with
    the balanced and eval files but no unbalanced one."""
    lists, hdf5 = tmp_path / "lists", tmp_path / "copy" / "mp3"
    lists.mkdir()
    hdf5.mkdir(parents=True)
    labels = tmp_path / "labels.csv"
    write_label_file(labels, [(mid, f"class {mid[-1]}") for mid in MIDS])
    segment_csv(lists / "eval_segments.csv", EVAL_LIST.items())
    segment_csv(lists / "balanced_train_segments.csv", [("bal00000001", "/m/a"), ("bal00000002", "/m/b"),
                                                        ("bal00000002", "/m/b")])
    segment_csv(lists / "unbalanced_train_segments.csv", [("unbal000001", "/m/d")])
    stored_file(hdf5 / "eval_segments_mp3.hdf", EVAL_STORED)
    stored_file(hdf5 / "balanced_train_segments_mp3.hdf", [("Ybal00000001.mp3", "/m/a"), ("Ybal00000002.mp3", "/m/b")])
    return {"lists": lists, "hdf5": hdf5.parent, "labels": labels, "out": tmp_path / "report"}


def run(copy, *extra):
    return main(["--segments", str(copy["lists"]), "--hdf5", str(copy["hdf5"]), "--labels", str(copy["labels"]),
                 "--out", str(copy["out"]), *extra])


def test_report_counts_exactly_the_missing_extra_duplicated_and_relabelled_clips(copy):
    run(copy)
    report = json.loads((copy["out"] / "report.json").read_text())
    evaluation = report["splits"]["eval"]
    assert {key: evaluation[key] for key in ("listed", "listed_rows", "rows", "present", "missing", "extra",
                                             "duplicates", "duplicate_rows", "label_mismatch")} == {
        "listed": 6, "listed_rows": 6, "rows": 6, "present": 4, "missing": 2, "extra": 1, "duplicates": 1,
        "duplicate_rows": 1, "label_mismatch": 1}
    ids = {kind: (copy["out"] / f"{kind}_eval_ids.txt").read_text().split() for kind in
           ("present", "missing", "extra", "duplicates", "label_mismatch")}
    assert ids == {"present": ["eval0000001", "eval0000002", "eval0000003", "eval0000005", "extra000001"],
                   "missing": ["eval0000004", "eval0000006"], "extra": ["extra000001"], "duplicates": ["eval0000005"],
                   "label_mismatch": ["eval0000003"]}
    balanced = report["splits"]["balanced_train"]
    assert (balanced["listed"], balanced["listed_rows"], balanced["listed_duplicates"], balanced["present"],
            balanced["missing"]) == (2, 3, 1, 2, 0)
    unbalanced = report["splits"]["unbalanced_train"]  # the copy has no file: every listed clip is missing
    assert (unbalanced["present"], unbalanced["missing"], unbalanced["rows"]) == (0, 1, 0)


def test_report_gives_per_class_coverage_by_the_lists_labels_and_the_lowest_first(copy):
    run(copy)
    evaluation = json.loads((copy["out"] / "report.json").read_text())["splits"]["eval"]
    per_class = {entry["mid"]: (entry["listed_positives"], entry["present_positives"], entry["coverage"])
                 for entry in evaluation["classes"]}
    assert per_class == {"/m/a": (3, 3, 1.0), "/m/b": (2, 2, 1.0), "/m/c": (3, 1, pytest.approx(1 / 3)),
                         "/m/d": (0, 0, None)}  # eval0000003 counts for /m/b, as listed
    assert [entry["mid"] for entry in evaluation["lowest_coverage"]] == ["/m/c", "/m/a", "/m/b"]
    markdown = (copy["out"] / "report.md").read_text()
    assert "| eval | 6 | 4 | 2 | 1 | 1 | 1 | 66.67 % |" in markdown and "| class c (`/m/c`) | 3 | 1 | 33.33 % |" in markdown
    assert (copy["out"] / "coverage.png").read_bytes()[:4] == b"\x89PNG"


def test_fingerprint_is_the_runs_and_stable_across_file_order(copy, tmp_path):
    report = run(copy)
    eval_file = copy["hdf5"] / "mp3" / "eval_segments_mp3.hdf"
    assert report["eval_fingerprint"] == make_evaluation_set(eval_file, len(MIDS), DataOptions()).fingerprint()
    assert report["eval_fingerprint"] == fingerprint(np.array([b"eval0000001", b"eval0000002", b"eval0000003",
                                                               b"eval0000005", b"eval0000005", b"extra000001"]))
    stored_file(eval_file, EVAL_STORED[::-1])  # the same clips in another order
    assert run(copy)["eval_fingerprint"] == report["eval_fingerprint"]
    stored_file(eval_file, EVAL_STORED[:-1])  # one row fewer
    assert run(copy)["eval_fingerprint"] != report["eval_fingerprint"]


def test_audio_check_names_undecodable_silent_and_short_clips(copy):
    eval_file = copy["hdf5"] / "mp3" / "eval_segments_mp3.hdf"
    clips = [encode_mp3(tone(440, 3.0), SR), encode_mp3(np.zeros(3 * SR, np.float32), SR),
             encode_mp3(tone(440, 1.0), SR), b"this is not an mp3"]
    write_hdf5_dataset(eval_file, ["Yeval0000001.mp3", "Yeval0000002.mp3", "Yeval0000003.mp3", "Yeval0000005.mp3"],
                       clips, np.zeros((4, len(MIDS))), PackedBitsTargets(len(MIDS)))
    audio = run(copy, "--audio", "--workers", "1", "--min-seconds", "2")["splits"]["eval"]["audio"]
    assert [entry["clip"] for entry in audio["undecodable"]] == ["Yeval0000005.mp3"]
    assert [entry["clip"] for entry in audio["silent"]] == ["Yeval0000002.mp3"]
    assert [entry["clip"] for entry in audio["short"]] == ["Yeval0000003.mp3"]
    assert audio["short"][0]["seconds"] == pytest.approx(1.0, abs=0.1) and audio["clips_per_second"] > 0
    assert "Yeval0000005.mp3" in (copy["out"] / "report.json").read_text()


def test_a_malformed_row_or_unknown_label_is_an_error_naming_the_file_and_line(copy):
    bad = copy["lists"] / "eval_segments.csv"
    bad.write_text(HEADER + 'eval0000001,30.000,40.000,"/m/a"\neval0000002,30.000,"/m/a"\n')
    with pytest.raises(ValueError, match=r"eval_segments.csv' line 5: expected 4 columns"):
        run(copy)
    bad.write_text(HEADER + 'eval0000001,30.000,40.000,"/m/a"\neval0000002,30.000,40.000,"/m/a,/m/zz"\n')
    with pytest.raises(ValueError, match=r"eval_segments.csv' line 5: label '/m/zz' is not in the label file"):
        run(copy)
    bad.write_text(HEADER + 'eval0000001,thirty,40.000,"/m/a"\n')
    with pytest.raises(ValueError, match=r"line 4: start/end seconds are not numbers"):
        read_segment_list(bad, {"/m/a": 0}, 4)


def test_an_hdf5_file_of_another_layout_is_an_error_naming_it(copy):
    eval_file = copy["hdf5"] / "mp3" / "eval_segments_mp3.hdf"
    with h5py.File(eval_file, "w") as file:
        file["waveform"] = np.zeros((2, 100), np.float32)
    with pytest.raises(HDF5FormatError, match=r"eval_segments_mp3.hdf' lacks dataset"):
        run(copy)
