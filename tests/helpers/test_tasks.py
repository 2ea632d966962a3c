import pytest
import torch
import torch.nn.functional as F

from helpers.mixup import mix
from helpers.tasks import Distilled, MaskedMultiLabel, MultiClass, MultiLabel


def upstream_openmic_loss(logits, targets, partners=None, lam=None):
    """Upstream's OpenMIC training loss, written out: (mask * BCE).mean() over batch x 20 labels, labels
    binarised at 0.5, under mixup the labels mixed and the first clip's mask kept."""
    mask, labels = targets[:, 20:], (targets[:, :20] > 0.5).float()
    if partners is not None:
        labels = labels * lam.reshape(-1, 1) + labels[partners] * (1.0 - lam.reshape(-1, 1))
    return (mask * F.binary_cross_entropy_with_logits(logits, labels, reduction="none")).mean()


@pytest.mark.parametrize("with_mixup", [False, True])
def test_default_openmic_loss_equals_upstreams_formula(with_mixup):
    generator = torch.Generator().manual_seed(0)
    targets = torch.cat([torch.rand(6, 20, generator=generator),
                         (torch.rand(6, 20, generator=generator) > 0.6).float()], dim=1)
    logits = torch.randn(6, 20, generator=generator)
    partners, lam = torch.tensor([3, 2, 5, 0, 1, 4]), torch.rand(6, generator=generator)
    task = MaskedMultiLabel(20)
    labels, mask = task.split(targets)
    if with_mixup:
        labels, mask = task.mix(labels, mask, partners, lam)
    ours = task.per_clip_loss(logits, labels, mask).mean()
    expected = upstream_openmic_loss(logits, targets, *((partners, lam) if with_mixup else ()))
    assert ours.item() == pytest.approx(expected.item(), rel=1e-6)
    per_clip = MaskedMultiLabel(20, "per_clip")
    labels, mask = per_clip.split(targets)
    if with_mixup:
        labels, mask = per_clip.mix(labels, mask, partners, lam)
    assert per_clip.per_clip_loss(logits, labels, mask).mean().item() != pytest.approx(expected.item(), rel=1e-3)


def test_unknown_openmic_loss_is_refused():
    with pytest.raises(ValueError, match="openmic_loss='mean'; allowed: batch, per_clip"):
        MaskedMultiLabel(20, "mean")


def test_per_clip_masked_loss_averages_over_known_labels_only():
    task = MaskedMultiLabel(2, "per_clip")
    target = torch.tensor([[0.9, 0.2, 1.0, 0.0]])  # label 0 known (positive), label 1 unknown
    labels, mask = task.split(target)
    assert labels.tolist() == [[1.0, 0.0]] and mask.tolist() == [[1.0, 0.0]]
    logits = torch.tensor([[2.0, -50.0]])
    expected = F.binary_cross_entropy_with_logits(torch.tensor(2.0), torch.tensor(1.0))
    assert task.per_clip_loss(logits, labels, mask).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="2 labels \\+ 2 mask"):
        task.split(torch.zeros(1, 3))


def test_per_clip_masked_mixup_keeps_labels_known_in_either_clip():
    task = MaskedMultiLabel(2, "per_clip")
    labels, mask = torch.tensor([[1.0, 1.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mixed, mixed_mask = task.mix(labels, mask, torch.tensor([1, 0]), torch.tensor([0.75, 0.75]))
    assert mixed_mask.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert mixed.tolist() == [[0.75, 0.25], [0.25, 0.75]]  # unknown labels count as 0


def test_masked_metrics_use_known_labels_only():
    task = MaskedMultiLabel(1)
    scores = torch.tensor([[0.9], [0.8], [0.1]])
    labels, mask = torch.tensor([[1.0], [0.0], [1.0]]), torch.tensor([[1.0], [0.0], [0.0]])
    assert task.metrics(scores, labels, mask)["ap"] == pytest.approx(1.0)
    assert MultiLabel().metrics(scores, labels, None)["ap"] < 1.0


def test_multiclass_soft_targets_equal_mixed_cross_entropies():
    task = MultiClass()
    logits = torch.tensor([[1.0, 0.0, -1.0]])
    soft = torch.tensor([[0.7, 0.3, 0.0]])
    expected = 0.7 * F.cross_entropy(logits, torch.tensor([0])) + 0.3 * F.cross_entropy(logits, torch.tensor([1]))
    assert task.per_clip_loss(logits, soft, None).item() == pytest.approx(expected.item())
    assert task.metrics(torch.softmax(logits, 1), soft, None) == {"acc": 1.0}


def bce(logits, targets):
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=1)


def soft_ce(logits, targets):
    return -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1)


def kd_batch(task_width, classes, seed=0):
    """Fixed logits, task targets, teacher targets and has-teacher flags (clip 3 has no teacher row)."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, classes, generator=generator)
    own = (torch.rand(4, task_width, generator=generator) > 0.5).float()
    teacher = torch.rand(4, classes, generator=generator)
    flag = torch.tensor([1.0, 1.0, 1.0, 0.0])
    return logits, own, teacher, flag


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.9, 1.0])
@pytest.mark.parametrize("with_mixup", [False, True])
def test_kd_loss_of_multilabel_tasks_is_the_weighted_sum_of_label_and_teacher_bce(weight, with_mixup):
    logits, labels, teacher, flag = kd_batch(5, 5)
    task = Distilled(MultiLabel(), classes=5, teacher_weight=weight)
    got_labels, mask = task.split(torch.cat([labels, teacher, flag[:, None]], dim=1))
    partners, lam = torch.tensor([1, 0, 3, 2]), torch.tensor([0.9, 0.6, 0.7, 0.8])
    if with_mixup:
        got_labels, mask = task.mix(got_labels, mask, partners, lam)
        labels, teacher = mix(labels, partners, lam), mix(teacher, partners, lam)
        flag = torch.minimum(flag, flag[partners])  # clips 2 and 3 mixed with a clip without teacher
    expected = torch.where(flag > 0.5, (1 - weight) * bce(logits, labels) + weight * bce(logits, teacher),
                           bce(logits, labels))
    torch.testing.assert_close(task.per_clip_loss(logits, got_labels, mask), expected)
    if weight == 0.0:  # plain training
        torch.testing.assert_close(task.per_clip_loss(logits, got_labels, mask), bce(logits, labels))


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("with_mixup", [False, True])
def test_kd_loss_of_esc50_uses_soft_cross_entropy_on_the_teachers_softmax(weight, with_mixup):
    logits, _, _, flag = kd_batch(5, 5)
    labels = torch.eye(5)[[0, 2, 4, 1]]
    teacher = torch.softmax(torch.randn(4, 5, generator=torch.Generator().manual_seed(3)) / 2.0, 1)
    task = Distilled(MultiClass(), classes=5, teacher_weight=weight)
    got_labels, mask = task.split(torch.cat([labels, teacher, flag[:, None]], dim=1))
    partners, lam = torch.tensor([3, 2, 1, 0]), torch.tensor([0.55, 0.75, 0.95, 0.65])
    if with_mixup:
        got_labels, mask = task.mix(got_labels, mask, partners, lam)
        labels, teacher, flag = mix(labels, partners, lam), mix(teacher, partners, lam), flag * flag[partners]
    expected = torch.where(flag > 0.5, (1 - weight) * soft_ce(logits, labels) + weight * soft_ce(logits, teacher),
                           soft_ce(logits, labels))
    torch.testing.assert_close(task.per_clip_loss(logits, got_labels, mask), expected)


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_kd_loss_of_openmic_masks_the_label_term_only(weight):
    logits, own, teacher, flag = kd_batch(4, 2)
    targets = torch.cat([own, teacher, flag[:, None]], dim=1)  # 2 labels + 2 mask values, 2 teacher, flag
    task = Distilled(MaskedMultiLabel(2), classes=2, teacher_weight=weight, target_width=4)
    labels, mask = task.split(targets)
    known = own[:, 2:]
    label_term = (known * F.binary_cross_entropy_with_logits(logits, own[:, :2], reduction="none")).mean(dim=1)
    expected = torch.where(flag > 0.5, (1 - weight) * label_term + weight * bce(logits, teacher), label_term)
    torch.testing.assert_close(task.per_clip_loss(logits, labels, mask), expected)


def test_evaluation_targets_without_teacher_columns_are_the_tasks_own():
    task = Distilled(MultiLabel(), classes=3, teacher_weight=0.9)
    labels, mask = task.split(torch.ones(2, 3))
    assert mask is None and labels.shape == (2, 3)
    assert task.monitor == "ap" and task.metrics(torch.rand(4, 3), torch.eye(3)[[0, 1, 2, 0]], None)["ap"] >= 0
    with pytest.raises(ValueError, match="expected targets of 3 values"):
        task.split(torch.ones(2, 5))
    with pytest.raises(ValueError, match="teacher_weight must lie in"):
        Distilled(MultiLabel(), 3, 1.5)
