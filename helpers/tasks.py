"""What a dataset's targets mean: the loss, how mixup mixes them, and the validation metrics.

- `MultiLabel` (AudioSet, FSD50K): BCE with logits, metrics `ap` (macro mAP) and `roc` (macro ROC-AUC).
- `MaskedMultiLabel` (OpenMIC): targets are `n_labels` label values followed by `n_labels` known-label
  mask values; labels are binarised at 0.5, loss and metrics use known labels only. Its loss is upstream's
  by default (`normalization="batch"`) or normalised per clip (`"per_clip"`).
- `MultiClass` (ESC-50): one-hot (or mixed) targets, cross-entropy on probabilities, metric `acc`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from helpers import metrics
from helpers.mixup import mix


class MultiLabel:
    """Independent sigmoid outputs per class."""

    monitor = "ap"  # the metric that picks the best checkpoint (higher is better)

    def split(self, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(labels, mask) of a target batch; mask None means every label is known."""
        return target, None

    def mix(self, labels, mask, partners, lam):
        return mix(labels, partners, lam), mask

    def per_clip_loss(self, logits: torch.Tensor, labels: torch.Tensor, mask) -> torch.Tensor:
        """(B,) loss per clip: BCE averaged over (known) classes."""
        loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
        if mask is None:
            return loss.mean(dim=1)
        return (loss * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float())

    def metrics(self, scores: torch.Tensor, labels: torch.Tensor, mask) -> dict[str, float]:
        scores, labels = scores.cpu().numpy(), labels.cpu().numpy()
        weights = None if mask is None else mask.cpu().numpy()
        return {"ap": metrics.mean_average_precision(scores, labels, weights),
                "roc": metrics.mean_roc_auc(scores, labels, weights)}


class MaskedMultiLabel(MultiLabel):
    """Multi-label targets with a known-label mask appended (width 2 * n_labels).

    normalization="batch" (upstream): the loss is mean(mask * BCE) over the whole batch x labels, so each
    clip's `per_clip_loss` is sum(mask * BCE) / n_labels; the mask is the stored one (waveform mixup mixes
    it like the labels); spectrogram mixup mixes the labels and keeps the first clip's mask.
    normalization="per_clip": each clip's BCE is averaged over its own known labels; the mask is binarised,
    unknown labels count as 0 in a mix, and a label is known in a mix if it is known in either clip.
    """

    NORMALIZATIONS = ("batch", "per_clip")

    def __init__(self, n_labels: int, normalization: str = "batch"):
        if normalization not in self.NORMALIZATIONS:
            raise ValueError(f"openmic_loss={normalization!r}; allowed: {', '.join(self.NORMALIZATIONS)}")
        self.n_labels = int(n_labels)
        self.normalization = normalization

    def split(self, target):
        if target.shape[-1] != 2 * self.n_labels:
            raise ValueError(f"expected targets of {self.n_labels} labels + {self.n_labels} mask values, "
                             f"got width {target.shape[-1]}")
        labels, mask = target[:, :self.n_labels], target[:, self.n_labels:]
        if self.normalization == "batch":
            return (labels > 0.5).float(), mask.float()
        return (labels > 0.5).float(), (mask > 0.5).float()

    def mix(self, labels, mask, partners, lam):
        if self.normalization == "batch":
            return mix(labels, partners, lam), mask
        return mix(labels * mask, partners, lam), torch.maximum(mask, mask[partners])

    def per_clip_loss(self, logits, labels, mask):
        loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none") * mask
        if self.normalization == "batch":
            return loss.mean(dim=1)
        return loss.sum(dim=1) / mask.sum(dim=1).clamp(min=1)

    def metrics(self, scores, labels, mask):
        return super().metrics(scores, labels, None if mask is None else (mask > 0.5).float())


class MultiClass:
    """One class per clip; targets are (possibly mixed) class probabilities."""

    monitor = "acc"

    def split(self, target):
        return target, None

    def mix(self, labels, mask, partners, lam):
        return mix(labels, partners, lam), mask

    def per_clip_loss(self, logits, labels, mask):
        return F.cross_entropy(logits.float(), labels.float(), reduction="none")

    def scores(self, logits):
        return torch.softmax(logits.float(), dim=1)

    def metrics(self, scores, labels, mask):
        return {"acc": metrics.accuracy(scores.cpu().numpy(), labels.cpu().numpy())}
