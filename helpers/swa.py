"""Stochastic weight averaging as PaSST uses it: a running average of the network's weights, kept next to
the network (both are validated and both are in every checkpoint); the learning rate is left alone."""

from __future__ import annotations

import copy
import logging

import pytorch_lightning as pl
import torch
from torch import nn

log = logging.getLogger(__name__)


class AveragedWeights(nn.Module):
    """A frozen copy of `net` holding the equal-weight running average of the snapshots given to `update`.

    The number of snapshots and the last epoch averaged are buffers, so they are saved and restored
    with the module's state_dict.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = copy.deepcopy(net).requires_grad_(False)
        self.register_buffer("n_averaged", torch.tensor(0, dtype=torch.long))
        self.register_buffer("last_epoch", torch.tensor(-1, dtype=torch.long))

    @property
    def active(self) -> bool:
        return int(self.n_averaged) > 0

    @torch.no_grad()
    def update(self, net: nn.Module, epoch: int) -> None:
        """Add the current weights of `net` to the average (buffers are copied)."""
        count = int(self.n_averaged)
        for averaged, current in zip(self.net.parameters(), net.parameters()):
            current = current.detach().to(averaged.device, averaged.dtype)
            if count == 0:
                averaged.copy_(current)
            else:
                averaged.add_((current - averaged) / (count + 1))
        for averaged, current in zip(self.net.buffers(), net.buffers()):
            averaged.copy_(current)
        self.n_averaged += 1
        self.last_epoch.fill_(epoch)

    def forward(self, x):
        return self.net(x)


SWA_SNAPSHOTS = ("epoch_start", "epoch_end")


class SWACallback(pl.Callback):
    """Fills `pl_module.swa` with snapshots of the network's weights, from `swa_epoch_start` on, every
    `swa_freq` epochs.

    snapshot="epoch_start" (upstream's timing): the weights are added at the *start* of each 0-based
    epoch e = swa_epoch_start - 1 + k * swa_freq below max_epochs, i.e. after e finished epochs (so
    after 49, 54, ..., 129 on AudioSet; the final weights never join). snapshot="epoch_end": after the
    training of 1-based epoch swa_epoch_start + k * swa_freq, before its validation (the final weights
    join when the schedule reaches them).

    The averaged network is validated on the epochs that updated it (upstream), or with
    `validate_every_epoch` on every epoch once it holds a snapshot; the callback tells the module through
    `pl_module.validate_swa`.
    """

    def __init__(self, swa_epoch_start: int = 50, swa_freq: int = 5, snapshot: str = "epoch_start",
                 validate_every_epoch: bool = False):
        if int(swa_epoch_start) < 1 or int(swa_freq) < 1:
            raise ValueError(f"swa_epoch_start and swa_freq must be >= 1, got {swa_epoch_start}, {swa_freq}")
        if snapshot not in SWA_SNAPSHOTS:
            raise ValueError(f"swa_snapshot={snapshot!r}; allowed: {', '.join(SWA_SNAPSHOTS)}")
        self.swa_epoch_start, self.swa_freq = int(swa_epoch_start), int(swa_freq)
        self.snapshot, self.validate_every_epoch = snapshot, bool(validate_every_epoch)

    def finished_epochs_averaged(self, max_epochs: int) -> list[int]:
        """How many training epochs had finished at each snapshot of a `max_epochs` run, in order."""
        if self.snapshot == "epoch_start":
            return list(range(self.swa_epoch_start - 1, max_epochs, self.swa_freq))
        return list(range(self.swa_epoch_start, max_epochs + 1, self.swa_freq))

    def updates_in(self, epoch: int) -> bool:
        """True if 0-based training epoch `epoch` adds a snapshot (at its start or at its end)."""
        finished = epoch if self.snapshot == "epoch_start" else epoch + 1
        first = self.swa_epoch_start - 1 if self.snapshot == "epoch_start" else self.swa_epoch_start
        return finished >= first and (finished - first) % self.swa_freq == 0

    def _update(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        swa = pl_module.swa
        if swa is None or not self.updates_in(epoch) or int(swa.last_epoch) >= epoch:
            return
        swa.update(pl_module.net, epoch)
        finished = epoch if self.snapshot == "epoch_start" else epoch + 1
        log.info("SWA: averaged the weights after %d finished epochs (%d snapshots)", finished, int(swa.n_averaged))

    def on_train_epoch_start(self, trainer, pl_module):
        if self.snapshot == "epoch_start":
            self._update(trainer, pl_module)

    def on_validation_epoch_start(self, trainer, pl_module):
        if trainer.state.fn != "fit" or trainer.sanity_checking:
            return
        if self.snapshot == "epoch_end":
            self._update(trainer, pl_module)
        swa = pl_module.swa
        pl_module.validate_swa = swa is not None and swa.active and (
            self.validate_every_epoch or self.updates_in(trainer.current_epoch))

    def on_train_epoch_end(self, trainer, pl_module):
        if self.snapshot == "epoch_end":
            self._update(trainer, pl_module)  # epochs without validation
