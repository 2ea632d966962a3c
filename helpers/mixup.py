"""Mixup of spectrogram batches: each example is mixed with a random partner of the same batch."""

from __future__ import annotations

import torch


def mixup_coefficients(batch_size: int, alpha: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """A random partner permutation and per-example weights lam ~ Beta(alpha, alpha), folded to
    max(lam, 1 - lam) so each example dominates its own mix. Draws from torch's global generator
    (seeded by the experiment's `seed`)."""
    if alpha <= 0:
        raise ValueError(f"mixup_alpha must be > 0, got {alpha}")
    partners = torch.randperm(batch_size)
    lam = torch.distributions.Beta(float(alpha), float(alpha)).sample((batch_size,))
    lam = torch.maximum(lam, 1.0 - lam)
    return partners.to(device), lam.to(device)


def mix(batch: torch.Tensor, partners: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """lam * batch + (1 - lam) * batch[partners], with lam broadcast over all but the first axis."""
    weight = lam.to(batch.dtype).reshape(-1, *([1] * (batch.dim() - 1)))
    return batch * weight + batch[partners] * (1.0 - weight)
