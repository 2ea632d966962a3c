"""The data report of an OpenMIC-2018 copy against the release (helpers.data.report does the work).

    python -m openmic.report --release-dir openmic-2018 --hdf5 DIR --out REPORT_DIR [--audio]

Splits `train` and `eval` (`partitions/split01_train.csv`, `split01_test.csv`: the set the runs evaluate, so
the report's `eval_fingerprint` is the one they print; without the clips that have no
known label, which preparation leaves out: counted as `left_out_unlabelled`) against
`openmic_train.csv_mp3.hdf` and `openmic_test.csv_mp3.hdf` in DIR or DIR/mp3. OpenMIC is partially labelled,
so each instrument gives two report classes: `<instrument>: positive` (known, confidence >= 0.5) and
`<instrument>: labelled` (known at all); `label_mismatch` counts clips whose stored positives or known labels
differ from the release's. The names come from the release's `class-map.json` when it is there.
"""

from __future__ import annotations

import json
import os

import numpy as np

from helpers.data import Label
from helpers.data.clip_ids import clip_ids
from helpers.data.report import ClipList, StoredTargets, parse_report_arguments, report_parser, run_report, stored_file
from openmic.dataset import NUM_INSTRUMENTS, TARGET_CODEC, TEST_FILE, TRAIN_FILE
from openmic.prepare_scripts.create_h5pymp3_dataset import read_partition, read_release_labels

MIN_SECONDS = 9.0  # OpenMIC clips are 10 s
POSITIVE = 0.5


def label_bits(targets: np.ndarray) -> np.ndarray:
    """Packed bits of 40-wide targets: 20 known positives, then 20 known labels."""
    targets = np.asarray(targets, dtype=np.float32)
    known = targets[:, NUM_INSTRUMENTS:] > 0.5
    return np.packbits(np.concatenate([known & (targets[:, :NUM_INSTRUMENTS] >= POSITIVE), known], axis=1), axis=1)


def instrument_names(release_dir: str) -> list[str]:
    """The instruments in class-index order (class-map.json: name -> index), or `instrument <k>`."""
    path = os.path.join(release_dir, "class-map.json")
    if not os.path.isfile(path):
        return [f"instrument {index}" for index in range(NUM_INSTRUMENTS)]
    with open(path, encoding="utf-8") as file:
        mapping = json.load(file)
    names = {index: name for name, index in mapping.items()}
    if sorted(names) != list(range(NUM_INSTRUMENTS)):
        raise ValueError(f"{path!r}: expected the indices 0..{NUM_INSTRUMENTS - 1}, found {sorted(names)}")
    return [names[index] for index in range(NUM_INSTRUMENTS)]


def read_splits(release_dir: str) -> tuple[dict[str, ClipList], dict[str, int]]:
    """The train and eval lists (labelled clips only) and, per split, how many unlabelled clips were left out."""
    targets = read_release_labels(os.path.join(release_dir, "openmic-2018.npz"))
    lists, left_out = {}, {}
    for name, partition in (("train", "split01_train.csv"), ("eval", "split01_test.csv")):
        path = os.path.join(release_dir, "partitions", partition)
        keys = read_partition(path)
        unknown = [key for key in keys if key not in targets]
        if unknown:
            raise ValueError(f"{path!r}: {len(unknown)} sample keys are not in openmic-2018.npz, e.g. {unknown[:3]}")
        labelled = [key for key in keys if targets[key][NUM_INSTRUMENTS:].any()]
        left_out[name] = len(keys) - len(labelled)
        rows = np.stack([targets[key] for key in labelled]) if labelled else np.zeros((0, 2 * NUM_INSTRUMENTS))
        lists[name] = ClipList(clip_ids(labelled), label_bits(rows), path)
    return lists, left_out


def main(argv: list[str] | None = None) -> dict:
    args = parse_report_arguments(report_parser(__doc__, "--release-dir", "the extracted openmic-2018 folder",
                                                "folder of the two .hdf files"), argv)
    lists, left_out = read_splits(args.release_dir)
    names = instrument_names(args.release_dir)
    labels = [Label(index, f"{name}/positive", f"{name}: positive") for index, name in enumerate(names)]
    labels += [Label(NUM_INSTRUMENTS + index, f"{name}/labelled", f"{name}: labelled") for index, name in enumerate(names)]
    splits = {"train": (lists["train"], stored_file(args.hdf5, TRAIN_FILE)),
              "eval": (lists["eval"], stored_file(args.hdf5, TEST_FILE))}
    return run_report(args, "openmic", splits, labels, MIN_SECONDS, {"left_out_unlabelled": left_out},
                      StoredTargets(TARGET_CODEC, label_bits))


if __name__ == "__main__":
    main()
