"""The one place that builds waveform models: a ``Variant`` is data (architecture, windows), its methods build.

The modules ``passt_hear.base``, ``base20sec``, ``hop100base``, … each hold one ``Variant``; its ``load_model``
and the shared ``get_scene_embeddings`` / ``get_timestamp_embeddings`` below make their HEAR 2021 API.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from models.passt import PaSST, get_model
from models.preprocess import AugmentMelSTFT
from models.registry import get_arch
from models.weights import CheckpointError, load_state_dict
from passt_hear.wrapper import PasstWrapper

DEFAULT_ARCH = "passt_s_swa_p16_128_ap476"

# ``get_model_passt(arch=…, n_classes=…)``: a pretrained network for fine-tuning, as in upstream's package.
get_model_passt = get_model


def checkpoint_classes(path: str) -> int:
    """Number of classes of the classifier head stored in the checkpoint at ``path``."""
    state_dict = load_state_dict(path, mmap=True)  # only the head's shape is read; the weights load later
    if "head.1.weight" not in state_dict:
        raise CheckpointError(f"checkpoint {path} has no classifier head 'head.1.weight'; is it a PaSST "
                              f"state_dict (release format, or a Lightning checkpoint of this project)?")
    return int(state_dict["head.1.weight"].shape[0])


def build_net(arch: str = DEFAULT_ARCH, checkpoint: Optional[str] = None, pretrained: bool = True,
              n_classes: Optional[int] = None) -> PaSST:
    """PaSST ``arch`` with weights from ``checkpoint`` (its head decides n_classes), else the release weights
    (through the torch.hub cache) when ``pretrained``, else random weights."""
    spec = get_arch(arch)
    if checkpoint:
        return get_model(arch, pretrained=True, checkpoint=checkpoint, n_classes=checkpoint_classes(checkpoint))
    return get_model(arch, pretrained=pretrained, n_classes=spec.n_classes if n_classes is None else n_classes)


def build_mel(arch: str = DEFAULT_ARCH) -> AugmentMelSTFT:
    """The mel frontend the weights of ``arch`` were trained with (STFT hop from the registry)."""
    return AugmentMelSTFT(hopsize=get_arch(arch).mel_hopsize)


@dataclass(frozen=True)
class Variant:
    """A pretrained model and how the HEAR API windows it.

    ``scene_hop_seconds``: hop between the windows of audio longer than the network takes (None: a quarter
    of the window). ``timestamp_windows_ms``: window lengths whose outputs are concatenated per timestamp;
    ``timestamp_mel_frames``: mel frames appended per timestamp (0: none).
    """
    arch: str
    scene_hop_seconds: Optional[float] = None
    timestamp_windows_ms: Tuple[float, ...] = (160.0,)
    timestamp_hop_ms: float = 50.0
    timestamp_mel_frames: int = 0

    def get_basic_model(self, mode: str = "logits", arch: Optional[str] = None, checkpoint: Optional[str] = None,
                        pretrained: bool = True, **wrapper_options) -> PasstWrapper:
        """The waveform model: ``.mel`` then ``.net``; ``arch`` overrides the variant's architecture."""
        arch = arch or self.arch
        options = dict(hop_seconds=self.scene_hop_seconds, timestamp_windows_ms=self.timestamp_windows_ms,
                       timestamp_hop_ms=self.timestamp_hop_ms, timestamp_mel_frames=self.timestamp_mel_frames)
        options.update(wrapper_options)
        return PasstWrapper(build_mel(arch), build_net(arch, checkpoint, pretrained), mode=mode, **options)

    def load_model(self, model_file_path: str = "", mode: str = "all", device: Optional[str] = None,
                   **wrapper_options) -> PasstWrapper:
        """HEAR ``load_model``: weights from ``model_file_path``, or the release weights when it is empty.

        The model is in eval mode, on ``device`` (default: CUDA when available).
        """
        model = self.get_basic_model(mode=mode, checkpoint=model_file_path or None, **wrapper_options)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return model.to(device).eval()


def get_scene_embeddings(audio: torch.Tensor, model: PasstWrapper) -> torch.Tensor:
    """HEAR scene embeddings: ``(n_sounds, samples)`` → float32 ``(n_sounds, model.scene_embedding_size)``."""
    model.eval()
    with torch.no_grad():
        return model(torch.as_tensor(audio, dtype=torch.float32)).float()


def get_timestamp_embeddings(audio: torch.Tensor, model: PasstWrapper) -> Tuple[torch.Tensor, torch.Tensor]:
    """HEAR timestamp embeddings: float32 ``(n_sounds, n_timestamps, model.timestamp_embedding_size)`` and
    timestamps ``(n_sounds, n_timestamps)``: window centres in ms, evenly spaced, from 0 to at most the end."""
    model.eval()
    with torch.no_grad():
        embeddings, timestamps = model.timestamp_embeddings(torch.as_tensor(audio, dtype=torch.float32))
        return embeddings.float(), timestamps
