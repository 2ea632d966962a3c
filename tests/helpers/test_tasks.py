import pytest
import torch
import torch.nn.functional as F

from helpers.tasks import MaskedMultiLabel, MultiClass, MultiLabel


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
