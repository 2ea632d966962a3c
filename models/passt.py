"""PaSST: the audio spectrogram transformer trained with patchout (Koutini et al., arXiv 2110.05069).

One model class, architectures as data (``models.registry``) and one builder, ``get_model``, that handles
release weights. The state_dict layout is upstream's, so release checkpoints load with ``strict=True``.

Shapes: input ``(batch, in_channels, n_mels, frames)``; the patch grid is ``(F, T)``; the output is
``(logits, features)`` where, for distilled models, ``features`` is the mean of the class and distillation
tokens and ``logits = head(features)``.
"""
import logging
import warnings
from functools import partial
from typing import Iterable, Optional, Sequence, Tuple

import torch
from torch import nn
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block, init_weights_vit_timm

from models.registry import Arch, get_arch
from models.weights import (CheckpointError, adapt_imagenet_deit, adapt_patch_embedding, check_state_dict,
                            drop_classifier, load_state_dict, resolve_checkpoint)

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.04  # the frame models' default output frame: 40 ms (250 frames per 10 s), as PretrainedSED


def patch_grid(input_fdim: int, input_tdim: int, patch_size: int, stride: Tuple[int, int]) -> Tuple[int, int]:
    """The (F, T) grid of patches that the patch convolution makes of an input of this size."""
    return (input_fdim - patch_size) // stride[0] + 1, (input_tdim - patch_size) // stride[1] + 1


def patchout_problem(grid: Tuple[int, int], s_patchout_f: int, s_patchout_t: int, u_patchout: int) -> Optional[str]:
    """None when patchout leaves patches of an (F, T) grid; otherwise what is allowed."""
    f, t = grid
    if (min(s_patchout_f, s_patchout_t, u_patchout) < 0 or s_patchout_f >= f or s_patchout_t >= t
            or (u_patchout and u_patchout >= (f - s_patchout_f) * (t - s_patchout_t))):
        return f"allowed: s_patchout_f < {f}, s_patchout_t < {t}, u_patchout < the patches left"
    return None


class PatchEmbed(nn.Module):
    """Convolutional patch embedding with a stride that may be smaller than the patch (overlapping patches)."""

    def __init__(self, patch_size: int, stride: Tuple[int, int], in_channels: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)  # (B, E, F, T)


class PaSST(nn.Module):
    """Vision transformer on spectrogram patches with separate frequency and time positional embeddings.

    Patchout (training only): ``s_patchout_t`` random time columns and ``s_patchout_f`` random frequency rows
    of the patch grid are removed, then ``u_patchout`` random patches of what is left. The kept positions are
    gathered in one indexing step. Evaluation always sees the whole grid.
    """

    def __init__(self, img_size=(128, 998), patch_size=16, stride=(10, 10), in_channels=1, num_classes=527,
                 embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0, qkv_bias=True, distilled=True,
                 drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0, u_patchout=0, s_patchout_t=0,
                 s_patchout_f=0):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.num_tokens = 2 if distilled else 1
        self.u_patchout, self.s_patchout_t, self.s_patchout_f = u_patchout, s_patchout_t, s_patchout_f
        self.patch_size = patch_size
        self.stride = tuple(stride)
        # Upstream sizes the embedding grid as input // stride (not the conv's output size); release
        # checkpoints depend on it. Inputs whose conv grid is smaller use the leading part of it.
        self.pos_grid_size = (img_size[0] // self.stride[0], img_size[1] // self.stride[1])
        self.patch_embed = PatchEmbed(patch_size, self.stride, in_channels, embed_dim)

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if distilled else None
        self.new_pos_embed = nn.Parameter(torch.zeros(1, self.num_tokens, embed_dim))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, self.pos_grid_size[0], 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, 1, self.pos_grid_size[1]))
        self.pos_drop = nn.Dropout(p=drop_rate)

        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        drop_paths = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.Sequential(*[
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                  proj_drop=drop_rate, attn_drop=attn_drop_rate, drop_path=drop_paths[i], norm_layer=norm_layer)
            for i in range(depth)])
        self.norm = norm_layer(embed_dim)
        self.head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, num_classes))
        self.head_dist = nn.Linear(embed_dim, num_classes) if distilled else None
        self._init_weights()

    def _init_weights(self):
        for parameter in (self.new_pos_embed, self.freq_new_pos_embed, self.time_new_pos_embed, self.cls_token):
            trunc_normal_(parameter, std=0.02)
        if self.dist_token is not None:
            trunc_normal_(self.dist_token, std=0.02)
        self.apply(init_weights_vit_timm)

    @torch.jit.ignore
    def no_weight_decay(self):
        """Parameters excluded from weight decay."""
        return {"new_pos_embed", "freq_new_pos_embed", "time_new_pos_embed", "cls_token", "dist_token"}

    def set_fused_attention(self, enabled: bool) -> None:
        """Attention through ``scaled_dot_product_attention`` (default) or the plain softmax(QKᵀ)V formula."""
        for block in self.blocks:
            block.attn.fused_attn = enabled

    def grid_shape(self, input_fdim: int, input_tdim: int) -> Tuple[int, int]:
        """The patch grid (F, T) that the model uses for an input of this size, after cropping."""
        f, t = patch_grid(input_fdim, input_tdim, self.patch_size, self.stride)
        return min(f, self.pos_grid_size[0]), min(t, self.pos_grid_size[1])

    def sequence_length(self, input_fdim: int, input_tdim: int, training: bool) -> int:
        """Number of tokens (patches + class/distillation tokens) seen by the transformer."""
        f, t = self.grid_shape(input_fdim, input_tdim)
        if training:
            f, t = f - self.s_patchout_f, t - self.s_patchout_t
            return f * t - self.u_patchout + self.num_tokens
        return f * t + self.num_tokens

    def _positional_grid(self, f_dim: int, t_dim: int) -> torch.Tensor:
        """freq + time embeddings for a grid of (f_dim, t_dim), time crop random in training."""
        freq = self.freq_new_pos_embed
        time = self.time_new_pos_embed
        if f_dim > freq.shape[2]:
            raise ValueError(f"input has {f_dim} frequency patches but the model's frequency embedding has "
                             f"{freq.shape[2]}: use the model's input_fdim")
        freq = freq[:, :, :f_dim]
        offset = 0
        if t_dim < time.shape[3] and self.training:
            offset = int(torch.randint(time.shape[3] - t_dim + 1, (1,)).item())
        return freq + time[:, :, :, offset:offset + t_dim]  # (1, E, F, T)

    def _patchout_index(self, f_dim: int, t_dim: int, device) -> Optional[torch.Tensor]:
        """Flat indices of the kept grid positions, sorted, or None when nothing is dropped."""
        s_t, s_f, u = (self.s_patchout_t, self.s_patchout_f, self.u_patchout) if self.training else (0, 0, 0)
        if not (s_t or s_f or u):
            return None
        problem = patchout_problem((f_dim, t_dim), s_f, s_t, u)
        if problem:
            raise ValueError(f"patchout (s_patchout_f={s_f}, s_patchout_t={s_t}, u_patchout={u}) removes the whole "
                             f"{f_dim}x{t_dim} patch grid of this input; {problem}")
        times = torch.randperm(t_dim)[:t_dim - s_t].sort().values
        freqs = torch.randperm(f_dim)[:f_dim - s_f].sort().values
        index = (freqs[:, None] * t_dim + times[None, :]).flatten()
        if u:
            index = index[torch.randperm(index.numel())[:index.numel() - u].sort().values]
        return index.to(device)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Final-norm outputs of the class (and distillation) tokens: (B, num_tokens, E)."""
        tokens, _ = self.forward_tokens(x, patches=False)
        return tokens

    def forward_tokens(self, x: torch.Tensor, patches: bool = True) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Final-norm outputs of every token (class/distillation tokens first, then the kept patches in grid
        order; `patches=False`: the class/distillation tokens only) and the (F, T) grid of the patches."""
        if x.dim() != 4:
            raise ValueError(f"PaSST expects (batch, channels, mel bins, frames), got shape {tuple(x.shape)}")
        x = self.patch_embed(x)
        batch, _, f_dim, t_dim = x.shape
        if t_dim > self.time_new_pos_embed.shape[3]:
            warnings.warn(f"input has {t_dim} time patches, more than the model's time embedding "
                          f"({self.time_new_pos_embed.shape[3]}); the input is cut to fit")
            t_dim = self.time_new_pos_embed.shape[3]
            x = x[:, :, :, :t_dim]
        positions = self._positional_grid(f_dim, t_dim).flatten(2)  # (1, E, F*T)
        x = x.flatten(2)  # (B, E, F*T), a view
        index = self._patchout_index(f_dim, t_dim, x.device)
        if index is not None:
            x = x.index_select(2, index)
            positions = positions.index_select(2, index)
        x = (x + positions).transpose(1, 2)  # (B, N, E)
        tokens = self.cls_token + self.new_pos_embed[:, :1]
        if self.dist_token is not None:
            tokens = torch.cat((tokens, self.dist_token + self.new_pos_embed[:, 1:]), dim=1)
        x = torch.cat((tokens.expand(batch, -1, -1), x), dim=1)
        x = self.blocks(self.pos_drop(x))
        return self.norm(x if patches else x[:, :self.num_tokens]), (f_dim, t_dim)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        tokens = self.forward_features(x)
        features = tokens.mean(dim=1) if self.num_tokens == 2 else tokens[:, 0]
        return self.head(features), features


class FramePaSST(PaSST):
    """PaSST with frame-level outputs for sound event detection (PretrainedSED's frame models, built on any
    registered architecture and its weights).

    The patch tokens are averaged over frequency, resampled to `frames` steps (linear interpolation up,
    average pooling down), optionally passed through a BiGRU (`frame_head="bigru"`, PretrainedSED's teachers)
    and classified per frame. `forward` returns `(frame logits (B, frames, classes), clip logits (B, classes))`,
    the clip logits from the usual class-token head. Time columns must stay whole: structured time patchout and
    unstructured patchout are refused; frequency patchout averages the rows kept.
    """

    def __init__(self, frames: int = 250, frame_head: str = "linear", rnn_dim: int = 256, **kwargs):
        super().__init__(**kwargs)
        if frame_head not in FRAME_HEADS:
            raise ValueError(f"frame_head {frame_head!r}; allowed: {', '.join(FRAME_HEADS)}")
        if self.s_patchout_t or self.u_patchout:
            raise ValueError(f"a frame model keeps every time column: s_patchout_t and u_patchout must be 0, got "
                             f"{self.s_patchout_t} and {self.u_patchout} (s_patchout_f is allowed)")
        self.frames, self.frame_head = int(frames), frame_head
        width = self.embed_dim
        self.frame_rnn = None
        if frame_head == "bigru":
            self.frame_rnn = nn.GRU(width, rnn_dim, num_layers=2, batch_first=True, bidirectional=True)
            width = 2 * rnn_dim
        self.frame_classifier = nn.Linear(width, self.num_classes)

    def frame_features(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(per-frame features (B, frames, E'), class/distillation token features (B, E))."""
        tokens, (_, t_dim) = self.forward_tokens(x)
        cls_tokens, patches = tokens[:, :self.num_tokens], tokens[:, self.num_tokens:]
        columns = patches.reshape(patches.shape[0], -1, t_dim, patches.shape[-1]).mean(dim=1)  # (B, T, E)
        columns = columns.transpose(1, 2)
        if t_dim > self.frames:
            columns = nn.functional.adaptive_avg_pool1d(columns, self.frames)
        elif t_dim < self.frames:
            columns = nn.functional.interpolate(columns, size=self.frames, mode="linear", align_corners=False)
        sequence = columns.transpose(1, 2)
        if self.frame_rnn is not None:
            sequence = self.frame_rnn(sequence)[0]
        features = cls_tokens.mean(dim=1) if self.num_tokens == 2 else cls_tokens[:, 0]
        return sequence, features

    def forward_all(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(frame logits, clip logits, clip features) of one pass."""
        sequence, features = self.frame_features(x)
        return self.frame_classifier(sequence), self.head(features), features

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.forward_all(x)[:2]


FRAME_HEADS = ("linear", "bigru")


class EnsembleModel(nn.Module):
    """Averages the logits of its members; returns ``(logits, logits)`` like a single model's pair."""

    def __init__(self, members: Iterable[nn.Module]):
        super().__init__()
        self.models = nn.ModuleList(members)

    def forward(self, x):
        logits = torch.stack([member(x)[0] for member in self.models]).mean(dim=0)
        return logits, logits


def _pretrained_state_dict(arch: Arch, model: PaSST, checkpoint: Optional[str]):
    if checkpoint is None:
        if not arch.url:
            raise CheckpointError(f"architecture {arch.name!r} has no release weights; use pretrained=False")
        checkpoint = resolve_checkpoint(arch.url)
    state_dict = load_state_dict(checkpoint)
    if "time_new_pos_embed" not in state_dict and "pos_embed" in state_dict:
        state_dict = adapt_imagenet_deit(state_dict, model)
    return drop_classifier(adapt_patch_embedding(state_dict, model), model), checkpoint


def get_model(arch: str = "passt_s_swa_p16_128_ap476", pretrained: bool = True, n_classes: int = 527,
              in_channels: int = 1, fstride: Optional[int] = None, tstride: Optional[int] = None,
              input_fdim: Optional[int] = None, input_tdim: Optional[int] = None, u_patchout: int = 0,
              s_patchout_t: int = 0, s_patchout_f: int = 0, checkpoint: Optional[str] = None,
              drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0,
              frame_head: Optional[str] = None, frames: Optional[int] = None) -> PaSST:
    """Build a registered PaSST architecture, with its release weights when ``pretrained``.

    Strides and input size default to the architecture's (those its weights were trained with); other values
    change the positional-embedding shapes and are rejected for pretrained loads. ``checkpoint`` loads a local
    file instead of the release URL. A different ``n_classes`` than the weights' keeps all but the heads; other
    ``in_channels`` than the weights' adapt the patch convolution (``models.weights.adapt_input_channels``).
    ``frame_head`` ("linear" | "bigru", default: the architecture's) builds a `FramePaSST` with ``frames``
    output frames (default: 40 ms frames of the architecture's clip length); its frame layers start fresh.
    """
    spec = get_arch(arch)
    frame_head = frame_head or spec.frame_head
    stride = (spec.stride[0] if fstride is None else fstride, spec.stride[1] if tstride is None else tstride)
    img_size = (spec.input_size[0] if input_fdim is None else input_fdim,
                spec.input_size[1] if input_tdim is None else input_tdim)
    _check_positive(stride=stride, img_size=img_size, n_classes=n_classes, in_channels=in_channels)
    if min(img_size) < spec.patch_size:
        raise ValueError(f"input size {img_size} is smaller than one {spec.patch_size}x{spec.patch_size} patch")
    sizes = dict(img_size=img_size, patch_size=spec.patch_size, stride=stride, in_channels=in_channels,
                 num_classes=n_classes, embed_dim=spec.embed_dim, depth=spec.depth, num_heads=spec.num_heads,
                 distilled=spec.distilled, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                 drop_path_rate=drop_path_rate, u_patchout=u_patchout, s_patchout_t=s_patchout_t,
                 s_patchout_f=s_patchout_f)
    if frame_head:
        model = FramePaSST(frames=frames or int(round(spec.clip_length / FRAME_SECONDS)), frame_head=frame_head,
                           **sizes)
    else:
        model = PaSST(**sizes)
    grid = model.grid_shape(*img_size)
    problem = patchout_problem(grid, s_patchout_f, s_patchout_t, u_patchout)
    if problem:
        raise ValueError(f"patchout (s_patchout_f={s_patchout_f}, s_patchout_t={s_patchout_t}, "
                         f"u_patchout={u_patchout}) removes the whole {grid[0]}x{grid[1]} patch grid; {problem}")
    if pretrained or checkpoint:
        state_dict, source = _pretrained_state_dict(spec, model, checkpoint)
        if isinstance(model, FramePaSST):  # the frame layers start fresh unless the checkpoint has them
            own = model.state_dict()
            state_dict = {**{name: own[name] for name in own if name.startswith("frame_")}, **state_dict}
        try:
            check_state_dict(state_dict, model, source)
        except CheckpointError as error:
            if spec.weights == "audioset" and (stride != spec.stride or img_size[1] != spec.input_size[1]):
                raise CheckpointError(f"{error}. The {arch} weights were trained with fstride/tstride="
                                      f"{spec.stride} and input {spec.input_size}; use those") from None
            raise
        model.load_state_dict(state_dict, strict=True)
        log.info("loaded %s weights from %s", arch, source)
    return model


def get_ensemble_model(arch_list: Sequence[Tuple[str, int, int]], **kwargs) -> EnsembleModel:
    """An ensemble of pretrained members given as ``(arch, fstride, tstride)``."""
    return EnsembleModel(get_model(arch=arch, fstride=fstride, tstride=tstride, **kwargs)
                         for arch, fstride, tstride in arch_list)


def _check_positive(**values):
    for name, value in values.items():
        for item in (value if isinstance(value, tuple) else (value,)):
            if not isinstance(item, int) or item <= 0:
                raise ValueError(f"{name} must be positive integers, got {value!r}")
