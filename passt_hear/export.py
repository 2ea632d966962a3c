"""ONNX export of an eval-mode model: waveform → (logits, embedding), or spectrogram → (logits, embedding).

The waveform graph includes the mel frontend (STFT included; needs the dynamo exporter and opset >= 17). Batch
and length are dynamic, from the shortest input that makes one patch to the longest that fits the time
embedding; longer audio must be cut into windows by the caller (``PasstWrapper.forward`` does it in torch).
"""
import logging
from typing import Dict, Tuple

import numpy as np
import torch
from torch import nn

from passt_hear.wrapper import PasstWrapper

log = logging.getLogger(__name__)

INPUTS = ("waveform", "spectrogram")
OUTPUT_NAMES = ("logits", "embedding")


class WaveformToLogits(nn.Module):
    """One pass of mel + net over ``(batch, samples)`` audio that fits the network."""

    def __init__(self, model: PasstWrapper):
        super().__init__()
        self.mel, self.net = model.mel, model.net

    def forward(self, waveform: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.net(self.mel(waveform).unsqueeze(1))


def example_input(model: PasstWrapper, kind: str, batch: int = 2) -> torch.Tensor:
    """A random input of ``kind`` (waveform: 3 s, or its spectrogram) used for tracing and checks."""
    samples = min(3 * model.sample_rate, model.max_window_samples)
    waveform = torch.randn(batch, samples) * 0.1
    if kind == "waveform":
        return waveform
    with torch.no_grad():
        return model.mel(waveform).unsqueeze(1)


def _dynamic_shapes(model: PasstWrapper, kind: str) -> Tuple[Dict[int, object]]:
    batch = torch.export.Dim("batch", min=1, max=1024)
    if kind == "waveform":
        length = torch.export.Dim("samples", min=model.min_window_samples, max=model.max_window_samples)
        return ({0: batch, 1: length},)
    frames = torch.export.Dim("frames", min=model.net.patch_size, max=model.frames_for(model.max_window_samples))
    return ({0: batch, 3: frames},)


def export_onnx(model: PasstWrapper, path: str, kind: str = "waveform", opset: int = 18) -> str:
    """Write ``model`` (set to eval) as ONNX to ``path``: input named ``kind``, outputs logits and embedding."""
    if kind not in INPUTS:
        raise ValueError(f"input kind {kind!r} is not one of {', '.join(INPUTS)}")
    model = model.eval()
    module = (WaveformToLogits(model) if kind == "waveform" else model.net).eval()
    example = example_input(model, kind)
    torch.onnx.export(module, (example,), path, dynamo=True, opset_version=opset, input_names=[kind],
                      output_names=list(OUTPUT_NAMES), dynamic_shapes=_dynamic_shapes(model, kind),
                      external_data=False, verbose=False)
    log.info("exported %s-to-logits model to %s (opset %d)", kind, path, opset)
    return path


def compare_with_onnxruntime(model: PasstWrapper, path: str, inputs: torch.Tensor) -> float:
    """Largest absolute difference between the logits of ``model`` (torch, eval) and of the ONNX file."""
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    onnx_logits = session.run([OUTPUT_NAMES[0]], {session.get_inputs()[0].name: inputs.numpy()})[0]
    model = model.eval()
    with torch.no_grad():
        if session.get_inputs()[0].name == "waveform":
            torch_logits = WaveformToLogits(model)(inputs)[0]
        else:
            torch_logits = model.net(inputs)[0]
    return float(np.abs(onnx_logits - torch_logits.numpy()).max())
