"""Label files in AudioSet's `class_labels_indices.csv` layout: `index,mid,display_name`."""

from __future__ import annotations

import csv
import os
from typing import Iterable, Mapping, NamedTuple

import numpy as np

from helpers.data.atomic import atomic_open

LABEL_FILE_COLUMNS = ("index", "mid", "display_name")


class Label(NamedTuple):
    """One class: its position in the target vector, its machine id and its readable name."""

    index: int
    mid: str
    display_name: str


def read_label_file(path: str | os.PathLike) -> list[Label]:
    """Read a label file (header `index,mid,display_name`, quoted names may contain commas).

    Raises FileNotFoundError for a missing file and ValueError naming the file and line for a wrong
    header, a malformed row, indices that are not 0..n-1 in order, or a duplicated mid.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"label file {path!r} does not exist")
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    if not rows or tuple(cell.strip() for cell in rows[0]) != LABEL_FILE_COLUMNS:
        found = rows[0] if rows else "an empty file"
        raise ValueError(f"label file {path!r}: expected header {','.join(LABEL_FILE_COLUMNS)}, found {found}")
    labels = []
    seen_mids = set()
    for line_number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 3:
            raise ValueError(f"label file {path!r} line {line_number}: expected 3 columns, found {len(row)}: {row}")
        index_text, mid, display_name = (cell.strip() for cell in row)
        if not index_text.isdigit() or int(index_text) != len(labels):
            raise ValueError(f"label file {path!r} line {line_number}: index {index_text!r}, expected {len(labels)}")
        if mid in seen_mids:
            raise ValueError(f"label file {path!r} line {line_number}: mid {mid!r} appears twice")
        seen_mids.add(mid)
        labels.append(Label(int(index_text), mid, display_name))
    if not labels:
        raise ValueError(f"label file {path!r} has no labels")
    return labels


def write_label_file(path: str | os.PathLike, labels: list[Label] | list[tuple[str, str]]) -> None:
    """Write a label file (atomically); `labels` are `Label`s or `(mid, display_name)` pairs, indexed in order."""
    with atomic_open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(LABEL_FILE_COLUMNS)
        for index, label in enumerate(labels):
            mid, display_name = (label.mid, label.display_name) if isinstance(label, Label) else label
            writer.writerow([index, mid, display_name])


def mid_to_index(labels: list[Label]) -> dict[str, int]:
    """Map each label's mid to its index."""
    return {label.mid: label.index for label in labels}


def multi_hot(names: Iterable[str], index_of: Mapping[str, int], num_classes: int, clip: str,
              vocabulary: str) -> np.ndarray:
    """float32 multi-hot target of `names`; a name outside `index_of` is a ValueError naming the clip and the
    vocabulary it is missing from."""
    target = np.zeros(num_classes, dtype=np.float32)
    for name in names:
        if name not in index_of:
            raise ValueError(f"{clip}: label {name!r} is not in {vocabulary}")
        target[index_of[name]] = 1
    return target
