"""The one dataset core: clips from an HDF5-mp3 file, decoded, cropped/padded and augmented."""

from __future__ import annotations

import copy
import io
import logging
import os
from typing import Callable

import h5py
import numpy as np
from torch.utils.data import ConcatDataset, Dataset, default_collate

from helpers.data.audio import AudioDecodeError, decode_audio, pad_or_truncate
from helpers.data.augment import WaveformAugment, build_training_pipeline, mix_targets_linear
from helpers.data.clip_ids import file_clip_ids, fingerprint, read_id_list, subset_rows
from helpers.data.options import DataOptions
from helpers.data.hdf5 import (AUDIO_KEY, AUDIO_NAME_KEY, TARGET_KEY, PackedBitsTargets, TargetCodec, as_str,
                               validate_hdf5)
from helpers.data.seeding import ItemRandom
from helpers.data.teacher import MixWithTeacher

logger = logging.getLogger(__name__)


class HDF5AudioDataset(Dataset):
    """Clips of one HDF5-mp3 file as `(waveform float32 (channels, samples), audio_name, target float32)`.

    - The file is validated here (clear error before any training) and opened lazily in each process.
    - Audio is decoded at `sample_rate` (resampled when needed) and cut/zero-padded to
      `clip_length` seconds; `clip_length=None` keeps each clip's own length. With `random_crop`,
      training clips longer than `clip_length` are cut at a random offset instead of the start.
    - `channels=1` mono-mixes each clip; `channels=N` keeps N-channel clips' channels (mono clips are
      repeated N times; other channel counts fail to decode, see below).
    - `options` (`DataOptions`): sample rate, clip length, crops, channels, memory, seed and augmentation settings.
    - `augment` applies `WaveformAugment` of the options' gain / impulse responses per clip.
    - `target_extension(row)` values are appended to the target of file row `row` (the row actually read,
      also for a replacement clip): the teacher's targets in distillation (`helpers.data.teacher`).
    - `in_mem` reads the whole file into memory once.
    - A clip that fails to decode is logged once per process and remembered. In training it is replaced
      by a deterministically chosen other clip; with `training=False` the item is None (drop it with
      `collate_drop_failed`, count exclusions as len(dataset) - clips evaluated).
    - `target_decoder` (default: packed bits of `classes_num` classes) turns a stored row into the target.
    - `indices` restricts the dataset to those rows of the file (e.g. the training folds of ESC-50);
      replacements for failed clips are drawn from the same rows.
    - `clip_ids()` / `fingerprint()`: the ids of its clips (`helpers.data.clip_ids`) and their digest;
      `subset` describes the id list it was restricted to (`restrict_to_ids`), else None.
    """

    def __init__(self, hdf5_file: str | os.PathLike, classes_num: int = 527, options: DataOptions | None = None, *,
                 augment: bool = False, training: bool = True, target_decoder: TargetCodec | None = None,
                 max_replacement_attempts: int = 20, indices=None,
                 target_extension: Callable[[int], np.ndarray] | None = None):
        options = options or DataOptions()
        self.hdf5_file = os.fspath(hdf5_file)
        self.options = options
        self.channels = options.channels
        self.sample_rate = int(options.sample_rate)
        self.classes_num = int(classes_num)
        self.target_decoder = target_decoder or PackedBitsTargets(self.classes_num)
        rows_in_file = validate_hdf5(self.hdf5_file, self.classes_num, self.target_decoder)
        self.rows = None
        if indices is not None:
            self.rows = np.asarray(indices, dtype=np.int64).reshape(-1)
            if len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= rows_in_file):
                raise IndexError(f"indices must lie in [0, {rows_in_file}) for {self.hdf5_file}, "
                                 f"got {self.rows.min()}..{self.rows.max()}")
        self.length = rows_in_file if self.rows is None else len(self.rows)
        clip_length = options.clip_length
        self.clip_samples = None if clip_length is None else int(round(clip_length * self.sample_rate))
        self.training = training
        self.random_crop = options.random_crop
        self.augmenter = (WaveformAugment(options.gain_augment, options.ir_augment, options.ir_path, self.sample_rate,
                                          options.cut_irs_offset) if augment else None)
        self.seed = int(options.seed)
        self.random = ItemRandom(self.seed)
        self.max_replacement_attempts = int(max_replacement_attempts)
        self.target_extension = target_extension
        self._file_bytes = None
        if options.in_mem:
            logger.info("loading %s into memory", self.hdf5_file)
            with open(self.hdf5_file, "rb") as file:
                self._file_bytes = file.read()
        self._handle = None
        self._handle_pid = None
        self._failed: dict[int, str] = {}
        self.subset: EvaluationSubset | None = None
        logger.info("dataset %s: %d clips%s", self.hdf5_file, self.length, ", augmented" if augment else "")

    def __len__(self) -> int:
        return self.length

    @property
    def failed_clips(self) -> dict[int, str]:
        """Positions that failed to decode in this process, with the reason."""
        return dict(self._failed)

    def clip_ids(self) -> np.ndarray:
        """The id of each of its clips, in dataset order (byte strings)."""
        return file_clip_ids(self.hdf5_file, self.rows)

    def fingerprint(self) -> str:
        """The digest of its sorted clip ids (`helpers.data.clip_ids.fingerprint`)."""
        return fingerprint(self.clip_ids())

    def _file(self) -> h5py.File:
        if self._handle is None or self._handle_pid != os.getpid():
            source = io.BytesIO(self._file_bytes) if self._file_bytes is not None else self.hdf5_file
            self._handle = h5py.File(source, "r")
            self._handle_pid = os.getpid()
        return self._handle

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handle"] = None
        state["_handle_pid"] = None
        return state

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle is not None and self._handle_pid == os.getpid():
            try:
                handle.close()
            except Exception:  # interpreter shutdown: h5py may already be torn down
                pass

    def set_epoch(self, epoch: int) -> None:
        """Random crops and augmentation of the coming epoch are drawn from (seed, epoch, clip)."""
        self.random.set_epoch(epoch)

    def load(self, index: int):
        """Decode clip `index` (a position in this dataset); raises AudioDecodeError when its audio is unusable."""
        file = self._file()
        rng = self.random(index)
        index = int(index) if self.rows is None else int(self.rows[index])
        name = as_str(file[AUDIO_NAME_KEY][index])
        raw = file[AUDIO_KEY][index]
        waveform = decode_audio(raw, self.sample_rate, name=f"{name} (index {index} in {self.hdf5_file})",
                                channels=self.channels)
        offset = 0
        if self.clip_samples is not None:
            if self.random_crop and self.training and waveform.shape[-1] > self.clip_samples:
                offset = int(rng.integers(0, waveform.shape[-1] - self.clip_samples + 1))
            waveform = pad_or_truncate(waveform, self.clip_samples, offset)
        if self.augmenter is not None:
            waveform = self.augmenter(waveform, rng)
        target = self.target(file, index, offset)
        if self.target_extension is not None:  # e.g. the teacher's targets of this file row (distillation)
            target = np.concatenate([target, self.target_extension(index)])
        return waveform.reshape(self.channels, -1), name, target

    def target(self, file: h5py.File, row: int, start_sample: int) -> np.ndarray:
        """The target of file row `row` whose audio was cut from `start_sample` on (frame targets move with
        the crop); here the stored clip labels."""
        return self.target_decoder.decode(file[TARGET_KEY][row])

    def _note_failure(self, index: int, error: AudioDecodeError) -> None:
        if index not in self._failed:
            self._failed[index] = error.reason
            logger.warning("skipping clip %s: %s (%d failed so far in this process)", error.name, error.reason,
                           len(self._failed))

    def replacement_index(self, index: int, attempt: int) -> int:
        """The clip tried instead of a failed training clip `index` at the given attempt (deterministic)."""
        return int(np.random.default_rng([self.seed, index, attempt]).integers(self.length))

    def __getitem__(self, index: int):
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.hdf5_file} with {self.length} clips")
        index %= self.length
        if not self.training:
            if index in self._failed:
                return None
            try:
                return self.load(index)
            except AudioDecodeError as error:
                self._note_failure(index, error)
                return None
        for attempt in range(self.max_replacement_attempts + 1):
            candidate = index if attempt == 0 else self.replacement_index(index, attempt)
            if candidate in self._failed:
                continue
            try:
                return self.load(candidate)
            except AudioDecodeError as error:
                self._note_failure(candidate, error)
        raise RuntimeError(f"{self.hdf5_file}: clip {index} and {self.max_replacement_attempts} replacement "
                           f"clips all failed to decode; is the file corrupt?")


class EvaluationSubset:
    """The id list an evaluation set was restricted to: its path, how many distinct ids it lists, and the
    listed ids the file lacks (byte strings, sorted)."""

    def __init__(self, path: str, listed: int, missing: np.ndarray):
        self.path, self.listed, self.missing = path, int(listed), missing

    def missing_names(self) -> list[str]:
        return [clip.decode("utf-8") for clip in self.missing.tolist()]


def restrict_to_ids(dataset: HDF5AudioDataset, ids_file: str | os.PathLike) -> HDF5AudioDataset:
    """A copy of `dataset` holding exactly its clips whose id `ids_file` lists (`read_id_list`; every stored
    repeat of a listed id stays). Listed ids the file lacks are logged by name and kept in the copy's
    `subset.missing`; a list that matches no clip is a ValueError naming both files."""
    ids_file = os.fspath(ids_file)
    wanted = np.unique(read_id_list(ids_file))
    positions, missing = subset_rows(dataset.clip_ids(), wanted)
    if len(positions) == 0:
        raise ValueError(f"eval subset {ids_file!r}: none of its {len(wanted)} ids is a clip of {dataset.hdf5_file}")
    restricted = copy.copy(dataset)
    restricted.rows = positions if dataset.rows is None else dataset.rows[positions]
    restricted.length = len(positions)
    restricted._failed, restricted._handle, restricted._handle_pid = {}, None, None
    restricted.subset = EvaluationSubset(ids_file, len(wanted), missing)
    if len(missing):
        shown = ", ".join(restricted.subset.missing_names()[:20])
        logger.warning("eval subset %s: %d of its %d ids are not in %s (not scored): %s%s", ids_file, len(missing),
                       len(wanted), dataset.hdf5_file, shown, ", ..." if len(missing) > 20 else "")
    logger.info("eval subset %s: %d clips of %s", ids_file, restricted.length, dataset.hdf5_file)
    return restricted


def collate_drop_failed(batch: list):
    """Collate a batch after dropping failed (None) items; returns None when every item failed."""
    kept = [item for item in batch if item is not None]
    if not kept:
        return None
    return default_collate(kept)


def make_training_set(hdf5_files: list[str | os.PathLike], classes_num: int, options: DataOptions, *,
                      target_decoder: TargetCodec | None = None, mix_targets=None, roll_target=None,
                      dataset_class: type[HDF5AudioDataset] = HDF5AudioDataset, indices=None,
                      **dataset_options) -> Dataset:
    """A training set over one or more files (concatenated in order; file k draws from seed + 1000 k), with
    per-clip augmentation (gain/IR), then roll and waveform mixup (`build_training_pipeline`), all as
    `options` say (`options.frame_seconds`: frame targets that move and mix with the audio);
    `options.teachers`: one target extension (or None) per file. `indices` selects rows and needs a single file. `roll_target` moves (frame) targets with a roll; `dataset_options` go to
    `dataset_class`."""
    if indices is not None and len(hdf5_files) != 1:
        raise ValueError(f"indices select rows of one file, got {len(hdf5_files)} files")
    if options.frame_seconds and dataset_class is HDF5AudioDataset:  # strong labels: frame targets
        from helpers.data.frames import frame_target_handling

        dataset_class, mix_targets, roll_target = frame_target_handling(classes_num, options)
    extensions = list(options.teachers) if options.teachers is not None else [None] * len(hdf5_files)
    if len(extensions) != len(hdf5_files):
        raise ValueError(f"{len(extensions)} target extensions for {len(hdf5_files)} files")
    parts = [dataset_class(path, classes_num, options.replace(seed=options.seed + 1000 * number, teachers=None),
                           augment=options.augments, training=True, target_decoder=target_decoder, indices=indices,
                           target_extension=extension, **dataset_options)
             for number, (path, extension) in enumerate(zip(hdf5_files, extensions))]
    dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    mix_targets = mix_targets or mix_targets_linear
    if any(extension is not None for extension in extensions):
        mix_targets = MixWithTeacher(mix_targets, classes_num)
    return build_training_pipeline(dataset, roll=options.roll, roll_conf=options.roll_conf, wavmix=options.wavmix,
                                   seed=options.seed, mix_targets=mix_targets, roll_target=roll_target)


def make_evaluation_set(hdf5_file: str | os.PathLike, classes_num: int, options: DataOptions | None = None, *,
                        target_decoder: TargetCodec | None = None,
                        dataset_class: type[HDF5AudioDataset] = HDF5AudioDataset, indices=None,
                        **dataset_options) -> HDF5AudioDataset:
    """An evaluation set: the options' decoding, no augmentation, clips cut from the start, failed clips
    returned as None (`options.frame_seconds`: frame targets from the file's strong labels)."""
    if options is not None and options.frame_seconds and dataset_class is HDF5AudioDataset:
        from helpers.data.frames import HDF5EventDataset as dataset_class
    return dataset_class(hdf5_file, classes_num, (options or DataOptions()).for_evaluation(), augment=False,
                         training=False, target_decoder=target_decoder, indices=indices, **dataset_options)
