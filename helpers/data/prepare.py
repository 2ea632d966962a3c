"""Shared preparation logic: convert audio files to mp3 in parallel, pack mp3 files into HDF5."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import pathlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from helpers.data.atomic import atomic_open, write_text
from helpers.data.audio import AudioDecodeError, decode_audio, encode_mp3
from helpers.data.hdf5 import HDF5DatasetWriter, TargetCodec

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".webm", ".mp4", ".aiff",
                    ".aif", ".wma", ".mkv")


@dataclass
class ConversionReport:
    """What `convert_folder_to_mp3` did: counts, and the inputs it could not read with the reason."""

    converted: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def convert_file_to_mp3(source: str | os.PathLike, target: str | os.PathLike, sample_rate: int = 32000,
                        channels: int = 1) -> None:
    """Decode any PyAV-readable file at `sample_rate` and write it as mp3 (atomically): mono-mixed with
    `channels=1`; with `channels=2` stereo files stay stereo and mono files mono (the dataset repeats them);
    a file with other channel counts raises `AudioDecodeError`."""
    if channels not in (1, 2):
        raise ValueError(f"mp3 holds 1 or 2 channels, got channels={channels!r}")
    waveform = decode_audio(source, sample_rate, channels=1 if channels == 1 else None)
    if waveform.ndim == 2 and waveform.shape[0] > channels:
        raise AudioDecodeError(os.fspath(source), f"has {waveform.shape[0]} channels; at most {channels} are kept")
    encoded = encode_mp3(waveform, sample_rate)
    with atomic_open(target) as file:
        file.write(encoded)


def _convert_job(job: tuple[str, str, int, int]) -> tuple[str, str | None]:
    source, target, sample_rate, channels = job
    try:
        convert_file_to_mp3(source, target, sample_rate, channels)
        return source, None
    except (AudioDecodeError, OSError, ValueError) as error:
        return source, str(error)


def find_audio_files(folder: str | os.PathLike, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[pathlib.Path]:
    """Audio files below `folder` (by extension, case-insensitive), sorted."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"source folder {str(folder)!r} does not exist")
    wanted = {extension.lower() for extension in extensions}
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in wanted)


def convert_folder_to_mp3(source_dir: str | os.PathLike, out_dir: str | os.PathLike, sample_rate: int = 32000,
                          workers: int | None = None, report_path: str | os.PathLike | None = None,
                          extensions: Sequence[str] = AUDIO_EXTENSIONS) -> ConversionReport:
    """Convert every audio file below `source_dir` to `out_dir/<same relative path>.mp3`.

    Resumable: outputs that already exist are skipped (they are written atomically, so an existing
    one is complete). Runs on `workers` processes (default: all CPUs) with a progress bar. Unreadable
    inputs are listed, one `path<TAB>reason` per line, in `report_path` (default
    `out_dir/conversion_failures.tsv`), which is rewritten on every run.
    """
    source_dir, out_dir = pathlib.Path(source_dir), pathlib.Path(out_dir)
    pairs = [(source, (out_dir / source.relative_to(source_dir)).with_suffix(".mp3"))
             for source in find_audio_files(source_dir, extensions)]
    report_path = pathlib.Path(report_path) if report_path else out_dir / "conversion_failures.tsv"
    return convert_files_to_mp3(pairs, report_path, sample_rate, workers, description=f"{source_dir} to {out_dir}")


def convert_files_to_mp3(pairs: Sequence[tuple[str | os.PathLike, str | os.PathLike]],
                         report_path: str | os.PathLike, sample_rate: int = 32000, workers: int | None = None,
                         channels: int = 1, description: str = "") -> ConversionReport:
    """Convert each `(source, target)` pair to an mp3 file at `target` (see `convert_file_to_mp3`).

    Resumable: targets that already exist are skipped (they are written atomically, so an existing one is
    complete). Runs on `workers` processes (default: all CPUs) with a progress bar. Unreadable sources are
    listed, one `path<TAB>reason` per line, in `report_path`, which is rewritten on every run.
    """
    report = ConversionReport()
    jobs = []
    for source, target in pairs:
        if os.path.exists(target):
            report.skipped += 1
        else:
            jobs.append((os.fspath(source), os.fspath(target), sample_rate, channels))
    logger.info("converting %d files %s(%d already done)", len(jobs), f"from {description} " if description else "",
                report.skipped)
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    with multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else _InlinePool() as pool:
        for source, error in tqdm(pool.imap_unordered(_convert_job, jobs, chunksize=4), total=len(jobs),
                                  desc="to mp3", unit="file"):
            if error is None:
                report.converted += 1
            else:
                report.failed.append((source, error))
    report.failed.sort()
    write_text(report_path, "".join(f"{source}\t{reason}\n" for source, reason in report.failed))
    if report.failed:
        logger.warning("%d files could not be converted; listed in %s", len(report.failed), report_path)
    return report


class _InlinePool:
    """The two Pool methods used above, run in this process (one worker, or nothing to do)."""

    def imap_unordered(self, function, jobs, chunksize=1):
        return map(function, jobs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


@dataclass
class PackReport:
    """What `pack_mp3_files` did: clips written and names whose mp3 file was missing."""

    written: int = 0
    missing: list[str] = field(default_factory=list)


def pack_mp3_files(out_path: str | os.PathLike, clips: Iterable[tuple[str, str | os.PathLike, np.ndarray]],
                   target_codec: TargetCodec, total: int | None = None,
                   extra_datasets: dict[str, list] | None = None) -> PackReport:
    """Write an HDF5-mp3 file from `(audio_name, mp3 path, target)` triples, skipping clips whose file
    does not exist. `extra_datasets` maps a key to one value per input clip (kept for written clips)."""
    report = PackReport()
    kept_rows = []
    with HDF5DatasetWriter(out_path, target_codec) as writer:
        for row, (name, path, target) in enumerate(tqdm(clips, total=total, desc=f"packing {os.path.basename(out_path)}",
                                                        unit="clip")):
            if not os.path.isfile(path):
                report.missing.append(name)
                continue
            with open(path, "rb") as file:
                writer.append(name, file.read(), target)
            kept_rows.append(row)
        for key, values in (extra_datasets or {}).items():
            writer.add_dataset(key, np.asarray([values[row] for row in kept_rows]))
        report.written = writer.count
    if report.missing:
        logger.warning("%s: %d clips have no mp3 file and were left out (first: %s)", out_path,
                       len(report.missing), report.missing[:5])
    logger.info("wrote %d clips to %s", report.written, out_path)
    return report


def release_cli(argv: Sequence[str] | None, description: str, release_flag: str, release_help: str, out_help: str,
                prepare: Callable[..., Mapping[str, PackReport]]) -> None:
    """The command line of a script that prepares a dataset release: `release_flag` (the release folder),
    `--out-dir`, `--mp3-dir` (default: the release folder's `mp3/`) and `--workers`. Calls
    `prepare(release_dir, out_dir, mp3_dir, workers)` and prints a line per written file."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    release_name = release_flag.lstrip("-").replace("-", "_").upper()
    parser.add_argument(release_flag, required=True, dest="release_dir", metavar=release_name, help=release_help)
    parser.add_argument("--out-dir", required=True, help=out_help)
    parser.add_argument("--mp3-dir", default=None, help=f"where converted mp3s go (default: {release_name}/mp3)")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for file_name, report in prepare(args.release_dir, args.out_dir, args.mp3_dir, args.workers).items():
        print(f"{file_name}: {report.written} clips, {len(report.missing)} without audio")
