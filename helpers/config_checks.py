"""One check of an experiment's whole config, run before any data is read or model is built.

Each key's own values are checked from its declaration (`helpers.config_keys`, `helpers.common_config`,
a dataset's spec); here come the checks across keys (the patch grid, the dataset's classes, the files).
Every problem names its config key and what is allowed; all problems are reported together.
"""

from __future__ import annotations

import os
from typing import Mapping

from helpers.common_config import COMMON_KEYS, DATASET_KEYS, LOADER_KEYS, trainer_problems
from helpers.config_keys import KeyTable, key_problems
from helpers.sed import strong_label_problems
from models.passt import patch_grid, patchout_problem
from models.registry import ARCHITECTURES, get_arch


class ConfigError(ValueError):
    """The config cannot work; the message lists each offending key."""


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_network(net: Mapping, problems: list[str], n_classes: int | None) -> None:
    arch_list = net.get("arch_list") or []
    members = [(entry[0], entry[1], entry[2]) for entry in arch_list if isinstance(entry, (list, tuple))
               and len(entry) >= 3] if arch_list else [(net.get("arch"), net.get("fstride"), net.get("tstride"))]
    if arch_list and len(members) != len(arch_list):
        problems.append("models.net.arch_list: entries must be (arch, fstride, tstride[, checkpoint])")
    for arch, fstride, tstride in members:
        if arch not in ARCHITECTURES:
            try:
                spec = get_arch(arch)
            except ValueError:
                problems.append(f"models.net.arch: unknown architecture {arch!r}; allowed: "
                                + ", ".join(sorted(ARCHITECTURES)))
                continue
        else:
            spec = get_arch(arch)
        fstride = spec.stride[0] if fstride is None else fstride
        tstride = spec.stride[1] if tstride is None else tstride
        input_fdim = net.get("input_fdim") or spec.input_size[0]
        input_tdim = net.get("input_tdim") or spec.input_size[1]
        if not (_is_positive_int(fstride) and _is_positive_int(tstride)):
            problems.append(f"models.net.fstride/tstride: must be positive integers, got {fstride!r}, {tstride!r}")
            continue
        if not (_is_positive_int(input_fdim) and _is_positive_int(input_tdim)) \
                or min(input_fdim, input_tdim) < spec.patch_size:
            problems.append(f"models.net.input_fdim/input_tdim: must be at least one patch ({spec.patch_size}), "
                            f"got {input_fdim!r}, {input_tdim!r}")
            continue
        grid_f, grid_t = patch_grid(input_fdim, input_tdim, spec.patch_size, (fstride, tstride))
        s_f, s_t, u = net.get("s_patchout_f", 0) or 0, net.get("s_patchout_t", 0) or 0, net.get("u_patchout", 0) or 0
        problem = patchout_problem((grid_f, grid_t), s_f, s_t, u)
        if problem:
            problems.append(f"models.net.s_patchout_f/s_patchout_t/u_patchout: ({s_f}, {s_t}, {u}) remove the whole "
                            f"{grid_f}x{grid_t} patch grid of {arch}; {problem}")
    if net.get("embed", "default") != "default":
        problems.append(f"models.net.embed: {net.get('embed')!r} is not available (upstream's 'overlap' and "
                        "'am_keepconv' name classes it never shipped); allowed: default")
    cut_depth = net.get("cut_depth", 0) or 0
    if not isinstance(cut_depth, int) or isinstance(cut_depth, bool):
        problems.append(f"models.net.cut_depth: must be an integer, got {cut_depth!r}")
    else:
        for arch, _, _ in members:
            try:
                depth = get_arch(arch).depth
            except ValueError:
                continue  # reported above
            if cut_depth > 0 and cut_depth > depth - 2:
                problems.append(f"models.net.cut_depth: {arch} has {depth} blocks, so cut_depth must lie in "
                                f"1..{depth - 2} (or <= 0), got {cut_depth}")
    if net.get("frame_head"):
        if arch_list:
            problems.append("models.net.arch_list: ensembles of frame-level models (models.net.frame_head) are not "
                            "supported; allowed: []")
        if net.get("s_patchout_t") or net.get("u_patchout"):
            problems.append(f"models.net.s_patchout_t/u_patchout: a frame-level model keeps every time column, got "
                            f"{net.get('s_patchout_t')}, {net.get('u_patchout')}; allowed: 0 (s_patchout_f may drop rows)")
    if n_classes is not None and net.get("n_classes") != n_classes:
        problems.append(f"models.net.n_classes: the dataset has {n_classes} classes, got {net.get('n_classes')!r}")


def check_config(config: Mapping, *, n_classes: int | None = None, files: Mapping[str, str] | None = None,
                 folders: Mapping[str, str] | None = None, training: bool = True, keys: KeyTable = COMMON_KEYS,
                 dataset_keys: KeyTable = DATASET_KEYS) -> None:
    """Raise `ConfigError` listing every problem of `config` (an experiment's `_config`).

    keys / dataset_keys: the declarations of the top level and of `basedataset` (an experiment's, default:
    the common ones). n_classes: the dataset's number of classes (checked against `models.net.n_classes` and
    `basedataset.num_of_classes`). files / folders: config key -> path of each data file / folder the command
    reads (they must exist). training: check the training settings too.
    """
    problems = key_problems(keys, config, training)
    problems += key_problems(dataset_keys, config.get("basedataset") or {}, training, "basedataset.")
    if training and config.get("schedule_mode") == "cos_cyc" and not config.get("warm_up_len"):
        problems.append("warm_up_len: is the cycle length of schedule_mode='cos_cyc' and must be >= 1")
    dataset = config.get("basedataset", {})
    if n_classes is not None and dataset.get("num_of_classes", n_classes) != n_classes:
        problems.append(f"basedataset.num_of_classes: the dataset has {n_classes} classes, got "
                        f"{dataset['num_of_classes']!r}; allowed: {n_classes}")
    for name, loader in (config.get("datasets") or {}).items():
        if not isinstance(loader, Mapping):
            continue
        problems += key_problems(LOADER_KEYS, loader, training, f"datasets.{name}.")
        if name != "training" and loader.get("drop_last"):
            problems.append(f"datasets.{name}.drop_last: True would leave evaluation clips out; allowed: False")
    net, mel = config["models"]["net"], config["models"]["mel"]
    _check_network(net, problems, n_classes)
    if net.get("input_fdim") not in (None, mel.get("n_mels")):
        problems.append(f"models.net.input_fdim: must equal models.mel.n_mels ({mel.get('n_mels')}), "
                        f"got {net.get('input_fdim')!r}")
    if net.get("frame_head") and config.get("eval_windowing"):
        problems.append("eval_windowing: a frame-level model scores the clip_length windows its targets cover; "
                        "allowed: False")
    problems += strong_label_problems(config)
    problems += trainer_problems(config["trainer"])
    for key, path in (files or {}).items():
        if not path or not os.path.isfile(path):
            problems.append(f"{key}: data file {path!r} does not exist")
    for key, path in (folders or {}).items():
        if not path or not os.path.isdir(path):
            problems.append(f"{key}: folder {path!r} does not exist")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
