"""Small models and checkpoints for the passt_hear tests (passt_tiny: fast on CPU, no download)."""
import pytest
import torch

from models.passt import get_model
from passt_hear.variants import Variant

TINY = Variant("passt_tiny")


@pytest.fixture
def tiny_model():
    """A passt_tiny waveform model with random weights, mode "all", in eval mode."""
    torch.manual_seed(0)
    return TINY.get_basic_model(mode="all", pretrained=False).eval()


def save_tiny_checkpoint(path, n_classes=527, lightning=False):
    """Write passt_tiny weights: a release-format state_dict, or wrapped like a Lightning checkpoint."""
    torch.manual_seed(1)
    state_dict = get_model("passt_tiny", pretrained=False, n_classes=n_classes).state_dict()
    if lightning:
        state_dict = {"state_dict": {"net." + key: value for key, value in state_dict.items()}, "epoch": 3}
    torch.save(state_dict, path)
    return str(path)


@pytest.fixture
def make_tiny_checkpoint():
    """``save_tiny_checkpoint`` for tests that need other head sizes or the Lightning layout."""
    return save_tiny_checkpoint


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A release-format passt_tiny state_dict with 527 classes."""
    return save_tiny_checkpoint(tmp_path / "tiny.pt")
