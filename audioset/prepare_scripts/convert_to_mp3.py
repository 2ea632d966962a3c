"""Convert a folder of downloaded clips (any format PyAV reads) to 32 kHz mono mp3, in parallel.

Resumable: mp3 files that already exist are skipped. Inputs that cannot be read are listed in a report.

    python -m audioset.prepare_scripts.convert_to_mp3 --source downloads/ --out mp3_audio/
"""

from __future__ import annotations

import argparse
import logging

from helpers.data.prepare import convert_folder_to_mp3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True,
                        help="folder of audio files, searched recursively (e.g. balanced_train_segments/ etc.)")
    parser.add_argument("--out", required=True, help="output folder; the source's sub-folders are mirrored")
    parser.add_argument("--sample-rate", type=int, default=32000)
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: all CPUs)")
    parser.add_argument("--report", default=None,
                        help="where to list unreadable inputs (default: OUT/conversion_failures.tsv)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = convert_folder_to_mp3(args.source, args.out, sample_rate=args.sample_rate, workers=args.workers,
                                   report_path=args.report)
    print(f"converted {report.converted}, already done {report.skipped}, failed {len(report.failed)}")


if __name__ == "__main__":
    main()
