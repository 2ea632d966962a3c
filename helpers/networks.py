"""Build the network a config describes: one PaSST (release weights, a local checkpoint, or fresh) or an
ensemble, and read networks back from this project's training checkpoints."""

from __future__ import annotations

import logging
import os
from typing import Mapping, Sequence

import torch
from torch import nn

from models.passt import EnsembleModel, get_model
from models.registry import get_arch
from models.weights import CheckpointError, check_state_dict, read_checkpoint_file

log = logging.getLogger(__name__)

CHECKPOINT_WEIGHTS = ("net", "swa")


def is_training_checkpoint(path: str) -> bool:
    return os.fspath(path).endswith(".ckpt")


TRAINING_CHECKPOINT_KEYS = ("epoch", "global_step", "state_dict", "loops", "optimizer_states")


def load_training_checkpoint(path: str, mmap: bool = False) -> dict:
    """A training checkpoint (.ckpt) of this project, read with `weights_only=True` (a file holding Python
    code is refused). Raises `CheckpointError` naming the file for a truncated or foreign file. `mmap`
    maps the tensors instead of reading them (a cheap check)."""
    checkpoint = read_checkpoint_file(path, "training checkpoint", mmap)
    missing = [key for key in TRAINING_CHECKPOINT_KEYS if not isinstance(checkpoint, dict) or key not in checkpoint]
    if missing:
        raise CheckpointError(f"{path} is not a training checkpoint of this project: it lacks {', '.join(missing)} "
                              "(release weights go to models.net.checkpoint, not resume)")
    return checkpoint


def training_checkpoint_state_dict(path: str, weights: str = "net") -> dict[str, torch.Tensor]:
    """The network (`weights="net"`) or its SWA average (`"swa"`) stored in a training checkpoint (.ckpt)."""
    if weights not in CHECKPOINT_WEIGHTS:
        raise ValueError(f"checkpoint_weights={weights!r}; allowed: {', '.join(CHECKPOINT_WEIGHTS)}")
    checkpoint = read_checkpoint_file(path, "training checkpoint")
    prefix = "net." if weights == "net" else "swa.net."
    state_dict = {key[len(prefix):]: value for key, value in checkpoint.get("state_dict", {}).items()
                  if key.startswith(prefix)}
    if not state_dict:
        raise CheckpointError(f"{path} holds no {'SWA ' if weights == 'swa' else ''}network weights "
                              f"(no state_dict keys starting with {prefix!r})")
    return state_dict


def lighten_model(net: nn.Module, cut_depth: int) -> nn.Module:
    """Upstream's `lighten_model` (`models.net.cut_depth`): N > 0 keeps the first block and drops the next N;
    N < 0 keeps the first and the last block and every -N-th block between them; 0 keeps all."""
    if not cut_depth:
        return net
    blocks = list(net.blocks.children())
    if cut_depth > 0:
        if len(blocks) < cut_depth + 2:
            raise ValueError(f"cut_depth={cut_depth}: a network with {len(blocks)} blocks allows 1..{len(blocks) - 2}")
        kept = [blocks[0]] + blocks[cut_depth + 1:]
    else:
        kept = [blocks[0]] + blocks[1:-1:-cut_depth] + [blocks[-1]]
    log.info("cut_depth=%d: %d of %d transformer blocks kept", cut_depth, len(kept), len(blocks))
    net.blocks = nn.Sequential(*kept)
    return net


def build_single(arch: str, checkpoint: str | None = None, checkpoint_weights: str = "net",
                 pretrained: bool = True, cut_depth: int = 0, embed: str = "default", **options) -> nn.Module:
    """`models.passt.get_model(arch, pretrained, **options)`; `checkpoint` loads a local file instead of the
    release weights: a release-format state_dict, or a training checkpoint (.ckpt, with `checkpoint_weights`
    choosing the network or its SWA average, which must fit exactly). `cut_depth` removes blocks after
    the weights are loaded (a training checkpoint of a cut network is read into a cut network)."""
    if embed != "default":
        raise ValueError(f"models.net.embed={embed!r}; allowed: default")
    if checkpoint and is_training_checkpoint(checkpoint):
        net = lighten_model(get_model(arch=arch, pretrained=False, **options), cut_depth)
        state_dict = training_checkpoint_state_dict(checkpoint, checkpoint_weights)
        check_state_dict(state_dict, net, checkpoint)
        net.load_state_dict(state_dict, strict=True)
        log.info("loaded %s weights (%s) from %s", arch, checkpoint_weights, checkpoint)
        return net
    return lighten_model(get_model(arch=arch, pretrained=pretrained, checkpoint=checkpoint, **options), cut_depth)


def network_description(net: Mapping, mel: Mapping) -> dict | None:
    """What a training checkpoint records of its network (`checkpoint["network"]`, `models.weights.NETWORK_KEYS`)
    so that inference rebuilds it without being told the architecture; None for an ensemble."""
    if net.get("arch_list"):
        return None
    arch = get_arch(net["arch"])
    return {"arch": arch.name, "fstride": net.get("fstride") or arch.stride[0],
            "tstride": net.get("tstride") or arch.stride[1], "input_fdim": net.get("input_fdim") or arch.input_size[0],
            "input_tdim": net.get("input_tdim") or arch.input_size[1], "n_classes": net["n_classes"],
            "in_channels": net.get("in_channels", 1), "frame_head": net.get("frame_head") or arch.frame_head,
            "frames": net.get("frames"), "cut_depth": net.get("cut_depth", 0), "mel_hopsize": mel.get("hopsize", 320)}


def build_network(arch: str, arch_list: Sequence | None = None, checkpoint: str | None = None,
                  checkpoint_weights: str = "net", **options) -> nn.Module:
    """The network of a `models.net` config. A non-empty `arch_list` of `(arch, fstride, tstride)` or
    `(arch, fstride, tstride, checkpoint)` builds an `EnsembleModel` averaging the members' logits; then
    `arch`, `fstride`, `tstride` and `checkpoint` of the config are not used."""
    if not arch_list:
        return build_single(arch, checkpoint, checkpoint_weights, **options)
    members = []
    for entry in arch_list:
        if not isinstance(entry, (list, tuple)) or len(entry) not in (3, 4):
            raise ValueError(f"models.net.arch_list entries are (arch, fstride, tstride[, checkpoint]), got {entry!r}")
        member_arch, fstride, tstride, *member_checkpoint = entry
        member_options = {**options, "fstride": fstride, "tstride": tstride}
        members.append(build_single(member_arch, member_checkpoint[0] if member_checkpoint else None,
                                    checkpoint_weights, **member_options))
    log.info("ensemble of %d networks: %s", len(members), ", ".join(str(entry[0]) for entry in arch_list))
    return EnsembleModel(members)

