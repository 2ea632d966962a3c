"""Tagging audio files: decode, run the waveform model, name the most probable labels (clip and over time)."""
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch

from helpers.data.audio import decode_audio
from helpers.data.labels import Label, read_label_file
from passt_hear.wrapper import PasstWrapper

AUDIOSET_LABEL_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "metadata",
                                   "audioset_class_labels_indices.csv")
AUDIO_EXTENSIONS = frozenset((".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".mp4", ".webm", ".aif",
                              ".aiff", ".au", ".wma", ".mka"))


def load_labels(path: Optional[str], n_classes: int) -> List[Label]:
    """The labels in ``path`` (default: the shipped AudioSet file); their count must match the model's."""
    path = path or AUDIOSET_LABEL_FILE
    labels = read_label_file(path)
    if len(labels) != n_classes:
        raise ValueError(f"label file {path} has {len(labels)} labels but the model has {n_classes} classes; "
                         f"pass a label file with one row per class (--labels)")
    return labels


def audio_files(paths: Iterable[str]) -> List[str]:
    """Files named on the command line as they are, directories expanded to their audio files (sorted)."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            for root, _, names in sorted(os.walk(path)):
                found.extend(os.path.join(root, name) for name in sorted(names)
                             if os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS)
        else:
            found.append(path)
    return found


@dataclass
class Frames:
    """Label probabilities of windows centred at ``times`` (seconds): ``probabilities`` is (n_times, n_classes)."""
    times: np.ndarray
    window_seconds: float
    probabilities: np.ndarray


@dataclass
class FileTags:
    """The result for one file: the clip's probabilities (sigmoid of its logits) and optional frames."""
    path: str
    duration: float
    probabilities: np.ndarray
    frames: Optional[Frames] = None
    spectrogram: Optional[np.ndarray] = field(default=None, repr=False)

    def top(self, k: int) -> List[int]:
        """Class indices of the ``k`` most probable labels, most probable first."""
        return [int(i) for i in np.argsort(-self.probabilities, kind="stable")[:k]]


def tag_waveform(model: PasstWrapper, waveform: np.ndarray, path: str, frame_seconds: Optional[float] = None,
                 frame_hop_seconds: float = 0.5, with_spectrogram: bool = False) -> FileTags:
    """Probabilities for one mono waveform at ``model.sample_rate`` (the model in logits mode, eval).

    The clip's probabilities come from ``model`` (long audio: mean logits over its windows); with
    ``frame_seconds``, windows of that length centred every ``frame_hop_seconds`` give frame probabilities.
    """
    if model.mode != "logits":
        raise ValueError(f"tagging needs a model in mode 'logits', not {model.mode!r}")
    batch = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))[None]
    with torch.no_grad():
        probabilities = torch.sigmoid(model(batch))[0].cpu().numpy()
        frames = None
        if frame_seconds and model.is_frame_model:  # the model's own frames (frame_seconds / hop not used)
            logits, hop = model.frame_logits(batch)
            times = (np.arange(logits.shape[1]) + 0.5) * hop
            frames = Frames(times, hop, torch.sigmoid(logits)[0].cpu().numpy())
        elif frame_seconds:
            logits, times_ms = model.timestamp_outputs(batch, frame_seconds * 1000.0, frame_hop_seconds * 1000.0)
            frames = Frames(times_ms[0].cpu().numpy() / 1000.0, frame_seconds, torch.sigmoid(logits)[0].cpu().numpy())
        spectrogram = None
        if with_spectrogram:
            spectrogram = model.mel(batch.to(next(model.parameters()).device))[0].cpu().numpy()
    return FileTags(path, len(waveform) / model.sample_rate, probabilities, frames, spectrogram)


def tag_file(model: PasstWrapper, path: str, **options) -> FileTags:
    """Decode ``path`` (any format PyAV reads; mono-mixed, resampled) and tag it; ``AudioDecodeError`` if it
    cannot be read."""
    return tag_waveform(model, decode_audio(path, sample_rate=model.sample_rate), path, **options)


def tags_as_dict(tags: FileTags, labels: Sequence[Label], topk: int) -> Dict:
    """A JSON-ready description of ``tags``: top-k labels, and per frame the probabilities of those labels."""
    top = tags.top(topk)
    result = {"file": tags.path, "duration": round(tags.duration, 3),
              "labels": [{"index": i, "mid": labels[i].mid, "name": labels[i].display_name,
                          "probability": round(float(tags.probabilities[i]), 5)} for i in top]}
    if tags.frames is not None:
        result["frames"] = {"window": tags.frames.window_seconds,
                            "times": [round(float(t), 3) for t in tags.frames.times],
                            "probabilities": {labels[i].display_name: [round(float(p), 5)
                                                                       for p in tags.frames.probabilities[:, i]]
                                              for i in top}}
    return result


def format_tags(tags: FileTags, labels: Sequence[Label], topk: int, labels_per_frame: int = 3) -> str:
    """Readable text: the file, its top-k labels, and (with frames) the most probable labels of each frame."""
    lines = [f"{tags.path} ({tags.duration:.2f} s)"]
    lines += [f"  {tags.probabilities[i]:.3f}  {labels[i].display_name}" for i in tags.top(topk)]
    if tags.frames is not None:
        lines.append(f"  frames (window {tags.frames.window_seconds:g} s, centred at the time shown):")
        for time, row in zip(tags.frames.times, tags.frames.probabilities):
            best = np.argsort(-row, kind="stable")[:labels_per_frame]
            lines.append(f"  {time:8.2f} s  " + " | ".join(f"{labels[i].display_name} {row[i]:.2f}" for i in best))
    return "\n".join(lines)
