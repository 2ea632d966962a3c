"""Label vocabularies: multi-hot targets from label names."""
import numpy as np
import pytest

from helpers.data.labels import multi_hot

INDEX_OF = {"/m/dog": 0, "/m/cat": 2}


def test_multi_hot_sets_one_per_named_class():
    target = multi_hot(["/m/cat", "/m/dog", "/m/cat"], INDEX_OF, 4, "clip a", "labels.csv")
    assert target.dtype == np.float32 and target.tolist() == [1, 0, 1, 0]
    assert multi_hot([], INDEX_OF, 4, "clip b", "labels.csv").tolist() == [0, 0, 0, 0]


def test_an_unknown_label_names_the_clip_the_label_and_the_vocabulary():
    with pytest.raises(ValueError, match=r"clip 7: label '/m/cow' is not in vocabulary\.csv"):
        multi_hot(["/m/dog", "/m/cow"], INDEX_OF, 4, "clip 7", "vocabulary.csv")
