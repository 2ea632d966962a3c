"""A PaSST network with its mel frontend, taking raw 32 kHz waveforms: logits, embeddings, or both.

Lengths the wrapper handles:

* audio up to one window (``window_seconds``) runs in one pass (audio shorter than one patch is zero-padded);
* longer audio is cut into overlapping windows, ``window_seconds`` long, every ``hop_seconds``, and the outputs
  of the windows are averaged. ``windowing="centred"`` (the default, as ``hear21passt`` 0.0.26) centres them
  on ``0, hop, 2·hop, …`` samples of the audio reflected by half a window at both ends, as many as fit;
  ``windowing="end_aligned"`` starts them at ``0, hop, …`` without padding, the last one ending with the audio;
* timestamp outputs (HEAR) come from short windows centred on ``0, hop, 2·hop, …`` ms, the audio reflected at
  both ends so that the first and last windows are full.

Everything that depends on the network (longest window, embedding sizes) is read from ``self.net`` when
needed, so replacing ``model.net`` with another PaSST keeps the wrapper working.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from models.windowing import end_aligned_starts, longest_input_samples, shortest_input_samples

MODES = ("logits", "embed_only", "all")
WINDOWINGS = ("centred", "end_aligned")


def centred_starts(n_samples: int, window: int, hop: int) -> List[int]:
    """Centred windows: starts (negative ones reach into the reflected audio) of windows centred on ``0, hop,
    2·hop, …``, as many as fit in the audio padded by ``window // 2`` at both ends; one window if it fits.

    (End-aligned windows: ``models.windowing.end_aligned_starts``.)
    """
    if window <= 0 or hop <= 0:
        raise ValueError(f"window ({window}) and hop ({hop}) must be positive sample counts")
    if n_samples <= window:
        return [0]
    pad = window // 2
    return [i * hop - pad for i in range((n_samples + 2 * pad - window) // hop + 1)]


def reflect_pad(waveform: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """``(batch, samples)`` padded by reflection, or with zeros where the audio is too short to reflect."""
    if left == right == 0:
        return waveform
    mode = "reflect" if waveform.shape[1] > max(left, right) else "constant"
    return F.pad(waveform.unsqueeze(1), (left, right), mode=mode).squeeze(1)


def centred_timestamps_ms(n_samples: int, sample_rate: int, hop_ms: float) -> torch.Tensor:
    """``0, hop, 2·hop, …`` ms, float64, up to and including the audio's duration."""
    duration_ms = n_samples * 1000.0 / sample_rate
    count = math.floor(duration_ms / hop_ms + 1e-9) + 1
    return torch.arange(count, dtype=torch.float64) * hop_ms


class PasstWrapper(nn.Module):
    """``mel`` (waveform → log-mel) followed by ``net`` (PaSST); input ``(batch, samples)`` at ``mel.sr``.

    ``mode``: ``"logits"`` (n_classes), ``"embed_only"`` (embed_dim) or ``"all"`` (logits then embedding,
    concatenated). ``window_seconds=None`` uses the longest window the network's time embedding takes, in
    whole seconds for centred windowing (10 s, 20 s, 30 s for the release models); ``hop_seconds=None`` a
    quarter of the window; ``windowing``: ``"centred"`` or ``"end_aligned"`` (see the
    module docstring). ``timestamp_windows_ms`` lists the window lengths whose outputs are concatenated for
    each timestamp, ``timestamp_mel_frames`` (0 = none) appends that many flattened mel frames around each
    timestamp. ``window_batch_size`` bounds how many windows run at once (at least one per sound).
    """

    def __init__(self, mel: nn.Module, net: nn.Module, mode: str = "all", window_seconds: Optional[float] = None,
                 hop_seconds: Optional[float] = None, windowing: str = "centred",
                 timestamp_windows_ms: Sequence[float] = (160.0,), timestamp_hop_ms: float = 50.0,
                 timestamp_mel_frames: int = 0, window_batch_size: int = 32):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not one of {', '.join(MODES)}")
        if windowing not in WINDOWINGS:
            raise ValueError(f"windowing={windowing!r} is not one of {', '.join(WINDOWINGS)}")
        for name, value in (("window_seconds", window_seconds), ("hop_seconds", hop_seconds)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if not timestamp_windows_ms or any(not w > 0 for w in timestamp_windows_ms):
            raise ValueError(f"timestamp_windows_ms must be positive lengths, got {timestamp_windows_ms!r}")
        if not timestamp_hop_ms > 0:
            raise ValueError(f"timestamp_hop_ms must be positive, got {timestamp_hop_ms!r}")
        if timestamp_mel_frames < 0 or window_batch_size < 1:
            raise ValueError(f"timestamp_mel_frames ({timestamp_mel_frames}) must be >= 0 and window_batch_size "
                             f"({window_batch_size}) >= 1")
        self.mel = mel
        self.net = net
        self.mode = mode
        self.window_seconds = window_seconds
        self.hop_seconds = hop_seconds
        self.windowing = windowing
        self.timestamp_windows_ms = tuple(float(w) for w in timestamp_windows_ms)
        self.timestamp_hop_ms = float(timestamp_hop_ms)
        self.timestamp_mel_frames = int(timestamp_mel_frames)
        self.window_batch_size = int(window_batch_size)

    # -- sizes, read from the current mel and net ---------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return int(self.mel.sr)

    @property
    def output_size(self) -> int:
        """Width of one output of ``forward`` in the current mode."""
        return {"logits": self.net.num_classes, "embed_only": self.net.embed_dim,
                "all": self.net.num_classes + self.net.embed_dim}[self.mode]

    @property
    def scene_embedding_size(self) -> int:
        return int(self.output_size)

    @property
    def timestamp_embedding_size(self) -> int:
        mels = self.timestamp_mel_frames * self.mel.n_mels
        return int(len(self.timestamp_windows_ms) * self.output_size + mels)

    def frames_for(self, n_samples: int) -> int:
        """Mel frames the frontend makes of ``n_samples``: pre-emphasis drops one sample, the STFT is centred."""
        return 1 + (n_samples - 1) // self.mel.hopsize

    @property
    def min_window_samples(self) -> int:
        """The shortest audio that gives one full patch; shorter audio is zero-padded to this length."""
        return shortest_input_samples(self.net, self.mel.hopsize)

    @property
    def max_window_samples(self) -> int:
        """The longest audio whose patch grid fits the network's time embedding."""
        return longest_input_samples(self.net, self.mel.hopsize)

    @property
    def window_samples(self) -> int:
        """Length of the windows that long audio is cut into (and the longest audio run in one pass)."""
        longest = self.max_window_samples
        if self.window_seconds is None:
            if self.windowing == "centred":  # hear21passt's clip-length windows: whole seconds
                return longest // self.sample_rate * self.sample_rate or longest
            return longest
        window = round(self.window_seconds * self.sample_rate)
        if window > longest:
            raise ValueError(f"window_seconds={self.window_seconds} is longer than the network takes "
                             f"({longest / self.sample_rate:.3f} s)")
        return max(window, self.min_window_samples)

    @property
    def hop_samples(self) -> int:
        """Distance between the starts of neighbouring windows of long audio."""
        window = self.window_samples
        hop = window // 4 if self.hop_seconds is None else round(self.hop_seconds * self.sample_rate)
        if not 0 < hop <= window:
            raise ValueError(f"hop_seconds={self.hop_seconds} must be positive and at most the window "
                             f"({window / self.sample_rate:.3f} s), or windows would leave gaps")
        return hop

    # -- forward passes ---------------------------------------------------------------------------------------

    def _check_waveform(self, waveform: torch.Tensor) -> torch.Tensor:
        if not isinstance(waveform, torch.Tensor):
            waveform = torch.as_tensor(waveform)
        if waveform.dim() != 2 or not waveform.is_floating_point() or waveform.shape[1] == 0:
            raise ValueError(f"expected float waveforms of shape (batch, samples) at {self.sample_rate} Hz, got "
                             f"{waveform.dtype} {tuple(waveform.shape)}")
        return waveform

    def _select(self, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        if self.mode == "logits":
            return logits
        if self.mode == "embed_only":
            return features
        if self.mode == "all":
            return torch.cat((logits, features), dim=1)
        raise ValueError(f"mode={self.mode!r} is not one of {', '.join(MODES)}")

    def forward_window(self, waveform: torch.Tensor) -> torch.Tensor:
        """One pass over audio that fits the network (``(batch, samples)`` → ``(batch, output_size)``)."""
        waveform = self._check_waveform(waveform)
        if waveform.shape[1] > self.max_window_samples:
            raise ValueError(f"{waveform.shape[1]} samples do not fit the network (at most "
                             f"{self.max_window_samples}); use forward(), which cuts long audio into windows")
        if waveform.shape[1] < self.min_window_samples:
            waveform = F.pad(waveform, (0, self.min_window_samples - waveform.shape[1]))
        spectrogram = self.mel(waveform.to(self._device())).unsqueeze(1)
        if self.is_frame_model:  # a frame model's clip outputs: its class-token head
            _, logits, features = self.net.forward_all(spectrogram)
        else:
            logits, features = self.net(spectrogram)
        return self._select(logits, features)

    @property
    def is_frame_model(self) -> bool:
        return hasattr(self.net, "frame_classifier")

    def frame_logits(self, waveform: torch.Tensor) -> Tuple[torch.Tensor, float]:
        """A frame model's own frames over the whole audio: ``(batch, frames, classes)`` logits and the frame
        hop in seconds. The audio is cut into end-aligned windows of the network's length (audio that is
        shorter is zero-padded to it); where the last window overlaps its neighbour, the logits are averaged."""
        if not self.is_frame_model:
            raise ValueError("frame_logits needs a frame-level model (models.passt.FramePaSST)")
        waveform = self._check_waveform(waveform)
        window = self.max_window_samples
        hop_samples = window / self.net.frames
        n_samples = max(waveform.shape[1], window)
        padded = F.pad(waveform, (0, n_samples - waveform.shape[1]))
        starts = end_aligned_starts(n_samples, window, window)
        total = int(math.ceil(n_samples / hop_samples - 1e-6))
        summed = torch.zeros(waveform.shape[0], total, self.net.num_classes, device=self._device())
        counts = torch.zeros(total, device=self._device())

        def window_frames(chunk):
            return self.net(self.mel(chunk.to(self._device())).unsqueeze(1))[0]

        frames = self._map_windows(window_frames, padded, starts, window)  # (batch, windows, frames, classes)
        for number, start in enumerate(starts):
            first = min(int(round(start / hop_samples)), total - self.net.frames)
            summed[:, first:first + self.net.frames] += frames[:, number]
            counts[first:first + self.net.frames] += 1
        kept = int(math.ceil(waveform.shape[1] / hop_samples - 1e-6))
        return (summed / counts.clamp(min=1)[None, :, None])[:, :kept], hop_samples / self.sample_rate

    def _map_windows(self, function, padded: torch.Tensor, starts: Sequence[int], window: int) -> torch.Tensor:
        """``function`` of the windows ``padded[:, s:s + window]`` for each start: ``(batch, len(starts), …)``.

        Only about ``window_batch_size`` windows are cut out at a time, so long audio needs little memory.
        """
        per_chunk = max(1, self.window_batch_size // padded.shape[0])
        outputs = []
        for first in range(0, len(starts), per_chunk):
            chunk = torch.stack([padded[:, s:s + window] for s in starts[first:first + per_chunk]], dim=1)
            outputs.append(function(chunk.flatten(0, 1)).unflatten(0, chunk.shape[:2]))
        return torch.cat(outputs, dim=1)

    def _windows_at(self, function, waveform: torch.Tensor, starts: Sequence[int], window: int) -> torch.Tensor:
        """``_map_windows`` for starts in the audio's own samples; windows reaching past an end see it reflected."""
        left = max(0, -starts[0])
        right = max(0, starts[-1] + window - waveform.shape[1])
        padded = reflect_pad(waveform, left, right)
        return self._map_windows(function, padded, [start + left for start in starts], window)

    def window_outputs(self, waveform: torch.Tensor) -> Tuple[torch.Tensor, List[int]]:
        """Outputs ``(batch, n_windows, output_size)`` of the windows of ``forward``, and their start samples
        (negative for centred windows that begin in the reflected audio)."""
        waveform = self._check_waveform(waveform)
        window = min(self.window_samples, waveform.shape[1])
        place = centred_starts if self.windowing == "centred" else end_aligned_starts
        starts = place(waveform.shape[1], window, self.hop_samples)
        return self._windows_at(self.forward_window, waveform, starts, window), starts

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(batch, samples)`` → ``(batch, output_size)``; long audio is the mean over its windows."""
        waveform = self._check_waveform(waveform)
        if waveform.shape[1] <= self.window_samples:
            return self.forward_window(waveform)
        outputs, _ = self.window_outputs(waveform)
        return outputs.mean(dim=1)

    # -- timestamp outputs (HEAR) ----------------------------------------------------------------------

    def _timestamp_windows(self, function, waveform: torch.Tensor, window: int,
                           hop_ms: float) -> Tuple[torch.Tensor, torch.Tensor]:
        """``function`` of the ``window``-sample windows centred on ``0, hop_ms, …`` ms, and those times (ms).

        Window starts are rounded from exact times, so they do not drift on long audio.
        """
        waveform = self._check_waveform(waveform)
        times_ms = centred_timestamps_ms(waveform.shape[1], self.sample_rate, hop_ms)
        centres = torch.round(times_ms * self.sample_rate / 1000.0).long()
        starts = (centres - window // 2).tolist()
        return self._windows_at(function, waveform, starts, window), times_ms

    def timestamp_outputs(self, waveform: torch.Tensor, window_ms: float,
                          hop_ms: Optional[float] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Outputs for windows of ``window_ms`` centred every ``hop_ms`` (default ``timestamp_hop_ms``).

        Returns ``(batch, n_timestamps, output_size)`` and float32 timestamps ``(batch, n_timestamps)`` in ms.
        """
        hop_ms = self.timestamp_hop_ms if hop_ms is None else hop_ms
        window = round(window_ms * self.sample_rate / 1000.0)
        if window > self.max_window_samples:
            raise ValueError(f"timestamp window {window_ms} ms is longer than the network takes "
                             f"({self.max_window_samples * 1000.0 / self.sample_rate:.0f} ms)")
        outputs, times_ms = self._timestamp_windows(self.forward_window, waveform, window, hop_ms)
        times = times_ms.to(torch.float32).to(outputs.device).expand(outputs.shape[0], -1)
        return outputs, times

    def timestamp_mels(self, waveform: torch.Tensor, hop_ms: Optional[float] = None) -> torch.Tensor:
        """``timestamp_mel_frames`` mel frames around each timestamp, flattened: ``(batch, n, n_mels·frames)``."""
        hop_ms = self.timestamp_hop_ms if hop_ms is None else hop_ms
        frames = self.timestamp_mel_frames

        def mel_frames(windows):
            return self.mel(windows.to(self._device()))[..., :frames].flatten(1)

        mels, _ = self._timestamp_windows(mel_frames, waveform, frames * self.mel.hopsize, hop_ms)
        return mels

    def timestamp_embeddings(self, waveform: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """HEAR timestamp embeddings: the outputs of each ``timestamp_windows_ms`` window (and the mel frames)
        around every timestamp, concatenated; ``(batch, n, timestamp_embedding_size)`` and times in ms."""
        parts, times = [], None
        for window_ms in self.timestamp_windows_ms:
            outputs, times = self.timestamp_outputs(waveform, window_ms)
            parts.append(outputs)
        if self.timestamp_mel_frames:
            parts.append(self.timestamp_mels(waveform))
        return torch.cat(parts, dim=2), times

    def _device(self) -> torch.device:
        return next(self.net.parameters()).device

    def extra_repr(self) -> str:
        return (f"mode={self.mode!r}, window_seconds={self.window_seconds}, hop_seconds={self.hop_seconds}, "
                f"windowing={self.windowing!r}, "
                f"timestamp_windows_ms={self.timestamp_windows_ms}, timestamp_hop_ms={self.timestamp_hop_ms}, "
                f"timestamp_mel_frames={self.timestamp_mel_frames}")
