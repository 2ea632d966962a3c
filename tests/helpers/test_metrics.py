import numpy as np
import pytest

from helpers.metrics import (accuracy, average_precision, mean_average_precision, mean_roc_auc, per_class,
                             roc_auc)


def test_average_precision_by_hand():
    # ranking: + - + -  -> precision at the positives: 1/1, 2/3 -> AP = (1 + 2/3) / 2
    assert average_precision([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)
    # a tie between a positive and a negative is one threshold: precision 1/2 at recall 1
    assert average_precision([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    assert np.isnan(average_precision([0.3, 0.2], [0, 0]))


def test_roc_auc_by_hand():
    # pairs (pos, neg): (0.9,0.8) ok, (0.9,0.1) ok, (0.7,0.8) wrong, (0.7,0.1) ok -> 3/4
    assert roc_auc([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0]) == pytest.approx(0.75)
    assert roc_auc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)  # ties count half
    assert np.isnan(roc_auc([0.5, 0.4], [1, 1]))


def test_weights_remove_clips():
    scores, positive = [0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0]
    # dropping the misranked negative (weight 0) makes the ranking perfect
    assert average_precision(scores, positive, [1, 0, 1, 1]) == pytest.approx(1.0)
    assert roc_auc(scores, positive, [1, 0, 1, 1]) == pytest.approx(1.0)


def test_macro_means_skip_classes_without_positives():
    scores = np.array([[0.9, 0.2], [0.1, 0.3], [0.8, 0.1]])
    targets = np.array([[1, 0], [0, 0], [0, 0]])
    assert mean_average_precision(scores, targets) == pytest.approx(1.0)
    assert per_class(roc_auc, scores, targets)[1] != per_class(roc_auc, scores, targets)[1]  # NaN
    assert mean_roc_auc(scores, targets) == pytest.approx(1.0)


def test_matches_random_reference_ordering_invariance():
    rng = np.random.default_rng(0)
    scores = rng.random((50, 4)).round(1)  # many ties
    targets = rng.random((50, 4)) > 0.6
    order = rng.permutation(50)
    assert mean_average_precision(scores, targets) == pytest.approx(mean_average_precision(scores[order], targets[order]))
    assert mean_roc_auc(scores, targets) == pytest.approx(mean_roc_auc(scores[order], targets[order]))


def test_accuracy():
    assert accuracy([[0.1, 0.9], [0.8, 0.2], [0.6, 0.4]], [[0, 1], [0, 1], [1, 0]]) == pytest.approx(2 / 3)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="clips, classes"):
        mean_average_precision(np.zeros((3, 2)), np.zeros((3, 3)))
