"""The data report at full AudioSet size: `python -m audioset.report` on index-scale files (benchmarks/scale.py's
generator: 2,041,789 training clips, 20,371 eval clips in upstream's layout) against generated segment lists
of the official sizes (22,160 balanced, 2,041,789 unbalanced and 20,371 eval segments: 2,084,320 listed).

The lists give each stored clip its stored labels, except every 1000th (relabelled), list more clips than the
training files hold (missing), and shift the eval ids (missing and extra clips). Measures the report's wall
time and peak RSS (its own process) against the size of the packed targets, checks its figures, and times
`--audio`'s decoding on a small file of 10 s clips (clips/s on every core).

    python benchmarks/report_scale.py                    # full size (files kept in --dir for the next run)
    python benchmarks/report_scale.py --clips 200000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.index_scale_audioset import (CLASSES, FULL_BALANCED, FULL_EVAL, FULL_UNBALANCED,  # noqa: E402
                                             add_dataset_arguments, make_index_scale_audioset)

FULL_LISTED = {"balanced": 22160, "unbalanced": 2041789, "eval": 20371}
LIST_FILES = {"balanced": "balanced_train_segments.csv", "unbalanced": "unbalanced_train_segments.csv",
              "eval": "eval_segments.csv"}
SPLIT_NAMES = {"balanced": "balanced_train", "unbalanced": "unbalanced_train", "eval": "eval"}
RELABEL_EVERY = 1000
CHUNK = 65536


def listed_counts(rows: dict[str, int]) -> dict[str, int]:
    """Segments per list, scaled from the official sizes to the files' row counts."""
    full_rows = {"balanced": FULL_BALANCED, "unbalanced": FULL_UNBALANCED, "eval": FULL_EVAL}
    return {key: max(rows[key], round(rows[key] * FULL_LISTED[key] / full_rows[key])) for key in rows}


def eval_shift(rows: int) -> int:
    return max(1, rows // 200)


def write_segment_list(path: str, hdf5_file: str, listed: int, first_id: int, mids: list[str]) -> None:
    """Ids first_id..first_id + listed - 1 in Google's format, each with the stored labels of the file row of
    that id (relabelled every RELABEL_EVERY rows; ids past the file get class id % classes)."""
    partial = path + ".partial"
    with h5py.File(hdf5_file, "r") as file, open(partial, "w") as out:
        out.write("# Segments csv created by benchmarks/report_scale.py\n# num_ytids=%d\n"
                  "# YTID, start_seconds, end_seconds, positive_labels\n" % listed)
        targets = file["target"]
        for start in range(first_id, first_id + listed, CHUNK):
            stop = min(start + CHUNK, first_id + listed)
            stored = np.unpackbits(targets[start:min(stop, len(targets))], axis=1, count=CLASSES).astype(bool)
            lines = []
            for offset, clip in enumerate(range(start, stop)):
                if offset < len(stored):
                    classes = np.flatnonzero(stored[offset])
                    if clip % RELABEL_EVERY == RELABEL_EVERY - 1:
                        classes = (classes + 1) % CLASSES
                else:
                    classes = [clip % CLASSES]
                lines.append(f'{clip:011d}, 0.000, 10.000, "{",".join(mids[c] for c in classes)}"\n')
            out.write("".join(lines))
    os.replace(partial, path)


def make_lists(directory: str, paths: dict[str, str]) -> tuple[str, dict]:
    """The three segment lists under `directory`/lists (kept when present) and the figures they imply."""
    from helpers.data import read_label_file

    mids = [label.mid for label in read_label_file(os.path.join(ROOT, "metadata", "audioset_class_labels_indices.csv"))]
    rows = {}
    for key, path in paths.items():
        with h5py.File(path, "r") as file:
            rows[key] = len(file["target"])
    listed = listed_counts(rows)
    shift = {"balanced": 0, "unbalanced": 0, "eval": eval_shift(rows["eval"])}
    lists = os.path.join(directory, "lists")
    os.makedirs(lists, exist_ok=True)
    meta = os.path.join(lists, "lists.json")
    wanted = {"rows": rows, "listed": listed, "shift": shift}
    if not (os.path.exists(meta) and json.load(open(meta)) == wanted):
        for key in paths:
            started = time.perf_counter()
            write_segment_list(os.path.join(lists, LIST_FILES[key]), paths[key], listed[key], shift[key], mids)
            print(f"wrote {LIST_FILES[key]}: {listed[key]:,} segments in {time.perf_counter() - started:.0f} s", flush=True)
        with open(meta, "w") as file:
            json.dump(wanted, file)
    expected = {}
    for key in paths:
        present = min(rows[key], listed[key] + shift[key]) - shift[key]
        relabelled = sum(1 for clip in range(shift[key], shift[key] + present) if clip % RELABEL_EVERY == RELABEL_EVERY - 1)
        expected[SPLIT_NAMES[key]] = {"listed": listed[key], "present": present, "missing": listed[key] - present,
                                      "extra": rows[key] - present, "duplicates": 0, "label_mismatch": relabelled}
    return lists, expected


def measure_report(lists: str, directory: str) -> dict:
    """`python -m audioset.report` in its own process: wall seconds, peak RSS and its rise over a process that
    only imports what the report imports (measured first: the children's peak RSS is a running maximum)."""
    out = os.path.join(directory, "report")
    subprocess.run([sys.executable, "-c", "import audioset.report, helpers.data.report, matplotlib.pyplot"],
                   cwd=ROOT, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": ROOT})
    baseline = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    started = time.perf_counter()
    process = subprocess.run([sys.executable, "-m", "audioset.report", "--segments", lists, "--hdf5", directory,
                              "--out", out], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": ROOT})
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"audioset.report failed:\n{process.stderr[-4000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with open(os.path.join(out, "report.json")) as file:
        report = json.load(file)
    return {"seconds": seconds, "peak_rss_mib": peak, "rise_mib": peak - baseline, "report": report,
            "stdout": process.stdout}


def measure_audio(directory: str, clips: int) -> dict:
    """--audio's decoding speed on `clips` clips of 10 s (a tone over noise) on every core."""
    from helpers.data import PackedBitsTargets, encode_mp3, write_hdf5_dataset
    from helpers.data.report import AudioCheck, check_audio

    path = os.path.join(directory, f"ten_second_clips_{clips}.hdf")
    if not os.path.exists(path):
        rng = np.random.default_rng(0)
        t = np.arange(320000) / 32000
        audio = [encode_mp3((0.2 * np.sin(2 * np.pi * (200 + 10 * i) * t) + 0.01 * rng.standard_normal(320000))
                            .astype(np.float32), 32000) for i in range(8)]
        write_hdf5_dataset(path, [f"Y{i:011d}.mp3" for i in range(clips)], [audio[i % 8] for i in range(clips)],
                           np.zeros((clips, CLASSES)), PackedBitsTargets(CLASSES))
    found = check_audio(path, AudioCheck(min_seconds=9.0), progress=False)
    return {"clips": clips, "workers": found["workers"], "seconds": found["seconds"],
            "clips_per_second": found["clips_per_second"], "flagged": len(found["short"]) + len(found["silent"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(parser)
    parser.add_argument("--audio-clips", type=int, default=200, help="10 s clips for the --audio speed (0: skip)")
    args = parser.parse_args(argv)
    directory = os.path.abspath(args.dir)
    paths = make_index_scale_audioset(directory, args.clips, args.eval_clips)
    lists, expected = make_lists(directory, paths)
    measured = measure_report(lists, directory)
    packed_mib = 0.0
    for path in paths.values():
        with h5py.File(path, "r") as file:
            packed_mib += file["target"].size / 2**20
    figures = {name: {key: split[key] for key in expected[name]} for name, split in measured["report"]["splits"].items()}
    listed = sum(split["listed"] for split in measured["report"]["splits"].values())
    print(f"\n== python -m audioset.report, {listed:,} listed segments, {args.clips:,} training + {args.eval_clips:,} "
          f"eval clips stored ==\nwall {measured['seconds']:.1f} s, peak RSS {measured['peak_rss_mib']:,.0f} MiB, "
          f"{measured['rise_mib']:,.0f} MiB above the imports alone (packed targets of the files: {packed_mib:,.0f} MiB)")
    print(measured["stdout"].strip())
    print("figures as generated:", figures == expected)
    if figures != expected:
        print(json.dumps({"expected": expected, "reported": figures}, indent=1))
    if args.audio_clips:
        audio = measure_audio(directory, args.audio_clips)
        print(f"--audio: {audio['clips']} clips of 10 s decoded in {audio['seconds']:.1f} s on {audio['workers']} "
              f"processes: {audio['clips_per_second']:.0f} clips/s ({audio['flagged']} flagged)")


if __name__ == "__main__":
    main()
