"""A picture of a tagged file: its mel spectrogram, and under it the top labels' probabilities over time."""
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the non-interactive backend)

from helpers.data.labels import Label  # noqa: E402
from passt_hear.tagging import FileTags  # noqa: E402


def plot_tags(tags: FileTags, labels: Sequence[Label], topk: int, path: str) -> None:
    """Write a PNG to ``path``; ``tags`` needs frames and a spectrogram (``tag_file(..., frame_seconds=…,
    with_spectrogram=True)``)."""
    if tags.frames is None or tags.spectrogram is None:
        raise ValueError(f"plotting {tags.path} needs its frame probabilities and spectrogram")
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True,
                                         gridspec_kw={"height_ratios": (1, 1.2)})
    try:
        top.imshow(tags.spectrogram, origin="lower", aspect="auto", cmap="magma",
                   extent=(0.0, tags.duration, 0, tags.spectrogram.shape[0]))
        top.set_ylabel("mel bin")
        top.set_title(f"{tags.path}")
        for index in tags.top(topk):
            bottom.plot(tags.frames.times, tags.frames.probabilities[:, index], marker=".",
                        label=f"{labels[index].display_name} ({tags.probabilities[index]:.2f})")
        bottom.set_ylim(0.0, 1.0)
        bottom.set_xlim(0.0, tags.duration)
        bottom.set_xlabel("time (s)")
        bottom.set_ylabel(f"probability ({tags.frames.window_seconds:g} s windows)")
        bottom.grid(alpha=0.3)
        bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", title="clip probability")
        figure.tight_layout()
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)
