"""Evaluation metrics on gathered predictions: macro average precision, macro ROC-AUC, accuracy.

Average precision and ROC-AUC follow the step/trapezoid definitions of scikit-learn: tied scores form
one threshold. An optional weight per (clip, class) -- OpenMIC's known-label mask -- weighs each
clip's contribution to its class; weight 0 removes it. Classes without a positive (for ROC-AUC also
without a negative) have no value and are left out of the macro mean.
"""

from __future__ import annotations

import numpy as np


def _threshold_counts(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray):
    """Weighted true/false positive counts when predicting positive at each distinct score, high to low."""
    order = np.argsort(-scores, kind="stable")
    scores, positive, weights = scores[order], positive[order], weights[order]
    true_positives = np.cumsum(positive * weights)
    false_positives = np.cumsum((1.0 - positive) * weights)
    last_of_each_score = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    return true_positives[last_of_each_score], false_positives[last_of_each_score]


def average_precision(scores, positive, weights=None) -> float:
    """AP of one class: sum over thresholds of (recall increase) * precision; NaN without positives."""
    scores, positive = np.asarray(scores, np.float64), (np.asarray(positive) > 0.5).astype(np.float64)
    weights = np.ones_like(scores) if weights is None else np.asarray(weights, np.float64)
    keep = weights > 0
    scores, positive, weights = scores[keep], positive[keep], weights[keep]
    if not (positive * weights).sum() > 0:
        return float("nan")
    true_positives, false_positives = _threshold_counts(scores, positive, weights)
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(scores, positive, weights=None) -> float:
    """Area under the ROC curve of one class; NaN unless it has positives and negatives."""
    scores, positive = np.asarray(scores, np.float64), (np.asarray(positive) > 0.5).astype(np.float64)
    weights = np.ones_like(scores) if weights is None else np.asarray(weights, np.float64)
    keep = weights > 0
    scores, positive, weights = scores[keep], positive[keep], weights[keep]
    if not ((positive * weights).sum() > 0 and ((1 - positive) * weights).sum() > 0):
        return float("nan")
    true_positives, false_positives = _threshold_counts(scores, positive, weights)
    tpr = np.r_[0.0, true_positives / true_positives[-1]]
    fpr = np.r_[0.0, false_positives / false_positives[-1]]
    return float(np.trapezoid(tpr, fpr))


def per_class(metric, scores, targets, weights=None) -> np.ndarray:
    """`metric` of every column of (clips, classes) arrays."""
    scores, targets = np.asarray(scores), np.asarray(targets)
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ValueError(f"scores and targets must both be (clips, classes), got {scores.shape} and {targets.shape}")
    return np.array([metric(scores[:, c], targets[:, c], None if weights is None else np.asarray(weights)[:, c])
                     for c in range(scores.shape[1])])


def macro_mean(values: np.ndarray) -> float:
    """Mean over the classes that have a value (NaN when none has)."""
    values = np.asarray(values, np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def mean_average_precision(scores, targets, weights=None) -> float:
    """Macro mAP over classes with at least one positive."""
    return macro_mean(per_class(average_precision, scores, targets, weights))


def mean_roc_auc(scores, targets, weights=None) -> float:
    """Macro ROC-AUC over classes with positives and negatives."""
    return macro_mean(per_class(roc_auc, scores, targets, weights))


def accuracy(scores, targets) -> float:
    """Fraction of clips whose highest score is at their target's highest value (one-hot or soft)."""
    scores, targets = np.asarray(scores), np.asarray(targets)
    if len(scores) == 0:
        return float("nan")
    return float(np.mean(scores.argmax(axis=1) == targets.argmax(axis=1)))
