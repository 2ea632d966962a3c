"""Knowledge distillation in the experiments: which teacher logits file feeds which training file, the
checks of those files before any work, the teacher targets the data core appends, and the distilled task."""

from __future__ import annotations

import logging
import os
from typing import Mapping, Sequence

from helpers.config_checks import ConfigError
from helpers.data.teacher import TeacherTargets, check_logits_file, logits_file_name
from helpers.tasks import Distilled

log = logging.getLogger(__name__)


def teacher_files(config: Mapping, training_files: Sequence[str]) -> list[str] | None:
    """The teacher logits file of each training file (in order) that `kd.teacher_logits` names: a list of
    files, one file (one training file), or a folder holding save_logits' `<file stem>.logits.hdf`; None
    without distillation."""
    spec = (config.get("kd") or {}).get("teacher_logits")
    if not spec:
        return None
    if isinstance(spec, (list, tuple)):
        files = [os.fspath(path) for path in spec]
    elif os.path.isdir(spec):
        files = [os.path.join(spec, logits_file_name(path)) for path in training_files]
    else:
        files = [os.fspath(spec)]
    if len(files) != len(training_files):
        raise ConfigError(f"kd.teacher_logits: {len(files)} file(s) for {len(training_files)} training file(s) "
                          f"({', '.join(training_files)}); give one per training file, in that order, or a folder")
    return files


def check_teachers(config: Mapping, training_files: Sequence[str]) -> dict | None:
    """Before any work: every teacher file fits its training file (names, rows) and the head (classes), or
    ConfigError naming the file and the first difference. Returns the clip and missing-row counts."""
    files = teacher_files(config, training_files)
    if files is None:
        return None
    counts = {"clips": 0, "missing": 0}
    for logits, dataset in zip(files, training_files):
        try:
            found = check_logits_file(logits, dataset, config["models"]["net"]["n_classes"])
        except (OSError, ValueError) as error:
            raise ConfigError(f"invalid config:\n  kd.teacher_logits: {error}") from error
        counts["clips"] += found["rows"]
        counts["missing"] += found["missing"]
    log.info("distillation: teacher logits for %d training clips, %d without a teacher row (they get the label "
             "term only); teacher weight %s, temperature %s", counts["clips"], counts["missing"],
             config["kd"]["teacher_weight"], config["kd"]["temperature"])
    return counts


def teacher_targets(config: Mapping, training_files: Sequence[str], activation: str = "sigmoid"):
    """One `TeacherTargets` per training file (`DataOptions.teachers`), or None."""
    files = teacher_files(config, training_files)
    if files is None:
        return None
    return [TeacherTargets(path, config["kd"]["temperature"], activation) for path in files]


def distilled(task, config: Mapping):
    """`task` with the distillation loss when `kd.teacher_logits` is set."""
    if not (config.get("kd") or {}).get("teacher_logits"):
        return task
    classes = config["models"]["net"]["n_classes"]
    own_width = 2 * task.n_labels if hasattr(task, "n_labels") else classes
    return Distilled(task, classes, config["kd"]["teacher_weight"], own_width)
