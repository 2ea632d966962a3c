"""The LightningModule that trains and validates PaSST: mel frontend on the device, spectrogram mixup,
the task's loss, AdamW with a per-epoch LambdaLR schedule, and validation of the network and (when SWA
has started) its weight average, on predictions gathered from all ranks."""

from __future__ import annotations

import logging
import random
from typing import Callable

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch import nn

from helpers.mixup import mix, mixup_coefficients
from helpers.swa import AveragedWeights
from models.weights import check_state_dict
from models.windowing import windowed_logits

log = logging.getLogger(__name__)

NONFINITE_LOSS_ACTIONS = ("stop", "skip")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class PaSSTModule(pl.LightningModule):
    """Trains `net` on mel spectrograms of waveform batches `(waveform (B, 1, samples), names, targets)`.

    task: a `helpers.tasks` object (loss, mixup of targets, metrics). lr_lambda: epoch -> LR factor
    (None: constant). mixup_alpha: None disables spectrogram mixup. with_swa: keep an `AveragedWeights`
    copy (`self.swa`, filled by `helpers.swa.SWACallback`). nonfinite_loss: "stop" raises
    `NonFiniteLossError`, "skip" drops the batch (on every rank). compile_net: `torch.compile` the net
    in place (state_dict keys unchanged). eval_windowing: validate clips longer than the network takes on
    inference's windows, averaging their logits (`models.windowing.windowed_logits`; whole clips of any
    length, batch size 1) instead of cutting them.
    """

    def __init__(self, net: nn.Module, mel: nn.Module, task, lr: float = 2e-5, weight_decay: float = 1e-4,
                 adamw: bool = True, lr_lambda: Callable[[int], float] | None = None,
                 mixup_alpha: float | None = 0.3, with_swa: bool = False, nonfinite_loss: str = "stop",
                 compile_net: bool = False, eval_windowing: bool = False):
        super().__init__()
        if nonfinite_loss not in NONFINITE_LOSS_ACTIONS:
            raise ValueError(f"nonfinite_loss={nonfinite_loss!r}; allowed: {', '.join(NONFINITE_LOSS_ACTIONS)}")
        self.net, self.mel, self.task = net, mel, task
        for module in net.modules():  # PaSST's distillation head is not used by forward (as upstream);
            if getattr(module, "head_dist", None) is not None:  # frozen, DDP needs no unused-parameter search
                module.head_dist.requires_grad_(False)
        self.lr, self.weight_decay, self.adamw, self.lr_lambda = lr, weight_decay, adamw, lr_lambda
        self.mixup_alpha = mixup_alpha
        self.eval_windowing = eval_windowing
        self.score_writer: Callable | None = None  # (set prefix, clip names, scores, labels) of each evaluated batch
        self.nonfinite_loss = nonfinite_loss
        self.swa = AveragedWeights(net) if with_swa else None
        self.validate_swa = True  # set by helpers.swa.SWACallback during fit (upstream: on update epochs only)
        if compile_net:
            log.info("compiling the network with torch.compile")
            self.net.compile()
        # metric-name prefix of each validation loader, in order (FSD50K: "valid_", "eval_")
        self.validation_sets: tuple[str, ...] = ("",)
        self._outputs: dict[tuple[int, str], dict[str, list]] = {}
        self.skipped_batches = 0
        self.epoch_loss: dict = {}  # the current epoch's {"epoch", "sum" of loss x clips, "clips"} over all ranks

    def spectrograms(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(B, C, samples) waveforms -> (B, C, n_mels, frames) log-mel spectrograms."""
        return self.mel(waveforms)

    def forward(self, waveforms: torch.Tensor):
        return self.net(self.spectrograms(waveforms))

    # --- training ---------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        waveforms, _, targets = batch
        spectrograms = self.spectrograms(waveforms)
        labels, mask = self.task.split(targets)
        if self.mixup_alpha:
            partners, lam = mixup_coefficients(len(labels), self.mixup_alpha, spectrograms.device)
            spectrograms = mix(spectrograms, partners, lam)
            labels, mask = self.task.mix(labels, mask, partners, lam)
        logits = self.task.logits(self.net(spectrograms))
        loss = self.task.per_clip_loss(logits, labels, mask).mean()
        non_finite, loss_sum, clips = self._over_all_ranks(loss, len(labels))
        if non_finite:
            where = f"epoch {self.current_epoch}, step {self.global_step}, batch {batch_idx}"
            if self.nonfinite_loss == "stop":
                raise NonFiniteLossError(f"non-finite training loss ({loss.item()}) at {where}; the weights and "
                                         "the SWA average were not updated (nonfinite_loss='skip' skips such batches)")
            self.skipped_batches += 1
            log.warning("skipping a batch with non-finite loss at %s (%d skipped)", where, self.skipped_batches)
            return None
        self.epoch_loss["sum"] += loss_sum
        self.epoch_loss["clips"] += clips
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=False, on_epoch=True, sync_dist=True,
                 batch_size=len(labels))
        return loss

    def _over_all_ranks(self, loss: torch.Tensor, clips: int) -> tuple[bool, float, int]:
        """(any rank's loss non-finite, sum of loss x clips, clips) of this step over all ranks, in one
        all-reduce."""
        totals = torch.stack([(~torch.isfinite(loss.detach())).to(torch.float64), loss.detach().double() * clips,
                              torch.tensor(float(clips), dtype=torch.float64, device=loss.device)])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(totals)
        non_finite, loss_sum, clips = totals.tolist()
        return non_finite > 0, loss_sum, int(clips)

    def on_train_epoch_start(self):  # (not called for an epoch continued after pre-emption)
        self.epoch_loss = {"epoch": self.current_epoch, "sum": 0.0, "clips": 0}

    def on_train_epoch_end(self):
        """train.loss: the mean loss of the epoch's clips over all ranks (kept in checkpoints, so an epoch
        continued after pre-emption reports the loss of all its batches)."""
        if self.epoch_loss["clips"]:
            self.log("train.loss", self.epoch_loss["sum"] / self.epoch_loss["clips"], prog_bar=True)

    def configure_optimizers(self):
        # The fused kernels are the fastest on both CPU and CUDA (benchmarks/train_speed.py --optimizer)
        fused = self.device.type in ("cpu", "cuda")
        optimizer_class = torch.optim.AdamW if self.adamw else torch.optim.Adam
        options = {"weight_decay": self.weight_decay} if self.adamw else {}
        trained = [parameter for parameter in self.net.parameters() if parameter.requires_grad]
        optimizer = optimizer_class(trained, lr=self.lr, fused=fused, **options)
        if self.lr_lambda is None:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_lambda)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    # --- validation -------------------------------------------------------------------------------
    def _validated_networks(self):
        networks = [("", self.net)]
        fitting = self._trainer is not None and self.trainer.state.fn == "fit"
        if self.swa is not None and self.swa.active and (self.validate_swa or not fitting):
            networks.append(("swa_", self.swa.net))
        return networks

    def evaluation_logits(self, waveforms: torch.Tensor, net: nn.Module | None = None,
                          spectrograms: torch.Tensor | None = None) -> torch.Tensor:
        """The logits evaluation scores for a waveform batch (`net`: the network or its SWA average):
        mel + net, or with `eval_windowing` the mean over inference's windows (`windowed_logits`).
        `spectrograms` of the batch may be passed in when several networks see the same batch."""
        net = self.net if net is None else net
        if self.eval_windowing:
            return windowed_logits(net, self.mel, waveforms)
        return self.task.logits(net(self.spectrograms(waveforms) if spectrograms is None else spectrograms))

    def on_validation_epoch_start(self):
        self._outputs = {}

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        if batch is None:  # every clip of the batch failed to decode
            return
        waveforms, _, targets = batch
        spectrograms = None if self.eval_windowing else self.spectrograms(waveforms)
        labels, mask = self.task.split(targets)
        for prefix, net in self._validated_networks():
            logits = self.evaluation_logits(waveforms, net, spectrograms)
            if self.score_writer is not None and not prefix:  # frame scores of each clip to files (helpers.sed)
                self.score_writer(self.validation_sets[dataloader_idx], batch[1], self.task.scores(logits), labels)
            outputs = self._outputs.setdefault((dataloader_idx, prefix), self._no_outputs())
            outputs["scores"].append(self.task.scores(logits).detach())
            outputs["labels"].append(labels.detach().float())
            outputs["mask"].append((torch.ones_like(labels) if mask is None else mask).detach().float())
            outputs["loss"].append(self.task.per_clip_loss(logits, labels, mask).detach().float())

    @staticmethod
    def _no_outputs() -> dict[str, list]:
        return {"scores": [], "labels": [], "mask": [], "loss": []}

    def on_validation_epoch_end(self):
        """Metrics of each validation set (`validation_sets` prefixes) and each validated network, named
        `<set prefix><network prefix><metric>` (e.g. `eval_swa_ap`), on predictions gathered from all ranks."""
        width = self.net.num_classes if hasattr(self.net, "num_classes") else None
        for loader_index, set_prefix in enumerate(self.validation_sets):
            for prefix, _ in self._validated_networks():
                outputs = self._outputs.get((loader_index, prefix)) or self._no_outputs()
                gathered = {key: self.gather_rows(torch.cat(values) if values else self._empty(key, width))
                            for key, values in outputs.items()}
                has_mask = not bool((gathered["mask"] == 1).all())
                results = {"val.loss": gathered["loss"].mean().item() if len(gathered["loss"]) else float("nan"),
                           **self.task.metrics(gathered["scores"], gathered["labels"],
                                               gathered["mask"] if has_mask else None)}
                name = set_prefix + prefix
                self.log_dict({name + key: float(value) for key, value in results.items()}, sync_dist=True,
                              prog_bar=not prefix and loader_index == 0, add_dataloader_idx=False)
                if not prefix:
                    self.log(set_prefix + "val.clips", float(len(gathered["loss"])), sync_dist=True,
                             add_dataloader_idx=False)
        self._outputs = {}

    def _empty(self, key: str, width: int | None) -> torch.Tensor:
        shape = (0,) if key == "loss" else (0, width or 0)
        return torch.zeros(shape, device=self.device)

    def gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate `tensor` (rows may differ in number per rank) over all ranks, in rank order."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return tensor
        count = torch.tensor([tensor.shape[0]], device=tensor.device)
        counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
        dist.all_gather(counts, count)
        longest = int(max(c.item() for c in counts))
        padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
        padded[:tensor.shape[0]] = tensor
        pieces = [torch.zeros_like(padded) for _ in counts]
        dist.all_gather(pieces, padded.contiguous())
        return torch.cat([piece[:int(c.item())] for piece, c in zip(pieces, counts)])

    # --- checkpoints: the RNG state travels with the weights (resume continues the same random stream)
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if getattr(self, "network_description", None):  # inference rebuilds the network from it (passt_hear)
            checkpoint["network"] = dict(self.network_description)
        checkpoint["rng_states"] = capture_rng_states()
        checkpoint["epoch_loss"] = dict(self.epoch_loss)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse a checkpoint of another network (listing the differing names), then restore the RNG."""
        check_state_dict(checkpoint["state_dict"], self, getattr(self._trainer, "ckpt_path", None) or "to resume")
        if "rng_states" in checkpoint:
            restore_rng_states(checkpoint["rng_states"])
        self.epoch_loss = dict(checkpoint.get("epoch_loss") or {})


def capture_rng_states() -> dict:
    """torch (CPU and CUDA), numpy and Python generator states, as types `torch.load(weights_only=True)` reads."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    states = {"torch": torch.get_rng_state(), "python": random.getstate(),
              "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                        "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    python = states["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    numpy = states["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
