"""Waveform augmentation: gain, impulse-response convolution, time roll and waveform mixup."""

from __future__ import annotations

import logging
import os
import pathlib
from typing import Callable, Mapping

import numpy as np
from torch.utils.data import Dataset

from helpers.data.audio import decode_audio
from helpers.data.seeding import ItemRandom, set_dataset_epoch

logger = logging.getLogger(__name__)


def random_gain(waveform: np.ndarray, rng: np.random.Generator, max_db: int) -> np.ndarray:
    """Scale by a gain drawn uniformly from the integers -max_db..max_db dB."""
    gain_db = int(rng.integers(-max_db, max_db, endpoint=True))
    return (waveform * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


def convolve_keep_length(waveform: np.ndarray, impulse_response: np.ndarray) -> np.ndarray:
    """Convolve with an impulse response (FFT) along the last axis (every channel) and keep the first
    `waveform.shape[-1]` samples."""
    n = waveform.shape[-1]
    if n == 0 or len(impulse_response) == 0:
        return waveform.astype(np.float32)
    size = 1 << int(np.ceil(np.log2(n + len(impulse_response) - 1)))
    spectrum = np.fft.rfft(waveform, size, axis=-1) * np.fft.rfft(impulse_response, size)
    return np.fft.irfft(spectrum, size, axis=-1)[..., :n].astype(np.float32)


def find_impulse_responses(ir_path: str | os.PathLike, cut_irs_offset: int | None = None) -> list[pathlib.Path]:
    """All `*.wav` files below `ir_path`, sorted (with `cut_irs_offset` N: only the N-th to N+9-th, as
    upstream); errors name the folder when there are none."""
    folder = pathlib.Path(os.path.expanduser(os.fspath(ir_path)))
    if not folder.is_dir():
        raise FileNotFoundError(f"impulse-response folder {str(folder)!r} does not exist")
    paths = sorted(folder.rglob("*.wav"))
    if not paths:
        raise FileNotFoundError(f"impulse-response folder {str(folder)!r} contains no .wav files")
    if cut_irs_offset is not None:
        if not 0 <= int(cut_irs_offset) < len(paths):
            raise ValueError(f"cut_irs_offset={cut_irs_offset}: {str(folder)!r} holds {len(paths)} impulse responses")
        paths = paths[int(cut_irs_offset):int(cut_irs_offset) + 10]
    return paths


class WaveformAugment:
    """Per-clip augmentation: with probability `ir_augment` convolve with a random impulse response
    from `ir_path` (`cut_irs_offset`: see `find_impulse_responses`), then apply a random gain of
    +-`gain_augment` dB (0 disables either)."""

    def __init__(self, gain_augment: int = 7, ir_augment: float = 0.0, ir_path: str | None = None,
                 sample_rate: int = 32000, cut_irs_offset: int | None = None):
        if gain_augment < 0 or not 0.0 <= ir_augment <= 1.0:
            raise ValueError(f"need gain_augment >= 0 and 0 <= ir_augment <= 1, got {gain_augment}, {ir_augment}")
        self.gain_augment = int(gain_augment)
        self.ir_augment = float(ir_augment)
        self.sample_rate = sample_rate
        self.ir_paths = find_impulse_responses(ir_path, cut_irs_offset) if ir_augment > 0 else []
        if ir_augment > 0:
            logger.info("impulse-response augmentation (p=%s) with %d IRs from %s", ir_augment,
                        len(self.ir_paths), ir_path)
        self._irs = None

    def impulse_responses(self) -> list[np.ndarray]:
        if self._irs is None:
            self._irs = [decode_audio(path, self.sample_rate) for path in self.ir_paths]
        return self._irs

    def __call__(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.ir_augment > 0 and rng.random() < self.ir_augment:
            irs = self.impulse_responses()
            waveform = convolve_keep_length(waveform, irs[int(rng.integers(len(irs)))])
        if self.gain_augment:
            waveform = random_gain(waveform, rng, self.gain_augment)
        return waveform

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_irs"] = None
        return state


class RandomWrapperDataset(Dataset):
    """A dataset that changes the items of `dataset` with randomness drawn per (seed, epoch, index)."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset = dataset
        self.random = ItemRandom(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        self.random.set_epoch(epoch)
        set_dataset_epoch(self.dataset, epoch)


class RollDataset(RandomWrapperDataset):
    """Rolls each waveform along `axis` by `shift` samples, or by a random integer in
    [-shift_range, shift_range] when `shift` is None. Failed (None) items pass through."""

    def __init__(self, dataset: Dataset, axis: int = 1, shift: int | None = None, shift_range: int = 50,
                 seed: int = 0, roll_target: Callable[[np.ndarray, int], np.ndarray] | None = None):
        super().__init__(dataset, seed)
        self.axis = axis
        self.shift = shift
        self.shift_range = int(shift_range)
        self.roll_target = roll_target  # (target, shift in samples) -> target: frame targets move with the audio

    def __getitem__(self, index: int):
        item = self.dataset[index]
        if item is None:
            return None
        waveform, name, target = item
        shift = self.shift
        if shift is None:
            shift = int(self.random(index).integers(-self.shift_range, self.shift_range, endpoint=True))
        if self.roll_target is not None:
            target = self.roll_target(target, shift)
        return np.roll(waveform, shift, axis=self.axis), name, target


def mix_targets_linear(target_1: np.ndarray, target_2: np.ndarray, weight: float) -> np.ndarray:
    """weight * target_1 + (1 - weight) * target_2."""
    return (target_1 * weight + target_2 * (1.0 - weight)).astype(np.float32)


class WaveformMixupDataset(RandomWrapperDataset):
    """With probability `rate`, mixes a clip with a random other clip in the waveform domain.

    weight ~ Beta(beta, beta), folded to max(weight, 1 - weight) so the first clip dominates; both
    waveforms and the mix are mean-removed; targets are mixed with the same weight by `mix_targets`.
    The name of the first clip is returned.
    """

    def __init__(self, dataset: Dataset, beta: float = 2.0, rate: float = 0.5, seed: int = 0,
                 mix_targets: Callable[[np.ndarray, np.ndarray, float], np.ndarray] = mix_targets_linear):
        if beta <= 0 or not 0.0 <= rate <= 1.0:
            raise ValueError(f"wavmix needs beta > 0 and 0 <= rate <= 1, got beta={beta}, rate={rate}")
        super().__init__(dataset, seed)
        self.beta = float(beta)
        self.rate = float(rate)
        self.mix_targets = mix_targets
        logger.info("mixing waveforms (beta=%s, rate=%s) over %d clips", beta, rate, len(dataset))

    def __getitem__(self, index: int):
        rng = self.random(index)
        first = self.dataset[index]
        if first is None or rng.random() >= self.rate:
            return first
        second = self.dataset[int(rng.integers(len(self.dataset)))]
        if second is None:
            return first
        weight = float(rng.beta(self.beta, self.beta))
        weight = max(weight, 1.0 - weight)
        (waveform_1, name, target_1), (waveform_2, _, target_2) = first, second
        mixed = (waveform_1 - waveform_1.mean()) * weight + (waveform_2 - waveform_2.mean()) * (1.0 - weight)
        mixed = (mixed - mixed.mean()).astype(np.float32)
        return mixed, name, self.mix_targets(target_1, target_2, weight)


def build_training_pipeline(dataset: Dataset, roll: bool = False, roll_conf: Mapping | None = None,
                            wavmix: bool | Mapping = False, seed: int = 0,
                            mix_targets: Callable = mix_targets_linear, roll_target: Callable | None = None) -> Dataset:
    """Wrap a training set with roll (`roll_conf`: axis, shift, shift_range; `roll_target` moves frame targets
    with it) and waveform mixup (`wavmix`: truthy for beta=2, rate=0.5, or a mapping with `beta`/`rate`; targets
    mixed by `mix_targets`), in that order."""
    if roll:
        dataset = RollDataset(dataset, seed=seed + 1, roll_target=roll_target, **dict(roll_conf or {}))
    if wavmix:
        options = dict(wavmix) if isinstance(wavmix, Mapping) else {}
        dataset = WaveformMixupDataset(dataset, seed=seed + 2, mix_targets=mix_targets, **options)
    return dataset
