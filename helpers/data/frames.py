"""Frame targets for sound event detection: one flat float32 vector per clip, so that collation, gathering,
waveform mixup and the rest of the data core treat it like any other target.

Layout (`FrameLayout`): `[strong, clip labels (C), frame labels (T x C, frame-major)]`. `strong` is 1 for a
clip with strong labels (its frames are known) and 0 for a clip with clip labels only (its frames are not
used by the loss). For a strong clip the clip labels are its frames' union; for a weak one the stored labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial

import h5py
import numpy as np

from helpers.data.augment import mix_targets_linear
from helpers.data.datasets import HDF5AudioDataset
from helpers.data.events import (DEFAULT_FRAME_SECONDS, frame_count, frame_targets, read_clip_events, roll_frames,
                                 validate_events)
from helpers.data.hdf5 import TARGET_KEY


@dataclass(frozen=True)
class FrameLayout:
    """The frame-target layout of `classes` classes over `frames` frames of `frame_seconds` each."""

    classes: int
    frames: int
    frame_seconds: float = DEFAULT_FRAME_SECONDS

    @classmethod
    def for_clip(cls, classes: int, clip_seconds: float, frame_seconds: float = DEFAULT_FRAME_SECONDS) -> "FrameLayout":
        return cls(int(classes), frame_count(clip_seconds, frame_seconds), float(frame_seconds))

    @property
    def width(self) -> int:
        return 1 + self.classes + self.frames * self.classes

    def pack(self, strong: bool, clip_labels: np.ndarray, frames: np.ndarray) -> np.ndarray:
        return np.concatenate([[float(strong)], clip_labels.reshape(-1), frames.reshape(-1)]).astype(np.float32)

    def unpack(self, targets):
        """(strong (B,), clip labels (B, C), frames (B, T, C)) of a batch of packed targets (numpy or torch)."""
        c, t = self.classes, self.frames
        return targets[..., 0], targets[..., 1:1 + c], targets[..., 1 + c:].reshape(*targets.shape[:-1], t, c)

    def mix(self, target_1: np.ndarray, target_2: np.ndarray, weight: float) -> np.ndarray:
        """Waveform mixup's targets: labels and frames mixed with the audio's weight; the mix has strong labels
        only when both clips have."""
        mixed = mix_targets_linear(target_1, target_2, weight)
        mixed[0] = min(target_1[0], target_2[0])
        return mixed

    def roll(self, target: np.ndarray, shift_samples: int, sample_rate: int) -> np.ndarray:
        """Frames rolled with the audio (a circular shift of `shift_samples`)."""
        strong, labels, frames = self.unpack(target)
        return self.pack(bool(strong), labels, roll_frames(frames, shift_samples, self.frame_seconds * sample_rate))


class HDF5EventDataset(HDF5AudioDataset):
    """`HDF5AudioDataset` whose targets are `FrameLayout` vectors (`options.frame_seconds` frames, default
    40 ms) built from the file's events for the window of audio each item holds (a training crop moves them).
    Clips without strong labels get their stored clip labels and `strong = 0`."""

    def __init__(self, hdf5_file: str | os.PathLike, classes_num: int, options=None, **kwargs):
        super().__init__(hdf5_file, classes_num, options, **kwargs)
        validate_events(self.hdf5_file, self.classes_num)
        if self.clip_samples is None:
            raise ValueError(f"{self.hdf5_file}: frame targets need a fixed clip length (clip_length=None keeps "
                             "each clip's own length); set the clip or evaluation clip length")
        frame_seconds = self.options.frame_seconds or DEFAULT_FRAME_SECONDS
        self.layout = FrameLayout.for_clip(self.classes_num, self.clip_samples / self.sample_rate, frame_seconds)

    def target(self, file: h5py.File, row: int, start_sample: int) -> np.ndarray:
        strong, onsets, offsets, classes = read_clip_events(file, row)
        if not strong:
            labels = self.target_decoder.decode(file[TARGET_KEY][row])
            return self.layout.pack(False, labels, np.zeros((self.layout.frames, self.classes_num), np.float32))
        frames = frame_targets(onsets, offsets, classes, self.classes_num, self.layout.frames,
                               self.layout.frame_seconds, start_sample / self.sample_rate)
        return self.layout.pack(True, frames.max(axis=0), frames)

    def roll_target(self, target: np.ndarray, shift_samples: int) -> np.ndarray:
        return self.layout.roll(target, shift_samples, self.sample_rate)


def frame_target_handling(classes_num: int, options) -> tuple:
    """(dataset class, target mixing, target roll) of a training set with `options.frame_seconds` frames:
    frame targets that rolls move and waveform mixup mixes with the audio (`FrameLayout.mix`)."""
    if options.clip_length is None:
        raise ValueError("frame targets need a fixed clip_length")
    layout = FrameLayout.for_clip(classes_num, options.clip_length, options.frame_seconds)
    return HDF5EventDataset, layout.mix, partial(layout.roll, sample_rate=int(options.sample_rate))
