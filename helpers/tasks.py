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

    def logits(self, output) -> torch.Tensor:
        """The logits of the network's output pair (logits, features)."""
        return output[0]

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

    def soft_target_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B,) BCE against soft targets (e.g. the teacher's sigmoid outputs), averaged over all classes."""
        return MultiLabel.per_clip_loss(self, logits, targets, None)

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

    def logits(self, output) -> torch.Tensor:
        return output[0]

    def split(self, target):
        return target, None

    def mix(self, labels, mask, partners, lam):
        return mix(labels, partners, lam), mask

    def per_clip_loss(self, logits, labels, mask):
        return F.cross_entropy(logits.float(), labels.float(), reduction="none")

    def soft_target_loss(self, logits, targets):
        """(B,) cross-entropy against soft targets (e.g. the teacher's softmax outputs)."""
        return self.per_clip_loss(logits, targets, None)

    def scores(self, logits):
        return torch.softmax(logits.float(), dim=1)

    def metrics(self, scores, labels, mask):
        return {"acc": metrics.accuracy(scores.cpu().numpy(), labels.cpu().numpy())}


class Distilled:
    """Knowledge distillation on top of a task: targets carry the teacher's targets of `classes` classes and
    a has-teacher flag after the task's own values (`helpers.data.teacher.TeacherTargets`); evaluation targets
    without them are plain task targets.

    Per clip: (1 - w) * task loss(labels) + w * task loss(teacher targets) where the clip has a teacher row,
    the task loss alone where it has none (w = `teacher_weight`: 0 is plain training, 1 the teacher alone).
    The mask of a masked task applies to the label term only. Mixup mixes the teacher's targets as the labels;
    a mix has a teacher target only if both clips have one.
    """

    def __init__(self, task, classes: int, teacher_weight: float, target_width: int | None = None):
        if not 0.0 <= teacher_weight <= 1.0:
            raise ValueError(f"kd.teacher_weight must lie in [0, 1], got {teacher_weight}")
        self.task, self.classes, self.teacher_weight = task, int(classes), float(teacher_weight)
        self.target_width = int(target_width if target_width is not None else classes)  # the task's own values
        self.monitor = task.monitor

    def __getattr__(self, name):  # n_labels and the like come from the task
        return getattr(self.__dict__["task"], name)

    def split(self, target):
        if target.shape[-1] == self.target_width:
            return self.task.split(target)
        if target.shape[-1] != self.target_width + self.classes + 1:
            raise ValueError(f"expected targets of {self.target_width} values (+ {self.classes} teacher targets "
                             f"and a flag in training), got width {target.shape[-1]}")
        labels, mask = self.task.split(target[:, :self.target_width])
        return labels, (mask, target[:, self.target_width:-1], target[:, -1])

    def mix(self, labels, mask, partners, lam):
        if not isinstance(mask, tuple):
            return self.task.mix(labels, mask, partners, lam)
        own_mask, teacher, has_teacher = mask
        labels, own_mask = self.task.mix(labels, own_mask, partners, lam)
        return labels, (own_mask, mix(teacher, partners, lam), torch.minimum(has_teacher, has_teacher[partners]))

    def per_clip_loss(self, logits, labels, mask):
        if not isinstance(mask, tuple):
            return self.task.per_clip_loss(logits, labels, mask)
        own_mask, teacher, has_teacher = mask
        label_term = self.task.per_clip_loss(logits, labels, own_mask)
        teacher_term = self.task.soft_target_loss(logits, teacher)
        distilled = (1.0 - self.teacher_weight) * label_term + self.teacher_weight * teacher_term
        return torch.where(has_teacher > 0.5, distilled, label_term)

    def scores(self, logits):
        return self.task.scores(logits)

    def metrics(self, scores, labels, mask):
        return self.task.metrics(scores, labels, None if isinstance(mask, tuple) else mask)
