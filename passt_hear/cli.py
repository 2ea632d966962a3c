"""Command line: ``python -m passt_hear tag …`` and ``python -m passt_hear export-onnx …``.

Exit status: 0 when everything worked, 1 when some files could not be tagged (they are reported and
skipped), 2 for bad arguments, label files or checkpoints.
"""
import argparse
import json
import logging
import os
import sys
from typing import List, Optional

import torch
from tqdm import tqdm

from helpers.data.audio import AudioDecodeError
from models.weights import CheckpointError
from passt_hear.events import add_event_options
from passt_hear.variants import DEFAULT_ARCH, Variant
from passt_hear.wrapper import PasstWrapper

log = logging.getLogger("passt_hear")

EXIT_OK, EXIT_FILES_FAILED, EXIT_USAGE = 0, 1, 2

# How ``tag`` windows audio longer than the network takes: its own way by default, or hear21passt's.
TAG_WINDOWINGS = {
    "end_aligned": dict(windowing="end_aligned", window_seconds=None),  # longest windows, the last at the end
    "centred": dict(windowing="centred"),  # the HEAR API's (hear21passt's): clip-length windows, reflected ends
}


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m passt_hear", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details (INFO level)")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_model_options(command):
        command.add_argument("--arch", default=DEFAULT_ARCH,
                             help=f"architecture from models/registry.py or an alias (default {DEFAULT_ARCH}); "
                                  "without --checkpoint its release weights are used (torch.hub cache)")
        command.add_argument("--checkpoint", help="weights of --arch: a release-format state_dict (n_classes from "
                                                  "its head), or a training checkpoint of this project, which "
                                                  "brings its own architecture, strides and input size")

    tag = commands.add_parser("tag", help="print the most probable labels of audio files",
                              description="Tag audio files (any format FFmpeg reads; mono-mixed, resampled).")
    tag.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="audio files, or folders searched for them")
    add_model_options(tag)
    tag.add_argument("--topk", type=positive_int, default=10, help="labels per file (default 10)")
    tag.add_argument("--labels", help="label file (index,mid,display_name) for fine-tuned heads; default: the "
                                      "AudioSet labels in metadata/")
    tag.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    tag.add_argument("--frames", action="store_true", help="also give label probabilities over time")
    tag.add_argument("--frame-window", type=positive_float, default=1.0, help="frame window in s (default 1)")
    tag.add_argument("--frame-hop", type=positive_float, default=0.5, help="frame hop in s (default 0.5)")
    tag.add_argument("--plot", metavar="OUT.png", help="draw the spectrogram and top labels over time; with "
                                                       "several files, OUT-001-<name>.png, …")
    tag.add_argument("--windowing", choices=sorted(TAG_WINDOWINGS), default="end_aligned",
                     help="audio longer than the network takes: windows as long as it takes, the last one ending "
                          "with the audio (end_aligned, default), or the HEAR API's (hear21passt's) clip-length "
                          "windows over the audio reflected at its ends (centred)")
    tag.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_event_options(tag)

    export = commands.add_parser("export-onnx", help="export the eval-mode model to ONNX",
                                 description="Export waveform-to-logits (mel frontend included) or "
                                             "spectrogram-to-logits; outputs 'logits' and 'embedding'.")
    add_model_options(export)
    export.add_argument("--input", choices=("waveform", "spectrogram"), default="waveform")
    export.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 17 for the STFT; default 18)")
    export.add_argument("--check", action="store_true", help="compare onnxruntime with torch on random input")
    export.add_argument("output", metavar="OUT.onnx")
    return parser


def load_model(args, parser) -> PasstWrapper:
    """The logits-mode model of ``--arch`` / ``--checkpoint`` (and ``--windowing``); a bad name or file exits
    with status 2."""
    windowing = TAG_WINDOWINGS[getattr(args, "windowing", "end_aligned")]
    try:
        return Variant(args.arch).get_basic_model(mode="logits", checkpoint=args.checkpoint, **windowing).eval()
    except (CheckpointError, ValueError) as error:
        parser.exit(EXIT_USAGE, f"error: {error}\n")


def plot_path(base: str, index: int, source: str, count: int) -> str:
    if count == 1:
        return base
    root, extension = os.path.splitext(base)
    return f"{root}-{index:03d}-{os.path.splitext(os.path.basename(source))[0]}{extension or '.png'}"


def run_tag(args, parser) -> int:
    from passt_hear.events import event_dicts, event_settings, file_events, format_events, write_events
    from passt_hear.tagging import audio_files, format_tags, load_labels, tag_file, tags_as_dict

    files = audio_files(args.paths)
    if not files:
        parser.exit(EXIT_USAGE, f"error: no audio files found in {', '.join(args.paths)}\n")
    model = load_model(args, parser).to(args.device)
    try:
        labels = load_labels(args.labels, model.net.num_classes)
        events = event_settings(args, labels) if (args.events or args.events_out) else None
    except (OSError, ValueError) as error:
        parser.exit(EXIT_USAGE, f"error: {error}\n")
    if events and model.is_frame_model:  # the median filter counts the model's own frames
        hop = model.max_window_samples / model.net.frames / model.sample_rate
        events = (events[0], 2 * int(round(max(args.median_filter, 0.0) / hop / 2)) + 1)
    topk = min(args.topk, len(labels))
    frame_seconds = args.frame_window if (args.frames or args.plot or events) else None
    results, failed, all_events = [], 0, []
    for index, path in enumerate(tqdm(files, desc="tagging", unit="file", disable=None)):
        try:
            tags = tag_file(model, path, frame_seconds=frame_seconds, frame_hop_seconds=args.frame_hop,
                            with_spectrogram=bool(args.plot))
        except (AudioDecodeError, OSError, ValueError) as error:
            failed += 1
            log.error("skipped %s: %s", path, error)
            results.append({"file": path, "error": str(error)})
            continue
        if args.plot:
            from passt_hear.plot import plot_tags

            destination = plot_path(args.plot, index + 1, path, len(files))
            plot_tags(tags, labels, min(topk, 5), destination)
            log.info("wrote %s", destination)
        found = file_events(tags, labels, *events) if events else []
        all_events += found
        if not args.frames:
            tags.frames = None
        if args.json:
            results.append({**tags_as_dict(tags, labels, topk),
                            **({"events": event_dicts(found)} if args.events else {})})
        else:
            tqdm.write(format_tags(tags, labels, topk) + (f"\n{format_events(found)}" if args.events else ""))
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write("\n")
    if args.events_out:
        write_events(args.events_out, all_events)
        log.info("wrote %d events to %s", len(all_events), args.events_out)
    if failed:
        log.error("%d of %d files could not be tagged", failed, len(files))
    return EXIT_FILES_FAILED if failed else EXIT_OK


def run_export(args, parser) -> int:
    from passt_hear.export import compare_with_onnxruntime, example_input, export_onnx

    if args.opset < 17:
        parser.exit(EXIT_USAGE, f"error: --opset {args.opset}: the exported STFT needs opset 17 or newer\n")
    model = load_model(args, parser)
    export_onnx(model, args.output, args.input, args.opset)
    if args.check:
        difference = compare_with_onnxruntime(model, args.output, example_input(model, args.input))
        print(f"largest |onnxruntime - torch| logit difference: {difference:.2e}")
    print(args.output)
    return EXIT_OK


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command == "tag":
        return run_tag(args, parser)
    return run_export(args, parser)
