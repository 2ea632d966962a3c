"""Other input channels than the weights': the patch convolution is adapted so that the same signal in every
channel gives the mono model's output, and training checkpoints load without their SWA copy."""
import pytest
import torch

from models.passt import get_model
from models.weights import adapt_input_channels, load_state_dict

torch.manual_seed(0)
SPEC = torch.randn(2, 1, 128, 200)


@pytest.fixture(scope="module")
def mono_checkpoint(tmp_path_factory):
    """A release-format passt_tiny state_dict (1 input channel) and the model it came from."""
    torch.manual_seed(3)
    model = get_model("passt_tiny", pretrained=False, n_classes=5).eval()
    path = tmp_path_factory.mktemp("weights") / "mono.pt"
    torch.save(model.state_dict(), path)
    return str(path), model


@pytest.mark.parametrize("source, target", [(1, 2), (1, 4), (3, 2), (3, 1), (2, 1)])
def test_equal_channels_give_the_source_weights_output(source, target):
    weight = torch.randn(8, source, 16, 16)
    adapted = adapt_input_channels(weight, target)
    assert adapted.shape == (8, target, 16, 16)
    patch = torch.randn(1, 1, 16, 16)
    expected = torch.nn.functional.conv2d(patch.expand(1, source, 16, 16), weight)
    torch.testing.assert_close(torch.nn.functional.conv2d(patch.expand(1, target, 16, 16), adapted), expected,
                               rtol=1e-5, atol=1e-4)


def test_matching_channels_are_left_as_they_are():
    weight = torch.randn(8, 2, 16, 16)
    assert adapt_input_channels(weight, 2) is weight


@pytest.mark.parametrize("in_channels", [2, 3])
def test_a_mono_checkpoint_in_a_multichannel_model_keeps_the_mono_logits(mono_checkpoint, in_channels, caplog):
    path, mono = mono_checkpoint
    with caplog.at_level("INFO", logger="models.weights"):
        model = get_model("passt_tiny", n_classes=5, in_channels=in_channels, checkpoint=path).eval()
    assert model.patch_embed.proj.weight.shape[1] == in_channels
    assert f"patch embedding adapted from 1 to {in_channels} input channels" in caplog.text
    with torch.no_grad():
        torch.testing.assert_close(model(SPEC.repeat(1, in_channels, 1, 1))[0], mono(SPEC)[0], atol=1e-5, rtol=1e-5)


def test_a_stereo_checkpoint_in_a_mono_model_sums_its_channels(tmp_path):
    stereo = get_model("passt_tiny", pretrained=False, n_classes=5, in_channels=2).eval()
    path = tmp_path / "stereo.pt"
    torch.save(stereo.state_dict(), path)
    mono = get_model("passt_tiny", n_classes=5, checkpoint=str(path)).eval()
    with torch.no_grad():
        torch.testing.assert_close(mono(SPEC)[0], stereo(SPEC.repeat(1, 2, 1, 1))[0], atol=1e-5, rtol=1e-5)


def test_a_training_checkpoint_with_swa_gives_the_network_only(tmp_path, mono_checkpoint):
    _, model = mono_checkpoint
    weights = model.state_dict()
    state_dict = {**{"net." + k: v for k, v in weights.items()}, **{"swa.net." + k: v + 1 for k, v in weights.items()},
                  "swa.n_averaged": torch.tensor(2), "swa.last_epoch": torch.tensor(4)}
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": state_dict, "epoch": 5}, path)
    loaded = load_state_dict(str(path))
    assert sorted(loaded) == sorted(weights)
    torch.testing.assert_close(loaded["head.1.bias"], weights["head.1.bias"])
