"""Sound event detection: the frame-level task (loss, mixup, scores) and the field's metrics.

`FrameDetection` is a task like those of `helpers.tasks` for frame models (`models.passt.FramePaSST`): targets
follow `helpers.data.frames.FrameLayout` (`[strong, clip labels, frame labels]`), the network's output pair
(frame logits, clip logits) is packed the same way without the flag. Loss per clip: frame BCE for clips with
strong labels; for clips with clip labels only, `weak_loss_weight` x clip BCE on the clip head.

Metrics (`detection_metrics`) come from `sed_scores_eval` on threshold-free frame scores after a per-class
median filter, as DCASE task 4 reports them: PSDS1 (dtc = gtc = 0.7, alpha_st = 1, max_efpr 100), PSDS2
(dtc = gtc = 0.1, cttc = 0.3, alpha_ct = 0.5, alpha_st = 1, max_efpr 100), collar-based event F1 (onset
collar 200 ms, offset collar max(200 ms, 20 % of the event)) and segment-based F1 (1 s segments), both macro
over classes at a 0.5 threshold. Ground-truth events are the frame targets' runs (exact to a frame). `ap` is
the clip-level mAP: of the frames' maxima for clips with strong labels, of the clip head for the others.
"""

from __future__ import annotations

import logging
import os
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from helpers import metrics as clip_metrics
from helpers.config_keys import Derived, Key, Number
from helpers.data.events import DEFAULT_FRAME_SECONDS, frame_count, frames_to_events
from helpers.data.frames import FrameLayout
from helpers.mixup import mix

log = logging.getLogger(__name__)

PSDS1 = dict(dtc_threshold=0.7, gtc_threshold=0.7, cttc_threshold=None, alpha_ct=0.0, alpha_st=1.0, max_efpr=100.0)
PSDS2 = dict(dtc_threshold=0.1, gtc_threshold=0.1, cttc_threshold=0.3, alpha_ct=0.5, alpha_st=1.0, max_efpr=100.0)
EVENT_COLLARS = dict(onset_collar=0.2, offset_collar=0.2, offset_collar_rate=0.2)
SEGMENT_SECONDS = 1.0


class FrameDetection:
    """The frame-level detection task over a `FrameLayout`."""

    monitor = "psds1"

    def __init__(self, layout: FrameLayout, weak_loss_weight: float = 1.0, median_filter: float = 0.2,
                 threshold: float = 0.5, class_names: Sequence[str] | None = None):
        self.layout, self.weak_loss_weight = layout, float(weak_loss_weight)
        self.median_filter, self.threshold = float(median_filter), float(threshold)
        self.class_names = list(class_names) if class_names else [f"class_{index}" for index in range(layout.classes)]

    @property
    def target_width(self) -> int:
        return self.layout.width

    def logits(self, output) -> torch.Tensor:
        """(B, C + T x C): the network's (frame logits (B, T, C), clip logits (B, C)) in the target layout."""
        frames, clip = output
        if frames.shape[1:] != (self.layout.frames, self.layout.classes):
            raise ValueError(f"the frame model gives {tuple(frames.shape[1:])} (frames, classes); the targets have "
                             f"({self.layout.frames}, {self.layout.classes}): set models.net.frames")
        return torch.cat([clip, frames.flatten(1)], dim=1)

    def split(self, target):
        if target.shape[-1] != self.layout.width:
            raise ValueError(f"frame targets of width {self.layout.width} expected, got {target.shape[-1]}")
        return target, None

    def mix(self, labels, mask, partners, lam):
        mixed = mix(labels, partners, lam)
        mixed[:, 0] = torch.minimum(labels[:, 0], labels[partners, 0])  # strong only when both clips are
        return mixed, mask

    def _parts(self, packed: torch.Tensor):
        c = self.layout.classes
        return packed[:, :c], packed[:, c:].reshape(len(packed), self.layout.frames, c)

    def per_clip_loss(self, logits, labels, mask):
        strong, clip_labels, frame_labels = self.layout.unpack(labels.float())
        clip_logits, frame_logits = self._parts(logits.float())
        frame_loss = F.binary_cross_entropy_with_logits(frame_logits, frame_labels, reduction="none").mean(dim=(1, 2))
        clip_loss = F.binary_cross_entropy_with_logits(clip_logits, clip_labels, reduction="none").mean(dim=1)
        return torch.where(strong > 0.5, frame_loss, self.weak_loss_weight * clip_loss)

    def soft_target_loss(self, logits, targets):
        _, frame_logits = self._parts(logits.float())
        _, teacher_frames = self._parts(targets.float())
        return F.binary_cross_entropy_with_logits(frame_logits, teacher_frames, reduction="none").mean(dim=(1, 2))

    def scores(self, logits):
        return torch.sigmoid(logits.float())

    def metrics(self, scores, labels, mask) -> dict[str, float]:
        strong, clip_labels, frame_labels = self.layout.unpack(labels.cpu().numpy())
        clip_scores, frame_scores = (part.cpu().numpy() for part in self._parts(scores))
        keep = strong > 0.5  # clips with strong labels are tagged by their frames' maxima, others by the clip head
        clip_scores = np.where(keep[:, None], frame_scores.max(axis=1), clip_scores)
        results = {"ap": clip_metrics.mean_average_precision(clip_scores, clip_labels)}
        if keep.any():
            results.update(detection_metrics(frame_scores[keep], frame_labels[keep] > 0.5, self.layout.frame_seconds,
                                             self.class_names, self.median_filter, self.threshold))
        return results


def score_dataframes(frame_scores: np.ndarray, frame_seconds: float, class_names: Sequence[str],
                     clip_ids: Sequence[str] | None = None) -> dict:
    """sed_scores_eval's score DataFrames ({clip id: onset, offset, one column per class}) of (N, T, C) scores."""
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    timestamps = np.arange(frame_scores.shape[1] + 1) * frame_seconds
    ids = clip_ids or [f"clip_{index:06d}" for index in range(len(frame_scores))]
    return {clip: create_score_dataframe(scores, timestamps, list(class_names))
            for clip, scores in zip(ids, frame_scores)}


def detection_metrics(frame_scores: np.ndarray, frame_truth: np.ndarray, frame_seconds: float,
                      class_names: Sequence[str], median_filter: float = 0.2, threshold: float = 0.5) -> dict:
    """psds1, psds2, event_f1 and segment_f1 of (N, T, C) frame scores against (N, T, C) boolean frames."""
    from sed_scores_eval import collar_based, intersection_based, segment_based
    from sed_scores_eval.base_modules.postprocessing import medfilt

    ids = [f"clip_{index:06d}" for index in range(len(frame_scores))]
    scores = score_dataframes(frame_scores, frame_seconds, class_names, ids)
    if median_filter > 0:
        scores = medfilt(scores, median_filter)
    truth = {clip: frames_to_events(active, frame_seconds, class_names) for clip, active in zip(ids, frame_truth)}
    durations = {clip: frame_scores.shape[1] * frame_seconds for clip in ids}
    results = {}
    for name, settings in (("psds1", PSDS1), ("psds2", PSDS2)):
        results[name] = float(intersection_based.psds(scores, truth, durations, **settings)[0])
    event_f1 = collar_based.fscore(scores, truth, threshold, **EVENT_COLLARS)[0]
    segment_f1 = segment_based.fscore(scores, truth, durations, threshold, segment_length=SEGMENT_SECONDS)[0]
    results["event_f1"] = float(event_f1["macro_average"])
    results["segment_f1"] = float(segment_f1["macro_average"])
    return results


def events_from_scores(frame_scores: np.ndarray, frame_seconds: float, class_names: Sequence[str],
                       threshold: float = 0.5) -> list[tuple[float, float, str, float]]:
    """(onset, offset, class, peak probability) events of one clip's (T, C) frame probabilities."""
    events = []
    for onset, offset, label in frames_to_events(frame_scores >= threshold, frame_seconds):
        start, end = int(round(onset / frame_seconds)), int(round(offset / frame_seconds))
        events.append((onset, offset, class_names[label], float(frame_scores[start:end, label].max())))
    return events



# --- config: what an experiment with strong labels declares ---------------------------------------------------
SED_KEYS = (
    Key("sed", {"weak_loss_weight": 1.0, "median_filter": 0.2, "threshold": 0.5}, "strong labels: the clip-loss "
        "weight of clips without strong labels, the median filter (s) and the F1 threshold (helpers.sed)"),
    Key("scores_out", None, "evaluate_only of a frame model: write each clip's frame scores (sed_scores_eval's "
        "format) and the ground truth below this folder"),
)


def strong_label_keys(strong: Derived | bool) -> tuple[Key, Key]:
    """The `basedataset` keys `strong` (default `strong`) and `frame_seconds` (40 ms with strong labels)."""
    return (Key("strong", strong, "strong labels: a frame-level model, scored by PSDS"),
            Key("frame_seconds", Derived(lambda data: DEFAULT_FRAME_SECONDS if data["strong"] else None,
                                         "0.04 with strong labels, else None"),
                "the frame hop of strong-label targets (None: clip labels)", Number(gt=0, none=True)))


def _when_strong(value, otherwise, text: str) -> Derived:
    return Derived(lambda config: value(config["basedataset"]) if config["basedataset"]["strong"] else otherwise, text)


FRAME_NET_OVERRIDES = {  # models.net: a frame model that keeps every time column when the data has strong labels
    "frame_head": _when_strong(lambda data: "linear", None, '"linear" with strong labels'),
    "frames": _when_strong(lambda data: frame_count(data["clip_length"], data["frame_seconds"]), None,
                           "clip_length / frame_seconds with strong labels"),
}


def detection_task(config: Mapping, clip_task, classes: int, class_names: Sequence[str] | None = None):
    """`FrameDetection` when the data has strong labels, else `clip_task`."""
    data = config["basedataset"]
    if not data["strong"]:
        return clip_task
    return FrameDetection(FrameLayout.for_clip(classes, data["clip_length"], data["frame_seconds"]),
                          class_names=class_names, **config["sed"])


def strong_label_problems(config: Mapping) -> list[str]:
    """What a config with strong labels cannot do: score windows other than the training clip length, or a
    clip model."""
    data, net = config.get("basedataset") or {}, config["models"]["net"]
    if not data.get("strong"):
        return []
    problems = []
    if data.get("eval_clip_length", data["clip_length"]) != data["clip_length"]:
        problems.append(f"basedataset.eval_clip_length: strong labels are scored on clip_length windows "
                        f"({data['clip_length']}), got {data['eval_clip_length']!r}")
    if not net.get("frame_head"):
        problems.append("models.net.frame_head: strong labels train a frame-level model; allowed: linear, bigru")
    return problems


class FrameScoreWriter:
    """Writes what a frame model scores in evaluation: per clip a score TSV in sed_scores_eval's format
    (`onset`, `offset`, one column per class name) below `out_dir/<set>/`, and the ground-truth events of the
    clips with strong labels in `out_dir/<set>/ground_truth.tsv` (DCASE columns; `ground_truth.rank<N>.tsv`
    for the other DDP ranks), so that anyone can rescore them (`sed_scores_eval.io`)."""

    def __init__(self, out_dir: str | os.PathLike, task: FrameDetection):
        self.out_dir, self.task = os.fspath(out_dir), task
        self._started: set[str] = set()

    def folder(self, set_prefix: str) -> str:
        return os.path.join(self.out_dir, set_prefix.rstrip("_") or "eval")

    def __call__(self, set_prefix: str, names: Sequence[str], scores: torch.Tensor, labels: torch.Tensor) -> None:
        from sed_scores_eval.base_modules.io import write_sed_scores

        from helpers.data.clip_ids import clip_id

        folder = self.folder(set_prefix)
        layout, class_names = self.task.layout, self.task.class_names
        frame_scores = self.task._parts(scores.float().cpu())[1].numpy()
        strong, _, truth = layout.unpack(labels.float().cpu().numpy())
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        truth_file = os.path.join(folder, "ground_truth.tsv" if rank == 0 else f"ground_truth.rank{rank}.tsv")
        if folder not in self._started:
            os.makedirs(folder, exist_ok=True)
            with open(truth_file, "w", encoding="utf-8") as file:
                file.write("filename\tonset\toffset\tevent_label\n")
            self._started.add(folder)
        ids = [clip_id(name).replace("/", "__") for name in names]
        write_sed_scores(score_dataframes(frame_scores, layout.frame_seconds, class_names, ids), folder)
        with open(truth_file, "a", encoding="utf-8") as file:
            for clip, is_strong, active in zip(ids, strong, truth > 0.5):
                if is_strong > 0.5:
                    events = frames_to_events(active, layout.frame_seconds, class_names)
                    file.writelines(f"{clip}.wav\t{onset:.3f}\t{offset:.3f}\t{label}\n" for onset, offset, label in events)
