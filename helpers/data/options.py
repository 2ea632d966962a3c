"""The decoding and augmentation settings of a dataset, as one immutable object passed down whole."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Mapping


class FrozenDict(dict):
    """A dict that refuses changes (and pickles, unlike MappingProxyType)."""

    def _refuse(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} is read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse

    def __reduce__(self):
        return FrozenDict, (dict(self),)

    def __deepcopy__(self, memo):
        return self


def _frozen(value):
    if isinstance(value, Mapping):
        return FrozenDict({key: _frozen(item) for key, item in value.items()})
    return value


@dataclass(frozen=True)
class DataOptions:
    """How clips are decoded and augmented.

    sample_rate: Hz clips are decoded at (resampled when needed). clip_length: seconds each clip is cut or
    zero-padded to (None: its own length). in_mem: read the file into memory once. gain_augment (+-dB),
    ir_augment (probability), ir_path, cut_irs_offset: per-clip augmentation of training clips. roll,
    roll_conf, wavmix: time roll and waveform mixup of training clips. random_crop: training clips longer than
    clip_length are cut at a random offset. channels: 1 mono-mixes, N keeps N channels. seed: what the
    training randomness is drawn from (with epoch and clip). teachers: one target extension (file row ->
    teacher targets) or None per training file (distillation). frame_seconds: frame targets at this hop from
    the files' strong labels (`helpers.data.frames`); None: clip labels.
    """

    sample_rate: int = 32000
    clip_length: float | None = 10
    in_mem: bool = False
    gain_augment: float = 7
    ir_augment: float = 0.0
    ir_path: str | None = None
    cut_irs_offset: int | None = None
    roll: bool = True
    roll_conf: Mapping | None = None
    wavmix: Any = False
    random_crop: bool = False
    channels: int = 1
    seed: int = 0
    teachers: tuple[Callable | None, ...] | None = None
    frame_seconds: float | None = None

    def __post_init__(self):
        def refuse(field: str, allowed: str):
            raise ValueError(f"data option {field}={getattr(self, field)!r}; allowed: {allowed}")

        if not isinstance(self.sample_rate, int) or isinstance(self.sample_rate, bool) or self.sample_rate <= 0:
            refuse("sample_rate", "an integer > 0 (Hz)")
        if self.clip_length is not None and not (isinstance(self.clip_length, (int, float)) and self.clip_length > 0):
            refuse("clip_length", "None or seconds > 0")
        if not (isinstance(self.ir_augment, (int, float)) and 0 <= self.ir_augment <= 1):
            refuse("ir_augment", "a probability in [0, 1]")
        if self.ir_augment > 0 and not self.ir_path:
            refuse("ir_path", f"a folder of impulse responses when ir_augment={self.ir_augment}")
        if not isinstance(self.channels, int) or isinstance(self.channels, bool) or self.channels < 1:
            refuse("channels", "an integer >= 1")
        if self.frame_seconds is not None and not (isinstance(self.frame_seconds, (int, float)) and self.frame_seconds > 0):
            refuse("frame_seconds", "None or seconds > 0")
        object.__setattr__(self, "roll_conf", _frozen(self.roll_conf))
        object.__setattr__(self, "wavmix", _frozen(self.wavmix))
        if self.teachers is not None:
            object.__setattr__(self, "teachers", tuple(self.teachers))

    @property
    def augments(self) -> bool:
        """Whether training clips get per-clip augmentation (gain or impulse responses)."""
        return bool(self.gain_augment) or self.ir_augment > 0

    def replace(self, **changes) -> "DataOptions":
        return dataclasses.replace(self, **changes)

    def for_evaluation(self) -> "DataOptions":
        """The same decoding (sample rate, clip length, memory, channels, frames), no augmentation or teachers."""
        return DataOptions(sample_rate=self.sample_rate, clip_length=self.clip_length, in_mem=self.in_mem,
                           channels=self.channels, gain_augment=0, roll=False, frame_seconds=self.frame_seconds)

    @classmethod
    def from_config(cls, basedataset: Mapping, **changes) -> "DataOptions":
        """The options a `basedataset` config holds (its other keys, files and labels, are left out), with
        `changes` (e.g. seed, teachers)."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{**{key: value for key, value in basedataset.items() if key in names}, **changes})
