"""Pictures of a run: spectrograms of the first training batches and the training curves at the end."""

from __future__ import annotations

import logging
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402

log = logging.getLogger(__name__)


def save_spectrograms(spectrograms: torch.Tensor, names, path: str, columns: int = 2) -> None:
    """Save (B, [1,] mels, frames) spectrograms as one PNG grid, titled with the clip names."""
    spectrograms = spectrograms.detach().float().cpu()
    if spectrograms.dim() == 4:
        spectrograms = spectrograms[:, 0]
    count = len(spectrograms)
    rows = (count + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 2.2 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < count:
            axis.imshow(spectrograms[index].numpy(), origin="lower", aspect="auto", cmap="magma")
            axis.set_title(str(names[index]), fontsize=8)
    figure.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)


class SpectrogramPictures(pl.Callback):
    """Saves the (un-augmented) spectrograms of the first `batches` training batches of a fit as PNGs."""

    def __init__(self, directory: str, batches: int = 2, per_batch: int = 8):
        self.directory, self.batches, self.per_batch = directory, int(batches), per_batch
        self.saved = 0

    @torch.no_grad()
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.saved >= self.batches or not trainer.is_global_zero:
            return
        waveforms, names, _ = batch
        was_training = pl_module.mel.training
        pl_module.mel.eval()  # no random masking: the pictures must not consume the training's random numbers
        spectrograms = pl_module.spectrograms(waveforms[:self.per_batch])
        pl_module.mel.train(was_training)
        path = os.path.join(self.directory, f"epoch{trainer.current_epoch:03d}_batch{batch_idx:03d}.png")
        save_spectrograms(spectrograms, names[:self.per_batch], path)
        self.saved += 1


class TrainingCurves(pl.Callback):
    """Collects the epoch metrics (train.loss, val.loss, the monitored metric and its SWA twin, the
    learning rate) and plots them into one PNG when the fit ends. The history is part of the callback's
    checkpoint state, so a resumed run plots its whole history."""

    def __init__(self, path: str, monitor: str = "ap"):
        self.path, self.monitor = path, monitor
        self.history: dict[str, list[tuple[int, float]]] = {}

    def state_dict(self) -> dict:
        return {"history": {key: [list(point) for point in points] for key, points in self.history.items()}}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = {key: [tuple(point) for point in points] for key, points in state_dict["history"].items()}

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        wanted = ("train.loss", "val.loss", self.monitor, "swa_" + self.monitor, "swa_val.loss", "lr")
        for key, value in trainer.callback_metrics.items():
            if key in wanted:
                epoch = trainer.current_epoch + 1
                points = self.history.setdefault(key, [])
                points[:] = [point for point in points if point[0] != epoch]
                points.append((epoch, float(value)))

    def on_fit_end(self, trainer, pl_module):
        if trainer.is_global_zero and self.history:
            plot_curves(self.history, self.path, self.monitor)
            log.info("training curves: %s", self.path)


def plot_curves(history: dict[str, list[tuple[int, float]]], path: str, monitor: str = "ap") -> None:
    """Three panels: losses, the monitored metric (and SWA), learning rate -- each against the epoch."""
    panels = [("loss", [k for k in history if k.endswith("loss")]),
              (monitor, [k for k in (monitor, "swa_" + monitor) if k in history]),
              ("learning rate", [k for k in ("lr",) if k in history])]
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for axis, (title, keys) in zip(axes, panels):
        for key in keys:
            epochs, values = zip(*sorted(history[key]))
            axis.plot(epochs, values, marker=".", label=key)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        if keys:
            axis.legend()
    figure.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)


def plot_frame_scores(folder: str, path: str, clips: int = 6) -> str | None:
    """The frame probabilities of the first `clips` clips with ground-truth events in a score folder
    (`helpers.sed.FrameScoreWriter`), one panel per clip and a line per class, over shaded ground-truth events."""
    import glob

    import pandas as pd

    truth = pd.read_csv(os.path.join(folder, "ground_truth.tsv"), sep="\t")
    chosen = list(dict.fromkeys(truth["filename"]))[:clips]
    if not chosen:
        return None
    figure, axes = plt.subplots(len(chosen), 1, figsize=(10, 1.9 * len(chosen)), squeeze=False)
    colors = plt.get_cmap("tab10")
    for axis, file_name in zip(axes[:, 0], chosen):
        stem = os.path.splitext(file_name)[0]
        matches = glob.glob(os.path.join(folder, glob.escape(stem) + ".tsv"))
        if not matches:
            continue
        scores = pd.read_csv(matches[0], sep="\t")
        classes = [column for column in scores.columns if column not in ("onset", "offset")]
        for number, name in enumerate(classes):
            color = colors(number % 10)
            axis.plot(scores["onset"], scores[name], color=color, linewidth=1, label=name)
            for event in truth[(truth["filename"] == file_name) & (truth["event_label"] == name)].itertuples():
                axis.axvspan(event.onset, event.offset, color=color, alpha=0.18)
        axis.set_ylim(0, 1.02)
        axis.set_title(stem, fontsize=8)
    axes[0, 0].legend(fontsize=6, ncol=4, loc="upper right")
    axes[-1, 0].set_xlabel("seconds (shaded: ground-truth events)")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    log.info("frame probabilities over ground-truth events: %s", path)
    return path
