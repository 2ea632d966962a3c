"""The data report: what a copy of a dataset (its HDF5-mp3 files) holds against the dataset's official lists.

A dataset folder reads its own list format into a `ClipList` per split (ids and packed labels, see
`helpers.data.clip_ids` for the id rule) and calls `build_report` and `write_report`; everything else is
here. Per split, with L = distinct listed ids and R = rows of the file:

- `listed` (= L), `listed_rows`, `listed_duplicates` (ids the list itself gives twice; the first row counts);
- `present`: listed ids stored at least once; `missing` = listed - present;
- `extra`: distinct stored ids the list lacks; `duplicates`: distinct ids stored more than once
  (`duplicate_rows`: the rows beyond each id's first), so R = present + extra + duplicate_rows;
- `label_mismatch`: present ids with a stored row whose labels differ from the list's;
- per class: `listed_positives` and `present_positives` (listed ids of the class, by the list's labels,
  and those of them present) and `coverage` = present / listed; `lowest_coverage`: the 20 classes with
  the least;
- `fingerprint`: `helpers.data.clip_ids.fingerprint` of the ids of every stored row (what a run scores;
  the same digest the runs print), also as `<split>_fingerprint` at the top level.

The file is read in chunks of rows and nothing per clip is a Python object, so memory stays about the size
of the list's packed labels. With `audio=True` every clip is decoded in a process pool (`check_audio`).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import h5py
import numpy as np

from helpers.data.audio import AudioDecodeError, decode_audio
from helpers.data.clip_ids import clip_ids, sorted_fingerprint
from helpers.data.hdf5 import (AUDIO_KEY, AUDIO_NAME_KEY, TARGET_KEY, PackedBitsTargets, TargetCodec, as_str,
                               validate_hdf5)
from helpers.data.labels import Label
from helpers.data.sample_weights import add_class_counts

logger = logging.getLogger(__name__)

CHUNK_ROWS = 65536
LOWEST = 20
AUDIO_TASK_ROWS = 64
ID_FILES = ("present", "missing", "extra", "duplicates", "label_mismatch")


@dataclass(frozen=True)
class ClipList:
    """One split of an official list: `ids` (byte strings, one per listed row), `labels` (their packed
    multi-hot labels, rows x ceil(classes / 8) uint8) and `source` (the list file, for messages)."""

    ids: np.ndarray
    labels: np.ndarray
    source: str

    def __post_init__(self):
        if len(self.ids) != len(self.labels):
            raise ValueError(f"{self.source}: {len(self.ids)} ids but {len(self.labels)} label rows")


@dataclass(frozen=True)
class StoredTargets:
    """How a file's `target` rows are compared with a list: `codec` checks the file (`validate_hdf5`), `to_bits`
    turns a chunk of stored rows into packed label bits like the list's (default: packed bits as stored)."""

    codec: TargetCodec
    to_bits: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass(frozen=True)
class AudioCheck:
    """What `check_audio` flags: a clip is `silent` below `silent_db` dBFS (RMS) and `short` under
    `min_seconds`; `workers` processes decode (None: every core)."""

    silent_db: float = -60.0
    min_seconds: float = 9.0
    sample_rate: int = 32000
    workers: int | None = None


def _sorted_unique(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct ids sorted, the row of each one's first occurrence, whether it occurs more than once): as
    np.unique, without its several clips-sized temporaries."""
    order = np.argsort(ids, kind="stable")
    ordered = ids[order]
    first = np.ones(len(ids), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(first)
    repeated = np.zeros(len(starts), dtype=bool)
    repeated[:-1] = np.diff(starts) > 1
    if len(starts):
        repeated[-1] = len(ids) - starts[-1] > 1
    return ordered[first], order[first], repeated


def compare_split(listed: ClipList, hdf5_file: str | os.PathLike | None, classes_num: int,
                  chunk_rows: int = CHUNK_ROWS, stored_targets: StoredTargets | None = None) -> dict:
    """The figures of one split (see the module) and its id lists (`ids`: kind -> sorted byte strings).

    `hdf5_file` None: the copy has no file for this split (every listed clip is missing). A file of another
    layout is an `HDF5FormatError` naming it (`validate_hdf5`). `stored_targets`: how to read other target
    layouts (default: packed bits of `classes_num` classes)."""
    stored_targets = stored_targets or StoredTargets(PackedBitsTargets(classes_num))
    width = (classes_num + 7) // 8
    if listed.labels.shape[1:] != (width,):
        raise ValueError(f"{listed.source}: labels must be packed rows of {width} bytes, got shape "
                         f"{listed.labels.shape}")
    unique, first_row, listed_repeats = _sorted_unique(np.asarray(listed.ids, dtype=np.bytes_))
    stored = np.zeros(len(unique), dtype=np.int32)
    relabelled = np.zeros(len(unique), dtype=bool)
    extra_parts, stored_parts, rows = [], [], 0
    if hdf5_file is not None:
        hdf5_file = os.fspath(hdf5_file)
        rows = validate_hdf5(hdf5_file, classes_num, stored_targets.codec)
        with h5py.File(hdf5_file, "r") as file:
            names, targets = file[AUDIO_NAME_KEY], file[TARGET_KEY]
            for start in range(0, rows, chunk_rows):
                ids = clip_ids(names[start:start + chunk_rows])
                stored_parts.append(ids)
                position = np.minimum(np.searchsorted(unique, ids), max(len(unique) - 1, 0))
                found = unique[position] == ids if len(unique) else np.zeros(len(ids), dtype=bool)
                hits = position[found]
                np.add.at(stored, hits, 1)
                bits = targets[start:start + chunk_rows][found]
                bits = stored_targets.to_bits(bits) if stored_targets.to_bits else bits
                differs = np.any(bits != listed.labels[first_row[hits]], axis=1)
                relabelled[hits[differs]] = True
                extra_parts.append(ids[~found])
    stored_ids = np.sort(np.concatenate(stored_parts)) if stored_parts else np.array([], dtype="S1")
    del stored_parts
    extra, extra_counts = np.unique(np.concatenate(extra_parts), return_counts=True) if extra_parts else (
        np.array([], dtype="S1"), np.array([], dtype=np.int64))
    listed_positives = np.zeros((classes_num + 7) // 8 * 8, dtype=np.int64)
    present_positives = np.zeros_like(listed_positives)
    for start in range(0, len(unique), chunk_rows):
        packed = listed.labels[first_row[start:start + chunk_rows]]
        add_class_counts(listed_positives, packed)
        add_class_counts(present_positives, packed[stored[start:start + chunk_rows] > 0])
    listed_positives, present_positives = listed_positives[:classes_num], present_positives[:classes_num]
    duplicated = np.concatenate([unique[stored > 1], extra[extra_counts > 1]])
    distinct = np.ones(len(stored_ids), dtype=bool)
    distinct[1:] = stored_ids[1:] != stored_ids[:-1]
    ids = {"present": stored_ids[distinct], "missing": unique[stored == 0], "extra": extra,
           "duplicates": np.sort(duplicated), "label_mismatch": unique[relabelled],
           "listed_duplicates": unique[listed_repeats]}
    figures = {
        "listed": int(len(unique)), "listed_rows": int(len(listed.ids)), "listed_duplicates": int(listed_repeats.sum()),
        "rows": int(rows), "present": int((stored > 0).sum()), "missing": int((stored == 0).sum()),
        "extra": int(len(extra)), "duplicates": int(len(duplicated)),
        "duplicate_rows": int(np.maximum(stored - 1, 0).sum() + np.maximum(extra_counts - 1, 0).sum()),
        "label_mismatch": int(relabelled.sum()), "fingerprint": sorted_fingerprint(stored_ids),
        "list": listed.source, "hdf5": hdf5_file,
    }
    figures["coverage"] = figures["present"] / figures["listed"] if figures["listed"] else None
    return {"figures": figures, "ids": ids, "listed_positives": listed_positives,
            "present_positives": present_positives}


def class_coverage(labels: Sequence[Label], listed_positives: np.ndarray, present_positives: np.ndarray) -> list[dict]:
    """Per class: index, mid, name, listed_positives, present_positives, coverage (None: never listed)."""
    return [{"index": label.index, "mid": label.mid, "name": label.display_name, "listed_positives": int(listed),
             "present_positives": int(present), "coverage": float(present / listed) if listed else None}
            for label, listed, present in zip(labels, listed_positives, present_positives)]


def lowest_coverage(classes: list[dict], count: int = LOWEST) -> list[dict]:
    """The `count` listed classes with the least coverage (ties: more listed positives first)."""
    listed = [entry for entry in classes if entry["coverage"] is not None]
    return sorted(listed, key=lambda entry: (entry["coverage"], -entry["listed_positives"], entry["index"]))[:count]


def _check_rows(task: tuple[str, int, int, int]) -> tuple[int, np.ndarray, np.ndarray, list]:
    """Decode rows start..stop of a file: their durations (s), RMS levels (dBFS) and decode failures."""
    path, start, stop, sample_rate = task
    durations = np.full(stop - start, np.nan, dtype=np.float32)
    levels = np.full(stop - start, np.nan, dtype=np.float32)
    failures = []
    with h5py.File(path, "r") as file:
        names, audio = file[AUDIO_NAME_KEY][start:stop], file[AUDIO_KEY][start:stop]
    for offset, (name, data) in enumerate(zip(names, audio)):
        try:
            waveform = decode_audio(data, sample_rate, name=as_str(name))
        except AudioDecodeError as error:
            failures.append((start + offset, error.reason))
            continue
        durations[offset] = len(waveform) / sample_rate
        rms = float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64)))) if len(waveform) else 0.0
        levels[offset] = 20 * np.log10(max(rms, 1e-10))
    return start, durations, levels, failures


def check_audio(hdf5_file: str | os.PathLike, check: AudioCheck = AudioCheck(), progress: bool = True) -> dict:
    """Decode every clip of a file on `check.workers` processes (a progress bar on stderr); returns
    `durations` and `levels` (float32 per row, NaN where decoding failed), the clips that fail to decode,
    are silent or short (by name, with the reason or value) and `clips_per_second`."""
    from tqdm import tqdm

    path = os.fspath(hdf5_file)
    with h5py.File(path, "r") as file:
        names = file[AUDIO_NAME_KEY][:]
    rows = len(names)
    durations, levels = np.full(rows, np.nan, dtype=np.float32), np.full(rows, np.nan, dtype=np.float32)
    failures = []
    tasks = [(path, start, min(start + AUDIO_TASK_ROWS, rows), check.sample_rate)
             for start in range(0, rows, AUDIO_TASK_ROWS)]
    started = time.perf_counter()
    workers = check.workers or os.cpu_count() or 1
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool, \
            tqdm(total=rows, desc=f"decoding {os.path.basename(path)}", unit="clip", disable=not progress) as bar:
        for start, part_durations, part_levels, part_failures in pool.map(_check_rows, tasks):
            durations[start:start + len(part_durations)] = part_durations
            levels[start:start + len(part_levels)] = part_levels
            failures += part_failures
            bar.update(len(part_durations))
    seconds = time.perf_counter() - started
    decoded = ~np.isnan(durations)
    silent = np.flatnonzero(decoded & (levels < check.silent_db))
    short = np.flatnonzero(decoded & (durations < check.min_seconds))
    return {
        "clips": rows, "seconds": seconds, "clips_per_second": rows / seconds if seconds > 0 else None,
        "workers": workers, "silent_db": check.silent_db, "min_seconds": check.min_seconds,
        "undecodable": [{"clip": as_str(names[row]), "reason": reason} for row, reason in sorted(failures)],
        "silent": [{"clip": as_str(names[row]), "level_db": round(float(levels[row]), 1)} for row in silent],
        "short": [{"clip": as_str(names[row]), "seconds": round(float(durations[row]), 3)} for row in short],
        "durations": durations, "levels": levels,
    }


def build_report(dataset: str, splits: Mapping[str, tuple[ClipList, str | None]], labels: Sequence[Label],
                 audio: AudioCheck | None = None, progress: bool = True,
                 stored_targets: StoredTargets | None = None) -> dict:
    """The whole report: per split `compare_split`'s figures with per-class coverage (and, with `audio`,
    `check_audio`'s findings), plus `<split>_fingerprint` at the top level. Large arrays (id lists,
    durations, levels) stay under each split's `_arrays` for `write_report`."""
    report = {"dataset": dataset, "classes": len(labels), "splits": {}}
    for name, (listed, hdf5_file) in splits.items():
        started = time.perf_counter()
        if hdf5_file is not None and not os.path.isfile(hdf5_file):
            logger.warning("%s: no file %s; every listed clip counts as missing", name, hdf5_file)
            hdf5_file = None
        compared = compare_split(listed, hdf5_file, len(labels), stored_targets=stored_targets)
        split = compared["figures"]
        classes = class_coverage(labels, compared["listed_positives"], compared["present_positives"])
        split["lowest_coverage"] = lowest_coverage(classes)
        split["classes"] = classes
        arrays = {"ids": compared["ids"]}
        if audio is not None and hdf5_file is not None:
            found = check_audio(hdf5_file, audio, progress)
            arrays.update(durations=found.pop("durations"), levels=found.pop("levels"))
            split["audio"] = found
        split["_arrays"] = arrays
        report["splits"][name] = split
        report[f"{name}_fingerprint"] = split["fingerprint"]
        logger.info("%s: %d listed, %d present, %d missing, %d extra, %d duplicated, %d relabelled; fingerprint %s "
                    "(%.1f s)", name, split["listed"], split["present"], split["missing"], split["extra"],
                    split["duplicates"], split["label_mismatch"], split["fingerprint"], time.perf_counter() - started)
    return report


def _write_ids(path: str, ids: np.ndarray) -> None:
    with open(path, "wb") as file:
        for start in range(0, len(ids), CHUNK_ROWS):
            file.write(b"".join(clip + b"\n" for clip in ids[start:start + CHUNK_ROWS].tolist()))


def write_report(out_dir: str | os.PathLike, report: dict) -> dict[str, str]:
    """Write `report.json`, `report.md`, `coverage.png` and per split `<kind>_<split>_ids.txt` (kind: present,
    missing, extra, duplicates, label_mismatch; one id a line, sorted) into `out_dir`; returns the paths."""
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    written, serialisable = {}, {key: value for key, value in report.items() if key != "splits"}
    serialisable["splits"] = {}
    for name, split in report["splits"].items():
        split = dict(split)
        arrays = split.pop("_arrays")
        split["files"] = {}
        for kind in ID_FILES:
            path = os.path.join(out_dir, f"{kind}_{name}_ids.txt")
            _write_ids(path, arrays["ids"][kind])
            split["files"][kind] = os.path.basename(path)
        serialisable["splits"][name] = split
    written["json"] = os.path.join(out_dir, "report.json")
    with open(written["json"], "w", encoding="utf-8") as file:
        json.dump(serialisable, file, indent=1)
    written["markdown"] = os.path.join(out_dir, "report.md")
    with open(written["markdown"], "w", encoding="utf-8") as file:
        file.write(markdown(serialisable))
    written["png"] = os.path.join(out_dir, "coverage.png")
    plot_coverage(written["png"], report)
    return written


def markdown(report: dict) -> str:
    """The report as a Markdown table per topic (splits, lowest coverage, audio findings)."""
    lines = [f"# Data report: {report['dataset']}", "",
             "| split | listed | present | missing | extra | duplicates | label mismatch | coverage | fingerprint |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, split in report["splits"].items():
        coverage = "–" if split["coverage"] is None else f"{100 * split['coverage']:.2f} %"
        lines.append(f"| {name} | {split['listed']:,} | {split['present']:,} | {split['missing']:,} | {split['extra']:,}"
                     f" | {split['duplicates']:,} | {split['label_mismatch']:,} | {coverage} | `{split['fingerprint']}` |")
    for name, split in report["splits"].items():
        lines += ["", f"## {name}: the {len(split['lowest_coverage'])} classes with the least coverage", "",
                  "| class | listed positives | present positives | coverage |", "|---|---:|---:|---:|"]
        lines += [f"| {entry['name']} (`{entry['mid']}`) | {entry['listed_positives']:,} | {entry['present_positives']:,}"
                  f" | {100 * entry['coverage']:.2f} % |" for entry in split["lowest_coverage"]]
        audio = split.get("audio")
        if audio:
            rate = audio["clips_per_second"] or 0.0
            lines += ["", f"{name}: {audio['clips']:,} clips decoded ({rate:,.0f} clips/s, {audio['workers']} "
                      f"processes): {len(audio['undecodable']):,} fail to decode, {len(audio['silent']):,} silent (below "
                      f"{audio['silent_db']} dBFS), {len(audio['short']):,} shorter than {audio['min_seconds']} s "
                      "(names in report.json)."]
    return "\n".join(lines) + "\n"


def plot_coverage(path: str, report: dict) -> None:
    """coverage.png: per split the classes' coverage (sorted), and with audio the duration and level histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = report["splits"]
    with_audio = [name for name, split in splits.items() if "durations" in split["_arrays"]]
    columns = 3 if with_audio else 1
    figure, axes = plt.subplots(1, columns, figsize=(5 * columns, 3.5), squeeze=False)
    for name, split in splits.items():
        coverage = sorted(entry["coverage"] for entry in split["classes"] if entry["coverage"] is not None)
        axes[0, 0].plot(np.arange(len(coverage)), 100 * np.asarray(coverage), label=name)
    axes[0, 0].set(title="per-class coverage (sorted)", xlabel="class (by coverage)", ylabel="present positives (%)")
    axes[0, 0].legend(fontsize="small")
    for name in with_audio:
        arrays = splits[name]["_arrays"]
        durations, levels = arrays["durations"], arrays["levels"]
        axes[0, 1].hist(durations[~np.isnan(durations)], bins=50, histtype="step", label=name)
        axes[0, 2].hist(levels[~np.isnan(levels)], bins=50, histtype="step", label=name)
    if with_audio:
        axes[0, 1].set(title="clip durations", xlabel="seconds", ylabel="clips", yscale="log")
        axes[0, 2].set(title="clip levels (RMS)", xlabel="dBFS", ylabel="clips", yscale="log")
        axes[0, 1].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def report_parser(description: str, list_option: str, list_help: str, hdf5_help: str) -> argparse.ArgumentParser:
    """A dataset's report command line: the option naming its official list, --hdf5, and the shared options."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(list_option, required=True, help=list_help)
    parser.add_argument("--hdf5", required=True, help=hdf5_help + " (or their mp3/ parent)")
    add_report_arguments(parser)
    return parser


def parse_report_arguments(parser: argparse.ArgumentParser, argv: Sequence[str] | None):
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return args


def stored_file(hdf5_dir: str, file_name: str) -> str:
    """`hdf5_dir/file_name`, or `hdf5_dir/mp3/file_name` when only that exists."""
    direct, nested = os.path.join(hdf5_dir, file_name), os.path.join(hdf5_dir, "mp3", file_name)
    return nested if not os.path.exists(direct) and os.path.exists(nested) else direct


def add_report_arguments(parser) -> None:
    """The options every dataset's report command shares: --out, --audio and its thresholds."""
    parser.add_argument("--out", required=True, help="folder for report.json, report.md, coverage.png and id lists")
    parser.add_argument("--audio", action="store_true", help="also decode every clip (all cores)")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: every core)")
    parser.add_argument("--silent-db", type=float, default=AudioCheck.silent_db,
                        help="a clip below this RMS level (dBFS) is silent")
    parser.add_argument("--min-seconds", type=float, default=None, help="a clip shorter than this is short")


def run_report(args, dataset: str, splits: Mapping[str, tuple[ClipList, str | None]], labels: Sequence[Label],
               min_seconds: float, extra: Mapping | None = None, stored_targets: StoredTargets | None = None) -> dict:
    """Build and write the report from `add_report_arguments`' options (`min_seconds`: the dataset's
    default; `extra`: the dataset's own top-level entries; `stored_targets`: see `compare_split`), print one
    line per split; returns the report."""
    audio = AudioCheck(args.silent_db, args.min_seconds if args.min_seconds is not None else min_seconds,
                       workers=args.workers) if args.audio else None
    started = time.perf_counter()
    report = {**build_report(dataset, splits, labels, audio, stored_targets=stored_targets), **(extra or {})}
    written = write_report(args.out, report)
    for name, split in report["splits"].items():
        print(f"{name}: {split['present']:,} of {split['listed']:,} listed clips present, {split['missing']:,} missing, "
              f"{split['extra']:,} extra, {split['duplicates']:,} duplicated, {split['label_mismatch']:,} relabelled; "
              f"{name}_fingerprint {split['fingerprint']}")
    print(f"report in {written['json']} ({time.perf_counter() - started:.1f} s)")
    return report
