"""Pack AudioSet mp3 files into an HDF5-mp3 file, using a segment CSV and the label file.

The segment CSV has AudioSet's layout (`balanced_train_segments.csv`, `eval_segments.csv`, ...): three
comment lines, then `YTID, start_seconds, end_seconds, "mid,mid,..."`. Clip `YTID` is looked up as
`Y<YTID>.mp3` anywhere below --mp3-dir; segments without an mp3 file are left out and counted.

    python -m audioset.prepare_scripts.create_h5pymp3_dataset --mp3-dir mp3_audio/balanced_train_segments \\
        --segments balanced_train_segments.csv --out audioset_hdf5s/mp3/balanced_train_segments_mp3.hdf
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import pathlib
from typing import NamedTuple

from helpers.data import PackedBitsTargets, read_label_file
from helpers.data.labels import mid_to_index, multi_hot
from helpers.data.prepare import PackReport, pack_mp3_files

DEFAULT_LABEL_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "metadata",
                                  "audioset_class_labels_indices.csv")


class Segment(NamedTuple):
    """One row of an AudioSet segment CSV."""

    ytid: str
    start_seconds: float
    end_seconds: float
    mids: tuple[str, ...]

    @property
    def audio_name(self) -> str:
        return f"Y{self.ytid}.mp3"


def read_segments_csv(path: str | os.PathLike) -> list[Segment]:
    """Read an AudioSet segment CSV; errors name the file and line."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"segment CSV {path!r} does not exist")
    segments = []
    with open(path, newline="", encoding="utf-8") as file:
        for line_number, row in enumerate(csv.reader(file, skipinitialspace=True), start=1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) != 4:
                raise ValueError(f"{path!r} line {line_number}: expected 4 columns "
                                 f"(YTID, start_seconds, end_seconds, positive_labels), found {row}")
            try:
                start, end = float(row[1]), float(row[2])
            except ValueError:
                raise ValueError(f"{path!r} line {line_number}: start/end are not numbers: {row[1:3]}") from None
            mids = tuple(mid.strip() for mid in row[3].split(",") if mid.strip())
            segments.append(Segment(row[0].strip(), start, end, mids))
    return segments


def index_mp3_files(mp3_dir: str | os.PathLike) -> dict[str, str]:
    """Map file name -> path for every .mp3 below `mp3_dir`."""
    folder = pathlib.Path(mp3_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"mp3 folder {str(folder)!r} does not exist")
    return {path.name: str(path) for path in folder.rglob("*.mp3")}


def create_hdf5_from_segments(segments_csv: str | os.PathLike, mp3_dir: str | os.PathLike,
                              out_path: str | os.PathLike,
                              label_file: str | os.PathLike = DEFAULT_LABEL_FILE) -> PackReport:
    """Write `out_path` from the segments of `segments_csv` that have an mp3 file below `mp3_dir`."""
    labels = read_label_file(label_file)
    index_of = mid_to_index(labels)
    segments = read_segments_csv(segments_csv)
    files = index_mp3_files(mp3_dir)

    def clips():
        for segment in segments:
            target = multi_hot(segment.mids, index_of, len(labels),
                               f"{os.fspath(segments_csv)!r}: segment {segment.ytid}",
                               f"the label file {os.fspath(label_file)!r}")
            yield segment.audio_name, files.get(segment.audio_name, ""), target

    return pack_mp3_files(out_path, clips(), PackedBitsTargets(len(labels)), total=len(segments))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mp3-dir", required=True, help="folder with Y<YTID>.mp3 files (searched recursively)")
    parser.add_argument("--segments", required=True, help="AudioSet segment CSV")
    parser.add_argument("--labels", default=DEFAULT_LABEL_FILE, help="label file (index,mid,display_name)")
    parser.add_argument("--out", required=True, help="HDF5 file to write, e.g. .../mp3/eval_segments_mp3.hdf")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = create_hdf5_from_segments(args.segments, args.mp3_dir, args.out, args.labels)
    print(f"wrote {report.written} clips to {args.out}; {len(report.missing)} segments had no mp3 file")


if __name__ == "__main__":
    main()
