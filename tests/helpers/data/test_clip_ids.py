"""Clip ids, split fingerprints and the evaluation subset (helpers.data.clip_ids, restrict_to_ids)."""
from helpers.data import DataOptions
import logging

import h5py
import numpy as np
import pytest

from helpers.data import PackedBitsTargets, encode_mp3, make_evaluation_set, restrict_to_ids, write_hdf5_dataset
from helpers.data.clip_ids import clip_id, file_clip_ids, fingerprint, read_id_list
from tests.helpers.data.clips import SR, tone


@pytest.mark.parametrize("name, expected", [
    ("Y--4gqARaEJE.mp3", "--4gqARaEJE"),  # this project's and upstream's AudioSet names
    (b"Y--4gqARaEJE.mp3", "--4gqARaEJE"),
    ("Y--4gqARaEJE_30.000_40.000.mp3", "--4gqARaEJE"),  # with the segment's seconds
    ("Y--4gqARaEJE_30.000_40.000", "--4gqARaEJE"),  # (no extension: .000 is not one)
    ("--4gqARaEJE_30_40.wav", "--4gqARaEJE"),
    ("--4gqARaEJE", "--4gqARaEJE"),  # a bare YouTube id (a list's)
    ("YabcdefghiJ", "YabcdefghiJ"),  # an 11-character id that itself starts with Y
    ("dogs/bark 01.flac", "dogs/bark 01"),  # your own data's relative paths keep their folder
    ("cats\\bark 01.wav", "cats/bark 01"),
    ("1-100032-A-0.wav", "1-100032-A-0"),  # ESC-50
    ("64760.mp3", "64760"),  # FSD50K
    ("dog bark 3.mp3", "dog bark 3"),
])
def test_clip_id_rule(name, expected):
    assert clip_id(name) == expected


def test_fingerprint_is_stable_across_order_and_tells_other_clip_sets_apart():
    ids = np.array([b"a", b"bb", b"c", b"d"])
    assert fingerprint(ids) == fingerprint(ids[::-1]) == fingerprint(np.array(["c", "a", "d", "bb"], dtype="S2"))
    assert len(fingerprint(ids)) == 12
    assert fingerprint(ids[:3]) != fingerprint(ids)
    assert fingerprint(np.array([b"a", b"bb", b"c", b"c"])) != fingerprint(ids)
    assert fingerprint(np.array([b"ab", b"c"])) != fingerprint(np.array([b"a", b"bc"]))  # ids are delimited


def test_read_id_list_takes_ids_or_names_and_names_a_bad_line(tmp_path):
    good = tmp_path / "ids.txt"
    good.write_text("# the common subset\n--4gqARaEJE\n\nY-0Aa_1Bb2Cc.mp3  # a stored name works too\n"
                    "dogs/bark 01.wav\n")
    assert read_id_list(good).tolist() == [b"--4gqARaEJE", b"-0Aa_1Bb2Cc", b"dogs/bark 01"]
    bad = tmp_path / "bad.txt"
    bad.write_text("--4gqARaEJE\n--4gqARaEJE, 30.000, 40.000\n")
    with pytest.raises(ValueError, match=r"bad.txt' line 2: expected one clip id"):
        read_id_list(bad)
    with pytest.raises(FileNotFoundError, match="nothing.txt"):
        read_id_list(tmp_path / "nothing.txt")


@pytest.fixture
def named_file(tmp_path):
    """Six clips: tones 200..1200 Hz named Y<id>.mp3 (clip 4 stored twice, as rows 4 and 5)."""
    names = ["Yaaaaaaaaaa0.mp3", "Ybbbbbbbbbb1.mp3", "Ycccccccccc2.mp3", "Ydddddddddd3.mp3", "Yeeeeeeeeee4.mp3",
             "Yeeeeeeeeee4.mp3"]
    targets = np.eye(6, dtype=np.float32)
    path = tmp_path / "eval.hdf"
    write_hdf5_dataset(path, names, [encode_mp3(tone(200.0 * (i + 1), 0.5), SR) for i in range(6)], targets,
                       PackedBitsTargets(6))
    return path


def test_file_clip_ids_and_dataset_fingerprint(named_file):
    ids = file_clip_ids(named_file)
    assert ids.tolist() == [b"aaaaaaaaaa0", b"bbbbbbbbbb1", b"cccccccccc2", b"dddddddddd3", b"eeeeeeeeee4",
                            b"eeeeeeeeee4"]
    assert file_clip_ids(named_file, np.array([3, 0])).tolist() == [b"dddddddddd3", b"aaaaaaaaaa0"]
    dataset = make_evaluation_set(named_file, 6, DataOptions(clip_length=0.5))
    assert dataset.fingerprint() == fingerprint(ids)
    assert make_evaluation_set(named_file, 6, DataOptions(clip_length=0.5), indices=[0, 1]).fingerprint() == fingerprint(ids[:2])


def test_restrict_to_ids_scores_exactly_the_listed_clips_and_names_the_missing(named_file, tmp_path, caplog):
    listed = tmp_path / "subset.txt"
    listed.write_text("cccccccccc2\neeeeeeeeee4\nYaaaaaaaaaa0.mp3\nzzzzzzzzzz9\nyyyyyyyyyy8\n")
    full = make_evaluation_set(named_file, 6, DataOptions(clip_length=0.5))
    with caplog.at_level(logging.WARNING):
        subset = restrict_to_ids(full, listed)
    assert len(subset) == 4 and len(full) == 6  # both stored rows of eeeeeeeeee4; the original is untouched
    assert [subset[i][1] for i in range(4)] == ["Yaaaaaaaaaa0.mp3", "Ycccccccccc2.mp3", "Yeeeeeeeeee4.mp3",
                                                "Yeeeeeeeeee4.mp3"]
    assert [int(subset[i][2].argmax()) for i in range(4)] == [0, 2, 4, 5]  # the rows' own targets
    assert subset.subset.listed == 5 and subset.subset.missing_names() == ["yyyyyyyyyy8", "zzzzzzzzzz9"]
    assert "2 of its 5 ids are not in" in caplog.text and "yyyyyyyyyy8, zzzzzzzzzz9" in caplog.text
    assert subset.fingerprint() == fingerprint(np.array([b"aaaaaaaaaa0", b"cccccccccc2", b"eeeeeeeeee4",
                                                         b"eeeeeeeeee4"]))
    rows = restrict_to_ids(make_evaluation_set(named_file, 6, DataOptions(clip_length=0.5), indices=[2, 3, 4]), listed)
    assert [rows[i][1] for i in range(len(rows))] == ["Ycccccccccc2.mp3", "Yeeeeeeeeee4.mp3"]  # within `indices`


def test_a_subset_matching_no_clip_is_an_error_naming_both_files(named_file, tmp_path):
    listed = tmp_path / "other_lab.txt"
    listed.write_text("zzzzzzzzzz9\n")
    with pytest.raises(ValueError, match=r"other_lab.txt.*none of its 1 ids.*eval.hdf"):
        restrict_to_ids(make_evaluation_set(named_file, 6, DataOptions(clip_length=0.5)), listed)


def test_file_without_names_is_a_format_error(tmp_path):
    path = tmp_path / "odd.hdf"
    with h5py.File(path, "w") as file:
        file["waveform"] = np.zeros((2, 10))
    with pytest.raises(ValueError, match=r"odd.hdf.*lacks dataset 'audio_name'"):
        file_clip_ids(path)
