"""The audio data core: HDF5-mp3 reading, decoding, padding, augmentation, sampling and preparation.

Imports only numpy, h5py, av, torch.utils.data and tqdm (and, when it runs under DDP, torch.distributed to
share the sample weights and find the ranks). Dataset folders (audioset/, openmic/,
esc50/, fsd50k/) build on it; the training layer uses `collate_drop_failed`, `seed_worker`, `set_dataset_epoch` and the samplers.
"""

from helpers.data.audio import AudioDecodeError, decode_audio, encode_audio, encode_mp3, pad_or_truncate
from helpers.data.augment import (RollDataset, WaveformAugment, WaveformMixupDataset, build_training_pipeline,
                                  convolve_keep_length, mix_targets_linear, random_gain)
from helpers.data.clip_ids import clip_id, fingerprint, read_id_list
from helpers.data.datasets import (EvaluationSubset, HDF5AudioDataset, collate_drop_failed, make_evaluation_set,
                                   make_training_set, restrict_to_ids)
from helpers.data.hdf5 import (DenseTargets, HDF5DatasetWriter, HDF5FormatError, PackedBitsTargets, read_targets,
                               validate_hdf5, write_hdf5_dataset)
from helpers.data.options import DataOptions
from helpers.data.labels import Label, read_label_file, write_label_file
from helpers.data.samplers import DistributedShardSampler, DistributedWeightedSampler, preload_files
from helpers.data.seeding import ItemRandom, seed_worker, set_dataset_epoch
from helpers.data.sample_weights import (class_balanced_sample_weights, class_balanced_weights_from_hdf5,
                                  shared_class_balanced_weights)

worker_init_fn = seed_worker

__all__ = [
    "AudioDecodeError", "decode_audio", "encode_audio", "encode_mp3", "pad_or_truncate",
    "RollDataset", "WaveformAugment", "WaveformMixupDataset", "build_training_pipeline", "convolve_keep_length",
    "mix_targets_linear", "random_gain",
    "clip_id", "fingerprint", "read_id_list",
    "EvaluationSubset", "HDF5AudioDataset", "collate_drop_failed", "make_evaluation_set", "make_training_set",
    "restrict_to_ids",
    "DenseTargets", "HDF5DatasetWriter", "HDF5FormatError", "PackedBitsTargets", "read_targets", "validate_hdf5",
    "write_hdf5_dataset",
    "DataOptions",
    "Label", "read_label_file", "write_label_file",
    "DistributedShardSampler", "DistributedWeightedSampler", "class_balanced_sample_weights",
    "class_balanced_weights_from_hdf5", "preload_files", "shared_class_balanced_weights",
    "ItemRandom", "seed_worker", "set_dataset_epoch", "worker_init_fn",
]
