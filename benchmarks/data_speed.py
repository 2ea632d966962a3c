"""Data-loading speed: clips/s one worker process decodes and augments, and how many DataLoader
workers it takes to feed PaSST-S training (88.7 spectrograms/s in the paper).

Uses a generated file of 10 s, 32 kHz mono mp3 clips (like AudioSet) unless --hdf5 points to a real one.

    python benchmarks/data_speed.py [--clips 40] [--hdf5 path --classes 527]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from audioset.dataset import training_set  # noqa: E402
from helpers.data import DataOptions  # noqa: E402
from audioset.prepare_scripts.make_demo_dataset import make_demo_dataset  # noqa: E402

PASST_S_SPECS_PER_SECOND = 88.7


def clips_per_second(dataset, clips: int) -> float:
    dataset[0]  # open the file, load lazily created state
    started = time.perf_counter()
    for index in range(clips):
        dataset[index % len(dataset)]
    return clips / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=40, help="clips to time per setting")
    parser.add_argument("--hdf5", default=None, help="an existing HDF5-mp3 file (default: generate one)")
    parser.add_argument("--classes", type=int, default=10, help="classes of --hdf5")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        if args.hdf5:
            path, classes = args.hdf5, args.classes
        else:
            path = make_demo_dataset(scratch, n_train=args.clips, n_eval=1, n_unbalanced=0, n_classes=10,
                                     clip_length=10.0)["balanced_train_hdf5"]
            classes = 10
        settings = {
            "decode only": dict(gain_augment=0, roll=False, wavmix=False),
            "decode + gain + roll": dict(gain_augment=7, roll=True, wavmix=False),
            "decode + gain + roll + wavmix(rate 0.5)": dict(gain_augment=7, roll=True, wavmix=True),
        }
        print(f"file: {path if args.hdf5 else 'generated, 10 s mp3 clips at 32 kHz'}; {args.clips} clips per setting")
        for label, options in settings.items():
            dataset = training_set([path, path], DataOptions(clip_length=10, **options), classes)
            rate = clips_per_second(dataset, args.clips)
            workers = math.ceil(PASST_S_SPECS_PER_SECOND / rate)
            print(f"{label:42s} {rate:7.1f} clips/s per worker -> {workers} workers for "
                  f"{PASST_S_SPECS_PER_SECOND} specs/s")


if __name__ == "__main__":
    main()
