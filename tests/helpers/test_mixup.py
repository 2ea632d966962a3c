import torch

from helpers.mixup import mix, mixup_coefficients


def test_mixup_changes_the_batch_and_mixes_targets_alike():
    torch.manual_seed(0)
    batch = torch.arange(4.0).reshape(4, 1, 1, 1).expand(4, 1, 2, 3).clone()
    targets = torch.eye(4)
    partners, lam = mixup_coefficients(4, alpha=0.3)
    assert sorted(partners.tolist()) == [0, 1, 2, 3]
    assert bool(((lam >= 0.5) & (lam <= 1.0)).all())
    mixed, mixed_targets = mix(batch, partners, lam), mix(targets, partners, lam)
    moved = partners != torch.arange(4)
    assert moved.any() and not torch.equal(mixed[moved], batch[moved])
    expected = lam * torch.arange(4.0) + (1 - lam) * partners.float()
    assert torch.allclose(mixed[:, 0, 0, 0], expected)
    # each example keeps weight lam on its own class and 1 - lam on its partner's
    assert torch.allclose(mixed_targets.sum(dim=1), torch.ones(4))
    assert torch.allclose(mixed_targets[torch.arange(4), torch.arange(4)][moved], lam[moved])


def test_mixup_follows_the_seed():
    torch.manual_seed(3)
    first = mixup_coefficients(8, 0.3)
    torch.manual_seed(3)
    second = mixup_coefficients(8, 0.3)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
