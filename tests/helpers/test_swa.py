import pytest
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


def test_upstream_timing_averages_at_epoch_starts_and_never_the_final_weights():
    # AudioSet (swa_epoch_start=50, swa_freq=5, 130 epochs): after 49, 54, ..., 129 finished epochs
    audioset = SWACallback(swa_epoch_start=50, swa_freq=5)
    assert audioset.finished_epochs_averaged(130) == list(range(49, 130, 5))
    assert audioset.finished_epochs_averaged(130)[-1] == 129
    assert [epoch for epoch in range(130) if audioset.updates_in(epoch)] == list(range(49, 130, 5))
    # 10-epoch fine-tune (OpenMIC, ESC-50: swa_epoch_start=2, swa_freq=1): after 1, 2, ..., 9 epochs
    fine_tune = SWACallback(swa_epoch_start=2, swa_freq=1)
    assert fine_tune.finished_epochs_averaged(10) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    # FSD50K (10, 3, 50 epochs)
    assert SWACallback(10, 3).finished_epochs_averaged(50) == [9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45, 48]


def test_epoch_end_timing_averages_one_epoch_later_including_the_final_weights():
    callback = SWACallback(swa_epoch_start=2, swa_freq=1, snapshot="epoch_end")
    assert callback.finished_epochs_averaged(10) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert SWACallback(50, 5, snapshot="epoch_end").finished_epochs_averaged(130) == list(range(50, 131, 5))
    # 0-based epochs whose final weights join: after the 3rd, 5th, 7th epoch
    assert [epoch for epoch in range(8) if SWACallback(3, 2, snapshot="epoch_end").updates_in(epoch)] == [2, 4, 6]


def test_unknown_snapshot_timing_is_refused():
    with pytest.raises(ValueError, match="swa_snapshot='later'; allowed: epoch_start, epoch_end"):
        SWACallback(2, 1, snapshot="later")
