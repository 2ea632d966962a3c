"""Audio longer than a PaSST takes, as inference cuts it (``passt_hear``'s ``end_aligned`` windowing, the one
``python -m passt_hear tag`` uses): windows as long as the network's time embedding allows, a quarter window
apart, the last one ending with the audio; the logits of the windows are averaged. Training evaluates whole
clips of any length the same way (``windowed_logits``)."""
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn


def longest_input_samples(net: nn.Module, hopsize: int) -> int:
    """The most waveform samples whose patch grid fits ``net``'s time embedding (mel frames of ``hopsize``)."""
    stride = net.stride[1]
    frames = (net.time_new_pos_embed.shape[3] - 1) * stride + net.patch_size + stride - 1
    return frames * hopsize


def shortest_input_samples(net: nn.Module, hopsize: int) -> int:
    """The fewest waveform samples that give one full patch; shorter audio is zero-padded to this length."""
    return (net.patch_size - 1) * hopsize + 1


def end_aligned_starts(n_samples: int, window: int, hop: int) -> List[int]:
    """Starts of ``window``-sample windows every ``hop`` samples from 0, the last one ending with the audio."""
    if window <= 0 or hop <= 0:
        raise ValueError(f"window ({window}) and hop ({hop}) must be positive sample counts")
    if n_samples <= window:
        return [0]
    return [*range(0, n_samples - window, hop), n_samples - window]


def windowed_logits(net: nn.Module, mel: nn.Module, waveforms: torch.Tensor, window: Optional[int] = None,
                    hop: Optional[int] = None) -> torch.Tensor:
    """Mean logits of ``net`` over the end-aligned windows of ``waveforms`` ``(batch, channels, samples)``.

    ``window`` defaults to the longest input the network takes, ``hop`` to a quarter of it; audio that fits
    runs in one pass, audio shorter than one patch is zero-padded.
    """
    if waveforms.dim() != 3:
        raise ValueError(f"expected waveforms (batch, channels, samples), got shape {tuple(waveforms.shape)}")
    window = window or longest_input_samples(net, mel.hopsize)
    hop = hop or max(1, window // 4)
    shortest = shortest_input_samples(net, mel.hopsize)
    if waveforms.shape[-1] < shortest:
        waveforms = F.pad(waveforms, (0, shortest - waveforms.shape[-1]))
    starts = end_aligned_starts(waveforms.shape[-1], window, hop)
    logits = [net(mel(waveforms[..., start:start + window]))[0] for start in starts]
    return torch.stack(logits).mean(dim=0)
