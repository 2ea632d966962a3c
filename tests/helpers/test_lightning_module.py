import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from helpers.lightning_module import NonFiniteLossError, PaSSTModule, capture_rng_states, restore_rng_states
from helpers.swa import SWACallback
from helpers.tasks import MultiLabel
from models.passt import get_model
from models.preprocess import AugmentMelSTFT


def clips(count, samples=32000, value=None):
    """(waveform, name, target) items of one second; NaN waveforms when value is nan."""
    generator = torch.Generator().manual_seed(0)
    items = []
    for index in range(count):
        waveform = torch.randn(1, samples, generator=generator) * 0.1
        if value is not None:
            waveform.fill_(value)
        items.append((waveform, f"clip{index}", (torch.arange(3) == index % 3).float()))
    return items


def module(**options):
    net = get_model("passt_tiny", pretrained=False, n_classes=3, fstride=16, tstride=16, input_tdim=98)
    return PaSSTModule(net, AugmentMelSTFT(freqm=0, timem=0), MultiLabel(), lr=1e-3, **options)


def trainer(**options):
    options = {"max_epochs": 1, **options}
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, **options)


def test_nan_loss_stops_naming_the_step():
    with pytest.raises(NonFiniteLossError, match="epoch 0, step 0, batch 0"):
        trainer().fit(module(), DataLoader(clips(4, value=float("nan")), batch_size=2))


def test_nan_loss_skip_leaves_the_weights_alone():
    model = module(nonfinite_loss="skip")
    before = [parameter.detach().clone() for parameter in model.net.parameters()]
    trainer().fit(model, DataLoader(clips(4, value=float("nan")), batch_size=2))
    assert model.skipped_batches == 2
    assert all(torch.equal(a, b) for a, b in zip(before, model.net.parameters()))


def test_validation_reports_network_and_swa_metrics():
    model = module(with_swa=True, mixup_alpha=0.3)
    fit = trainer(max_epochs=2, callbacks=[SWACallback(swa_epoch_start=2, swa_freq=1, snapshot="epoch_end")])
    fit.fit(model, DataLoader(clips(6), batch_size=3), DataLoader(clips(6), batch_size=4))
    metrics = fit.callback_metrics
    assert {"ap", "roc", "val.loss", "swa_ap", "swa_roc", "swa_val.loss", "train.loss", "lr"} <= set(metrics)
    assert int(model.swa.n_averaged) == 1 and float(metrics["val.clips"]) == 6
    # one snapshot: the average equals the network, and so do their metrics
    assert float(metrics["swa_ap"]) == pytest.approx(float(metrics["ap"]))
    assert not model.net.head_dist.weight.requires_grad  # unused in forward, frozen for DDP


class ValidatedNetworks(pl.Callback):
    """The networks (prefixes) validated in each epoch, and the number of SWA snapshots then."""

    def __init__(self):
        self.epochs = []

    def on_validation_end(self, trainer, pl_module):
        self.epochs.append(([prefix for prefix, _ in pl_module._validated_networks()], int(pl_module.swa.n_averaged)))


@pytest.mark.parametrize("every_epoch, expected", [
    (False, [([""], 0), (["", "swa_"], 1), ([""], 1), (["", "swa_"], 2)]),  # upstream: update epochs only
    (True, [([""], 0), (["", "swa_"], 1), (["", "swa_"], 1), (["", "swa_"], 2)])])
def test_swa_weights_are_validated_on_update_epochs_unless_every_epoch(every_epoch, expected):
    # swa_epoch_start=2, swa_freq=2 over 4 epochs: snapshots at the start of epochs 1 and 3 (0-based)
    model, seen = module(with_swa=True), ValidatedNetworks()
    swa = SWACallback(swa_epoch_start=2, swa_freq=2, validate_every_epoch=every_epoch)
    trainer(max_epochs=4, num_sanity_val_steps=0, callbacks=[swa, seen]).fit(model, DataLoader(clips(4), batch_size=2),
                                                     DataLoader(clips(3), batch_size=3))
    assert seen.epochs == expected


def test_upstream_swa_snapshot_holds_the_weights_at_the_start_of_the_update_epoch():
    model, watcher = module(with_swa=True), WeightWatcher()
    trainer(max_epochs=2, callbacks=[SWACallback(swa_epoch_start=2, swa_freq=1), watcher]).fit(
        model, DataLoader(clips(4), batch_size=2))
    first_batch_of_epoch_1 = watcher.steps[2][1]  # weights before epoch 1's first step = after epoch 0
    assert int(model.swa.n_averaged) == 1
    assert all(torch.equal(a, b) for a, b in zip(model.swa.net.parameters(), first_batch_of_epoch_1))


class WeightWatcher(pl.Callback):
    """Copies of the network's parameters before and after every training batch."""

    def __init__(self):
        self.steps = []

    @staticmethod
    def weights(pl_module):
        return [parameter.detach().clone() for parameter in pl_module.net.parameters()]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.steps.append((batch_idx, self.weights(pl_module)))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps[-1] += (self.weights(pl_module),)


def test_skipped_nan_batches_change_neither_the_weights_nor_the_swa_average():
    model = module(nonfinite_loss="skip", with_swa=True)
    watcher = WeightWatcher()
    batches = DataLoader(clips(4) + clips(2, value=float("nan")) + clips(2), batch_size=2)  # batch 2 is NaN
    trainer(max_epochs=2, callbacks=[SWACallback(swa_epoch_start=1, swa_freq=1), watcher]).fit(model, batches)
    assert model.skipped_batches == 2 and int(model.swa.n_averaged) == 2
    for batch_idx, before, after in watcher.steps:
        unchanged = all(torch.equal(a, b) for a, b in zip(before, after))
        assert unchanged == (batch_idx == 2), batch_idx
    for parameter in [*model.net.parameters(), *model.swa.parameters()]:
        assert torch.isfinite(parameter).all()


def test_resuming_with_a_checkpoint_of_another_network_lists_the_differing_names(tmp_path):
    from helpers.trainer import AtomicCheckpointIO
    from models.weights import CheckpointError
    batches = DataLoader(clips(4), batch_size=2)
    first = trainer(plugins=[AtomicCheckpointIO()])
    first.fit(module(), batches)
    first.save_checkpoint(tmp_path / "three_classes.ckpt")
    net = get_model("passt_tiny", pretrained=False, n_classes=5, fstride=16, tstride=16, input_tdim=98)
    other = PaSSTModule(net, AugmentMelSTFT(freqm=0, timem=0), MultiLabel())
    with pytest.raises(CheckpointError, match=r"three_classes.ckpt does not fit the model: different shapes: "
                                              r"net.head.1.bias: checkpoint \(3,\) vs model \(5,\)"):
        trainer(max_epochs=2, plugins=[AtomicCheckpointIO()]).fit(other, batches,
                                                                   ckpt_path=tmp_path / "three_classes.ckpt")


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np
    states = capture_rng_states()
    torch.save({"rng_states": states}, tmp_path / "rng.pt")
    expected = (torch.rand(1).item(), np.random.rand(), random.random())
    restore_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True)["rng_states"])
    assert (torch.rand(1).item(), np.random.rand(), random.random()) == expected
