import math

import pytest
import torch

from helpers.schedules import CosineCycle, ExpWarmupLinearDown, make_lr_lambda


def test_exp_warmup_linear_down_values():
    schedule = ExpWarmupLinearDown(warm_up_len=4, ramp_down_start=10, ramp_down_len=5, last_lr_value=0.1)
    assert schedule(0) == pytest.approx(math.exp(-5 * (1 - 0.5 / 4) ** 2))
    assert schedule(2) == pytest.approx(math.exp(-5 * 0.25))
    assert schedule(4) == 1.0 and schedule(10) == 1.0
    assert schedule(12) == pytest.approx(0.1 + 0.9 * 3 / 5)
    assert schedule(15) == pytest.approx(0.1) and schedule(100) == pytest.approx(0.1)


def test_cosine_cycle_values():
    schedule = CosineCycle(cycle_len=4, ramp_down_start=9, last_lr_value=0.0)
    assert schedule.hold_from == 12
    assert schedule(0) == pytest.approx(0.0)  # starts at the trough: cos(pi) -> 0
    assert schedule(2) == pytest.approx(1.0)  # peak half a cycle later
    assert schedule(13) == 0.0


def test_schedule_survives_lambda_lr_state_dict():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, make_lr_lambda("exp_lin", 2, 3, 2, 0.5))
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    fresh = torch.optim.lr_scheduler.LambdaLR(torch.optim.AdamW([parameter], lr=1.0), make_lr_lambda())
    fresh.load_state_dict(state)
    assert fresh.lr_lambdas[0] == ExpWarmupLinearDown(2, 3, 2, 0.5)
    assert fresh.last_epoch == 4


def test_unknown_mode_names_allowed_values():
    with pytest.raises(ValueError, match="schedule_mode='step'.*exp_lin, cos_cyc, constant"):
        make_lr_lambda("step")
