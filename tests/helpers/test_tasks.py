import pytest
import torch
import torch.nn.functional as F

from helpers.tasks import MaskedMultiLabel, MultiClass, MultiLabel


def test_masked_loss_ignores_unknown_labels():
    task = MaskedMultiLabel(2)
    target = torch.tensor([[0.9, 0.2, 1.0, 0.0]])  # label 0 known (positive), label 1 unknown
    labels, mask = task.split(target)
    assert labels.tolist() == [[1.0, 0.0]] and mask.tolist() == [[1.0, 0.0]]
    logits = torch.tensor([[2.0, -50.0]])
    expected = F.binary_cross_entropy_with_logits(torch.tensor(2.0), torch.tensor(1.0))
    assert task.per_clip_loss(logits, labels, mask).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="2 labels \\+ 2 mask"):
        task.split(torch.zeros(1, 3))


def test_masked_mixup_keeps_labels_known_in_either_clip():
    task = MaskedMultiLabel(2)
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
