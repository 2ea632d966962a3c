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
from models.weights import CheckpointError, checkpoint_network, load_state_dict
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
    (through the torch.hub cache) when ``pretrained``, else random weights. A training checkpoint of this project
    carries its network (``models.weights.checkpoint_network``), which is built instead of ``arch``."""
    spec = get_arch(arch)
    network = checkpoint_network(checkpoint) if checkpoint else None
    if network:
        if network["cut_depth"]:
            raise CheckpointError(f"checkpoint {checkpoint} holds a network with cut_depth={network['cut_depth']}, "
                                  "which passt_hear does not run yet (evaluate it with the experiment's evaluate_only)")
        return get_model(network["arch"], pretrained=True, checkpoint=checkpoint, n_classes=network["n_classes"],
                         **{key: network[key] for key in ("fstride", "tstride", "input_fdim", "input_tdim", "frame_head",
                                                          "frames")})
    if checkpoint:
        return get_model(arch, pretrained=True, checkpoint=checkpoint, n_classes=checkpoint_classes(checkpoint))
    return get_model(arch, pretrained=pretrained, n_classes=spec.n_classes if n_classes is None else n_classes)


def build_mel(arch: str = DEFAULT_ARCH, checkpoint: Optional[str] = None) -> AugmentMelSTFT:
    """The mel frontend the weights were trained with: the STFT hop a training checkpoint records, else the
    registry's for ``arch``."""
    network = checkpoint_network(checkpoint) if checkpoint else None
    return AugmentMelSTFT(hopsize=network["mel_hopsize"] if network else get_arch(arch).mel_hopsize)


# hear21passt's keyword arguments in milliseconds, and the wrapper options (in their units) that they set.
HEAR21PASST_MS_OPTIONS = {"scene_hop": ("hop_seconds", 1e-3), "max_model_window": ("window_seconds", 1e-3),
                          "timestamp_hop": ("timestamp_hop_ms", 1.0)}
# hear21passt takes the embedding sizes as arguments; here they follow from the model and are only checked.
HEAR21PASST_SIZES = ("scene_embedding_size", "timestamp_embedding_size")


@dataclass(frozen=True)
class Variant:
    """A pretrained model and how the HEAR API windows it, as the ``hear21passt`` module of the same name.

    Audio longer than the network takes (10 s, 20 s or 30 s) is cut into centred windows of that length (see
    ``passt_hear.wrapper``), ``scene_hop_seconds`` apart (None: a quarter of the window).
    ``timestamp_windows_ms``: window lengths whose outputs are concatenated per timestamp;
    ``timestamp_mel_frames``: mel frames appended per timestamp (0: none).
    """
    arch: str
    scene_hop_seconds: Optional[float] = None
    timestamp_windows_ms: Tuple[float, ...] = (160.0,)
    timestamp_hop_ms: float = 50.0
    timestamp_mel_frames: int = 0

    def wrapper_options(self, **options) -> Tuple[dict, dict]:
        """``PasstWrapper`` options of this variant, updated by ``options``, and the embedding sizes to check.

        ``options`` are the wrapper's, or hear21passt's: ``scene_hop``, ``max_model_window``, ``timestamp_hop``
        (ms), ``timestamp_window`` (ms; scales every timestamp window, as in hear21passt's 2-level modules),
        ``scene_embedding_size``, ``timestamp_embedding_size``.
        """
        result = dict(hop_seconds=self.scene_hop_seconds, timestamp_windows_ms=self.timestamp_windows_ms,
                      timestamp_hop_ms=self.timestamp_hop_ms, timestamp_mel_frames=self.timestamp_mel_frames)
        for name, (option, scale) in HEAR21PASST_MS_OPTIONS.items():
            if name in options:
                result[option] = options.pop(name) * scale
        if "timestamp_window" in options:
            scale = options.pop("timestamp_window") / self.timestamp_windows_ms[0]
            result["timestamp_windows_ms"] = tuple(window * scale for window in self.timestamp_windows_ms)
        sizes = {name: options.pop(name) for name in HEAR21PASST_SIZES if name in options}
        result.update(options)
        return result, sizes

    def get_basic_model(self, mode: str = "all", arch: Optional[str] = None, checkpoint: Optional[str] = None,
                        pretrained: bool = True, **options) -> PasstWrapper:
        """The waveform model: ``.mel`` then ``.net``; ``arch`` overrides the variant's architecture.

        ``options``: see ``wrapper_options``; a given embedding size that the model does not have is an error.
        """
        arch = arch or self.arch
        wrapper_options, sizes = self.wrapper_options(**options)
        model = PasstWrapper(build_mel(arch, checkpoint), build_net(arch, checkpoint, pretrained), mode=mode,
                             **wrapper_options)
        for name, size in sizes.items():
            if getattr(model, name) != size:
                raise ValueError(f"{name}={size} does not match the model: {arch} in mode {mode!r} gives "
                                 f"{getattr(model, name)}")
        return model

    def load_model(self, model_file_path: str = "", mode: str = "all", device: Optional[str] = None,
                   model_path: str = "", **options) -> PasstWrapper:
        """HEAR ``load_model``: weights from ``model_file_path`` (hear21passt's name: ``model_path``), or the
        release weights when it is empty. The model is in eval mode, on ``device`` (default: CUDA when
        available); ``options`` as for ``get_basic_model``."""
        if model_file_path and model_path and model_file_path != model_path:
            raise ValueError(f"model_file_path={model_file_path!r} and model_path={model_path!r} name different "
                             f"files; pass one")
        checkpoint = model_file_path or model_path or None
        model = self.get_basic_model(mode=mode, checkpoint=checkpoint, **options)
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
