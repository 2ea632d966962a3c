"""Release weights: find them in torch.hub's cache (download only when missing), load them safely, adapt them.

A release file placed at ``$TORCH_HOME/hub/checkpoints/<file name of the URL>`` is used as it is, so everything
works offline once the file is there.
"""
import logging
import math
import os
from typing import Dict, Mapping, Optional
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from timm.models import adapt_input_conv

log = logging.getLogger(__name__)

CLASSIFIER_KEYS = ("head.1.weight", "head.1.bias", "head_dist.weight", "head_dist.bias")
PATCH_CONV_KEY = "patch_embed.proj.weight"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be had, or does not fit the model."""


def hub_cache_path(url: str) -> str:
    """Where torch.hub keeps the file of ``url``: ``<hub dir>/checkpoints/<file name>``."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(url).path))


def resolve_checkpoint(url: str) -> str:
    """The local path of the release file at ``url``, downloading it into the hub cache when it is missing."""
    path = hub_cache_path(url)
    if os.path.isfile(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    log.info("downloading %s to %s", url, path)
    try:
        torch.hub.download_url_to_file(url, path, progress=True)
    except Exception as error:  # URLError, HTTPError, socket errors, ...
        raise CheckpointError(
            f"cannot download the release weights {url} ({type(error).__name__}: {error}); "
            f"on a machine without internet, place the file at {path} "
            f"(the torch.hub cache, set by $TORCH_HOME)") from error
    return path


def read_checkpoint_file(path: str, kind: str = "checkpoint", mmap: bool = False):
    """Whatever a torch checkpoint file holds, read with ``weights_only=True`` (a file holding Python code is
    refused); any failure is a ``CheckpointError`` naming the file. ``mmap`` maps tensors instead of reading."""
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError:
            if not mmap:
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) files can't map
    except Exception as error:
        raise CheckpointError(f"cannot load {kind} {path} (truncated, not a torch file, or holding Python code, "
                              f"which is refused): {type(error).__name__}: {error}") from error


NETWORK_KEYS = ("arch", "fstride", "tstride", "input_fdim", "input_tdim", "n_classes", "in_channels", "frame_head",
                "frames", "cut_depth", "mel_hopsize")


def checkpoint_network(path: str) -> Optional[Dict]:
    """The network a training checkpoint of this project says it holds (its ``network`` entry: architecture,
    strides, input size, classes, channels, frame head, STFT hop), or None for other files."""
    loaded = read_checkpoint_file(path, mmap=True)
    network = loaded.get("network") if isinstance(loaded, Mapping) else None
    if network is None:
        return None
    missing = [key for key in NETWORK_KEYS if key not in network]
    if missing:
        raise CheckpointError(f"checkpoint {path}: its network description lacks {', '.join(missing)}")
    return dict(network)


def load_state_dict(path: str, mmap: bool = False) -> Dict[str, torch.Tensor]:
    """The state_dict in a checkpoint file, loaded with ``weights_only=True``.

    Accepts a bare state_dict or one wrapped in ``{"state_dict": …}`` / ``{"model": …}`` (DeiT releases); a
    wrapped Lightning checkpoint of this project keeps the network under the ``net.`` prefix, which is removed
    (its SWA average, under ``swa.``, is left out).
    ``mmap=True`` maps the tensors instead of reading them (cheap when only shapes are needed).
    """
    loaded = read_checkpoint_file(path, mmap=mmap)
    for wrapper in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and wrapper in loaded and isinstance(loaded[wrapper], Mapping):
            loaded = loaded[wrapper]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointError(f"checkpoint {path} holds no state_dict of tensors")
    if any(k.startswith("net.") for k in loaded) and all(k.startswith(("net.", "swa.")) for k in loaded):
        loaded = {k[len("net."):]: v for k, v in loaded.items() if k.startswith("net.")}
    return dict(loaded)


def check_state_dict(state_dict: Mapping[str, torch.Tensor], model: torch.nn.Module, source: str) -> None:
    """Raise a ``CheckpointError`` listing every missing, unexpected or differently shaped key."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = sorted(f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
                    for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append("missing keys: " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected keys: " + ", ".join(unexpected))
        if shapes:
            parts.append("different shapes: " + "; ".join(shapes))
        raise CheckpointError(f"checkpoint {source} does not fit the model: " + " | ".join(parts))


def drop_classifier(state_dict: Dict[str, torch.Tensor], model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """Keep the checkpoint's classifier heads only where their shapes match the model's (new n_classes)."""
    expected = model.state_dict()
    dropped = [k for k in CLASSIFIER_KEYS if k in state_dict and k in expected
               and state_dict[k].shape != expected[k].shape]
    if dropped:
        log.info("checkpoint has %d classes, the model %d: keeping all but the classifier heads (%s)",
                 state_dict["head.1.weight"].shape[0], expected["head.1.weight"].shape[0], ", ".join(dropped))
    for key in dropped:
        state_dict[key] = expected[key]
    return state_dict


def adapt_input_channels(conv_weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """A patch convolution ``(out, C, k, k)`` for ``in_channels`` inputs: timm's ``adapt_input_conv`` to one
    channel (the sum over C), then to ``in_channels`` (that sum repeated, divided by ``in_channels``). The
    same signal in every input channel thus gives the output of the C-channel weights on that signal in each
    of theirs (timm's direct C -> N repeat would not, for 3 -> 2)."""
    if conv_weight.shape[1] == in_channels:
        return conv_weight
    mono = adapt_input_conv(1, conv_weight, base_chans=conv_weight.shape[1])
    return adapt_input_conv(in_channels, mono, base_chans=1)


def adapt_patch_embedding(state_dict: Dict[str, torch.Tensor], model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """Fit the checkpoint's patch convolution to the model's input channels (``adapt_input_channels``)."""
    in_channels = model.patch_embed.proj.in_channels
    weight = state_dict.get(PATCH_CONV_KEY)
    if weight is not None and weight.dim() == 4 and weight.shape[1] != in_channels:
        log.info("patch embedding adapted from %d to %d input channels", weight.shape[1], in_channels)
        state_dict = {**state_dict, PATCH_CONV_KEY: adapt_input_channels(weight, in_channels)}
    return state_dict


def adapt_imagenet_deit(state_dict: Dict[str, torch.Tensor], model) -> Dict[str, torch.Tensor]:
    """Turn DeiT (ImageNet) weights into PaSST weights.

    The square 2-D position embedding of the patches is interpolated (bicubic) to the model's patch grid and
    averaged over time into the frequency embedding and over frequency into the time embedding; the token
    embeddings become ``new_pos_embed``; the RGB patch convolution is summed over its input channels (and
    spread evenly over ``in_channels``, ``adapt_input_channels``); the 1000-class ImageNet heads are replaced
    by the model's own.
    """
    state_dict = dict(state_dict)
    pos_embed = state_dict.pop("pos_embed")
    tokens = model.num_tokens
    grid = pos_embed[0, tokens:]
    side = int(math.sqrt(grid.shape[0]))
    grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=model.pos_grid_size, mode="bicubic", align_corners=False)
    state_dict["new_pos_embed"] = pos_embed[:, :tokens]
    state_dict["freq_new_pos_embed"] = grid.mean(dim=3, keepdim=True)
    state_dict["time_new_pos_embed"] = grid.mean(dim=2, keepdim=True)
    state_dict[PATCH_CONV_KEY] = adapt_input_channels(state_dict[PATCH_CONV_KEY].float(),
                                                      model.patch_embed.proj.in_channels)
    own = model.state_dict()
    for key in ("head.weight", "head.bias"):
        state_dict.pop(key, None)
    for key in ("head.0.weight", "head.0.bias", "head.1.weight", "head.1.bias", "head_dist.weight",
                "head_dist.bias"):
        if key in own:
            state_dict[key] = own[key]
    log.info("adapted ImageNet DeiT weights to PaSST: position embedding %s -> freq %s, time %s",
             tuple(pos_embed.shape), tuple(state_dict["freq_new_pos_embed"].shape),
             tuple(state_dict["time_new_pos_embed"].shape))
    return state_dict
