"""helpers.data.report: the comparison of one split, per-class coverage and the least covered classes."""
import numpy as np
import pytest

from helpers.data import Label, PackedBitsTargets, encode_mp3, write_hdf5_dataset
from helpers.data.report import ClipList, class_coverage, compare_split, lowest_coverage
from tests.helpers.data.clips import SR, tone


def clip_list(rows, classes=3):
    labels = np.zeros((len(rows), classes), dtype=bool)
    for row, (_, chosen) in enumerate(rows):
        labels[row, chosen] = True
    return ClipList(np.array([clip.encode() for clip, _ in rows]), np.packbits(labels, axis=1), "list.csv")


def test_a_split_without_a_file_has_every_listed_clip_missing():
    compared = compare_split(clip_list([("a", [0]), ("b", [0, 1]), ("c", [2])]), None, 3)
    figures = compared["figures"]
    assert (figures["listed"], figures["present"], figures["missing"], figures["rows"]) == (3, 0, 3, 0)
    assert compared["listed_positives"].tolist() == [2, 1, 1] and compared["present_positives"].tolist() == [0, 0, 0]
    assert compared["ids"]["missing"].tolist() == [b"a", b"b", b"c"]


def test_a_clip_listed_twice_counts_once_with_its_first_rows_labels(tmp_path):
    listed = clip_list([("b", [1]), ("a", [0]), ("b", [2])])
    path = tmp_path / "split.hdf"
    write_hdf5_dataset(path, ["b.mp3", "a.mp3"], [encode_mp3(tone(440, 0.1), SR)] * 2,
                       np.array([[0, 1, 0], [1, 0, 0]]), PackedBitsTargets(3))
    compared = compare_split(listed, path, 3, chunk_rows=1)  # one row per chunk: the chunks add up
    figures = compared["figures"]
    assert (figures["listed"], figures["listed_rows"], figures["listed_duplicates"]) == (2, 3, 1)
    assert (figures["present"], figures["label_mismatch"], figures["duplicates"]) == (2, 0, 0)
    assert compared["listed_positives"].tolist() == [1, 1, 0]


def test_list_labels_of_another_width_are_refused_naming_the_list():
    with pytest.raises(ValueError, match="list.csv: labels must be packed rows of 2 bytes"):
        compare_split(clip_list([("a", [0])], classes=3), None, 12)


def test_lowest_coverage_leaves_out_unlisted_classes_and_breaks_ties_by_listed_positives():
    labels = [Label(index, f"/m/{index}", f"class {index}") for index in range(4)]
    classes = class_coverage(labels, np.array([4, 0, 2, 10]), np.array([2, 0, 1, 10]))
    assert [entry["coverage"] for entry in classes] == [0.5, None, 0.5, 1.0]
    assert [entry["index"] for entry in lowest_coverage(classes)] == [0, 2, 3]
    assert [entry["index"] for entry in lowest_coverage(classes, count=1)] == [0]
