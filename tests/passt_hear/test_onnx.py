"""ONNX export: the eval-mode model runs in onnxruntime with the same logits as in torch (<= 1e-4)."""
import onnx
import torch

from passt_hear.cli import main
from passt_hear.export import compare_with_onnxruntime, export_onnx


def test_waveform_to_logits_round_trip_via_the_command(tmp_path, tiny_checkpoint, capsys):
    path = tmp_path / "tiny.onnx"
    assert main(["export-onnx", "--arch", "passt_tiny", "--checkpoint", tiny_checkpoint, str(path)]) == 0
    assert capsys.readouterr().out.strip().endswith(str(path))
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["waveform"]
    assert [o.name for o in graph.output] == ["logits", "embedding"]
    from passt_hear.variants import Variant

    model = Variant("passt_tiny").load_model(tiny_checkpoint, mode="logits", device="cpu")
    for batch, samples in [(1, model.min_window_samples), (3, 32000 * 5), (2, model.max_window_samples)]:
        waveform = torch.rand(batch, samples, generator=torch.Generator().manual_seed(samples)) * 2 - 1
        assert compare_with_onnxruntime(model, str(path), waveform) <= 1e-4


def test_spectrogram_to_logits_round_trip(tmp_path, tiny_model):
    path = export_onnx(tiny_model, str(tmp_path / "spec.onnx"), kind="spectrogram")
    for frames in (16, 400, 1005):
        spectrogram = torch.randn(2, 1, 128, frames, generator=torch.Generator().manual_seed(frames))
        assert compare_with_onnxruntime(tiny_model, path, spectrogram) <= 1e-4
