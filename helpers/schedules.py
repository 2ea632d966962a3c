"""Per-epoch learning-rate factors (multiplied with `lr` by `torch.optim.lr_scheduler.LambdaLR`).

The schedules are small callable objects rather than closures so that LambdaLR stores their settings in
its state_dict, and a resumed run continues with the same schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULE_MODES = ("exp_lin", "cos_cyc", "constant")


@dataclass
class ExpWarmupLinearDown:
    """exp(-5 (1 - e/warm_up_len)^2) warm-up over `warm_up_len` epochs (e clipped below at 0.5), flat,
    then a linear ramp from 1 down to `last_lr_value` over `ramp_down_len` epochs starting after epoch
    `ramp_down_start`, and `last_lr_value` from then on."""

    warm_up_len: int = 5
    ramp_down_start: int = 50
    ramp_down_len: int = 50
    last_lr_value: float = 0.01

    def warm_up(self, epoch: int) -> float:
        if epoch >= self.warm_up_len:
            return 1.0
        phase = 1.0 - max(epoch, 0.5) / self.warm_up_len
        return math.exp(-5.0 * phase * phase)

    def ramp_down(self, epoch: int) -> float:
        if epoch <= self.ramp_down_start:
            return 1.0
        if epoch - self.ramp_down_start < self.ramp_down_len:
            remaining = (self.ramp_down_len - (epoch - self.ramp_down_start)) / self.ramp_down_len
            return self.last_lr_value + (1.0 - self.last_lr_value) * remaining
        return self.last_lr_value

    def __call__(self, epoch: int) -> float:
        return self.warm_up(epoch) * self.ramp_down(epoch)


@dataclass
class CosineCycle:
    """Cosine cycles of `cycle_len` epochs between 1 and `last_lr_value` (starting half-way down a
    cycle's peak), held at `last_lr_value` once past the first cycle boundary after `ramp_down_start`."""

    cycle_len: int = 5
    ramp_down_start: int = 50
    last_lr_value: float = 0.01

    @property
    def hold_from(self) -> int:
        """The epoch after which the factor stays at `last_lr_value` (a multiple of `cycle_len`)."""
        return self.cycle_len + (self.ramp_down_start - 1) // self.cycle_len * self.cycle_len

    def __call__(self, epoch: int) -> float:
        if epoch > self.hold_from:
            return self.last_lr_value
        position = (epoch + self.cycle_len // 2) / self.cycle_len
        return self.last_lr_value + (1.0 - self.last_lr_value) * 0.5 * (math.cos(2.0 * math.pi * position) + 1.0)


@dataclass
class Constant:
    """Factor 1 at every epoch."""

    def __call__(self, epoch: int) -> float:
        return 1.0


def make_lr_lambda(schedule_mode: str = "exp_lin", warm_up_len: int = 5, ramp_down_start: int = 50,
                   ramp_down_len: int = 50, last_lr_value: float = 0.01):
    """The schedule named by `schedule_mode` (`exp_lin`, `cos_cyc` with cycle length `warm_up_len` as
    upstream, or `constant`)."""
    if schedule_mode == "exp_lin":
        return ExpWarmupLinearDown(warm_up_len, ramp_down_start, ramp_down_len, last_lr_value)
    if schedule_mode == "cos_cyc":
        return CosineCycle(warm_up_len, ramp_down_start, last_lr_value)
    if schedule_mode == "constant":
        return Constant()
    raise ValueError(f"schedule_mode={schedule_mode!r} is not a schedule; allowed: {', '.join(SCHEDULE_MODES)}")
