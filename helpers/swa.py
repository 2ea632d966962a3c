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


class SWACallback(pl.Callback):
    """Averages `pl_module.swa` weights after training epoch `swa_epoch_start` (1-based) and every
    `swa_freq` epochs after it, before that epoch's validation (so validation sees the new average)."""

    def __init__(self, swa_epoch_start: int = 50, swa_freq: int = 5):
        if int(swa_epoch_start) < 1 or int(swa_freq) < 1:
            raise ValueError(f"swa_epoch_start and swa_freq must be >= 1, got {swa_epoch_start}, {swa_freq}")
        self.swa_epoch_start, self.swa_freq = int(swa_epoch_start), int(swa_freq)

    def averages_after(self, epoch: int) -> bool:
        """True if the weights after 0-based training epoch `epoch` join the average."""
        finished = epoch + 1
        return finished >= self.swa_epoch_start and (finished - self.swa_epoch_start) % self.swa_freq == 0

    def _update(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        swa = pl_module.swa
        if swa is None or not self.averages_after(epoch) or int(swa.last_epoch) >= epoch:
            return
        swa.update(pl_module.net, epoch)
        log.info("SWA: averaged the weights after epoch %d (%d snapshots)", epoch + 1, int(swa.n_averaged))

    def on_validation_epoch_start(self, trainer, pl_module):
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._update(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module):
        self._update(trainer, pl_module)  # epochs without validation
