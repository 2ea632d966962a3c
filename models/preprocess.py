"""The mel-spectrogram frontend: waveforms at 32 kHz in, normalised log-mel spectrograms out."""
import logging
from typing import Optional

import torch
import torchaudio
from torch import nn

log = logging.getLogger(__name__)

PREEMPHASIS = 0.97
LOG_OFFSET = 1e-5
# Upstream's fast normalisation: (log-mel + 4.5) / 5 puts AudioSet spectrograms roughly at zero mean, unit std.
NORM_SHIFT, NORM_SCALE = 4.5, 5.0


class AugmentMelSTFT(nn.Module):
    """Pre-emphasis, STFT power spectrum, kaldi-style mel filter bank, log and fast normalisation.

    In training only: fmin and fmax are shifted at random (within ``fmin_aug_range`` and ``fmax_aug_range``
    Hz) and ``freqm`` / ``timem`` wide frequency and time masks are applied (torchaudio, iid per example).
    ``fmax=None`` means ``sr // 2 - fmax_aug_range // 2``. Input ``(batch, samples)`` gives
    ``(batch, n_mels, frames)``; ``(batch, channels, samples)`` gives ``(batch, channels, n_mels, frames)``.
    """

    def __init__(self, n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48, timem=192,
                 htk=False, fmin=0.0, fmax: Optional[float] = None, norm=1, fmin_aug_range=10,
                 fmax_aug_range=2000):
        super().__init__()
        if htk:
            raise ValueError("htk=True is not supported: the mel bank is kaldi's (as in the release models)")
        if fmin_aug_range < 1 or fmax_aug_range < 1:
            raise ValueError(f"fmin_aug_range={fmin_aug_range} and fmax_aug_range={fmax_aug_range} must be >= 1 "
                             "(1 means no augmentation)")
        if win_length > n_fft:
            raise ValueError(f"win_length={win_length} must not exceed n_fft={n_fft}")
        self.n_mels, self.sr, self.win_length, self.hopsize, self.n_fft = n_mels, sr, win_length, hopsize, n_fft
        self.htk, self.norm = htk, norm
        self.fmin = fmin
        self.fmax = sr // 2 - fmax_aug_range // 2 if fmax is None else fmax
        if not 0 <= self.fmin < self.fmax <= sr / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= sr/2, got fmin={self.fmin}, fmax={self.fmax}, sr={sr}")
        self.fmin_aug_range, self.fmax_aug_range = fmin_aug_range, fmax_aug_range
        self.register_buffer("window", torch.hann_window(win_length, periodic=False), persistent=False)
        self.register_buffer("eval_mel_basis", self._mel_basis(self.fmin, self.fmax), persistent=False)
        self.freqm = torchaudio.transforms.FrequencyMasking(freqm, iid_masks=True) if freqm else nn.Identity()
        self.timem = torchaudio.transforms.TimeMasking(timem, iid_masks=True) if timem else nn.Identity()

    def _mel_basis(self, fmin: float, fmax: float) -> torch.Tensor:
        """(n_mels, n_fft // 2 + 1) kaldi triangular filters (the Nyquist bin gets no weight)."""
        banks, _ = torchaudio.compliance.kaldi.get_mel_banks(
            self.n_mels, self.n_fft, float(self.sr), float(fmin), float(fmax), 100.0, -500.0, 1.0)
        return nn.functional.pad(banks, (0, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"AugmentMelSTFT expects a floating-point waveform tensor, got "
                            f"{getattr(x, 'dtype', type(x))}")
        if x.dim() not in (2, 3):
            raise ValueError(f"AugmentMelSTFT expects waveforms of shape (batch, samples) or "
                             f"(batch, channels, samples), got {tuple(x.shape)}")
        if x.shape[-1] < 2:
            raise ValueError(f"waveforms need at least 2 samples, got {x.shape[-1]}")
        leading = x.shape[:-1]
        x = x.reshape(-1, 1, x.shape[-1]).float()
        x = (x[..., 1:] - PREEMPHASIS * x[..., :-1]).squeeze(1)
        spec = torch.stft(x, self.n_fft, hop_length=self.hopsize, win_length=self.win_length, center=True,
                          normalized=False, window=self.window, return_complex=True)
        power = spec.real.square() + spec.imag.square()
        if self.training:
            fmin = self.fmin + int(torch.randint(self.fmin_aug_range, (1,)).item())
            fmax = self.fmax + self.fmax_aug_range // 2 - int(torch.randint(self.fmax_aug_range, (1,)).item())
            mel_basis = self._mel_basis(fmin, min(fmax, self.sr / 2)).to(power.device)
        else:
            mel_basis = self.eval_mel_basis
        with torch.autocast(device_type=power.device.type, enabled=False):
            mel = torch.matmul(mel_basis, power)
        mel = (mel + LOG_OFFSET).log()
        if self.training:
            mel = self.timem(self.freqm(mel))
        mel = (mel + NORM_SHIFT) / NORM_SCALE
        return mel.reshape(*leading, *mel.shape[-2:])

    def extra_repr(self) -> str:
        return (f"n_mels={self.n_mels}, sr={self.sr}, win_length={self.win_length}, hopsize={self.hopsize}, "
                f"n_fft={self.n_fft}, fmin={self.fmin}, fmax={self.fmax}")
