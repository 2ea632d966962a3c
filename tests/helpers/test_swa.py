import torch
from torch import nn

from helpers.swa import AveragedWeights, SWACallback


def test_running_average_of_snapshots():
    net = nn.Linear(2, 1)
    averaged = AveragedWeights(net)
    assert not averaged.active and not any(p.requires_grad for p in averaged.parameters())
    snapshots = []
    for epoch, value in enumerate([1.0, 2.0, 6.0]):
        with torch.no_grad():
            net.weight.fill_(value)
        averaged.update(net, epoch)
        snapshots.append(value)
    assert averaged.active and int(averaged.n_averaged) == 3 and int(averaged.last_epoch) == 2
    assert torch.allclose(averaged.net.weight, torch.full_like(net.weight, sum(snapshots) / 3))
    restored = AveragedWeights(nn.Linear(2, 1))
    restored.load_state_dict(averaged.state_dict())
    assert int(restored.n_averaged) == 3 and torch.equal(restored.net.weight, averaged.net.weight)


def test_schedule_of_averaging_epochs():
    callback = SWACallback(swa_epoch_start=3, swa_freq=2)
    # 0-based epochs whose final weights join: after the 3rd, 5th, 7th epoch
    assert [epoch for epoch in range(8) if callback.averages_after(epoch)] == [2, 4, 6]
