"""The HEAR 2021 validator (hearvalidator 2021.0.6, PyPI) run against our modules.

hearvalidator imports tensorflow at top level but, for a PyTorch model, uses it only for an
``isinstance(model, tf.Module)`` check. tensorflow-cpu cannot be installed next to this project's pins
(2.21 needs h5py < 3.15, older releases numpy < 2 or other tensorboard versions), so when tensorflow is
absent a stand-in module with an unrelated ``Module`` class is put in its place: the validator's own code
then runs unchanged. scripts/bootstrap.sh installs it (requirements-nodeps.txt), so it is never skipped.
"""
import importlib
import sys
import textwrap
import types
import warnings

import pytest
import torch

from models.passt import get_model
from models.registry import get_arch
from models.weights import hub_cache_path

import hearvalidator  # noqa: F401,E402  -- installed by scripts/bootstrap.sh from requirements-nodeps.txt


@pytest.fixture
def validator(monkeypatch):
    """hearvalidator.validate, imported with tensorflow or, without it, the stand-in described above."""
    try:
        importlib.import_module("tensorflow")
    except ImportError:
        stand_in = types.ModuleType("tensorflow")
        stand_in.Module = type("Module", (), {})
        monkeypatch.setitem(sys.modules, "tensorflow", stand_in)
    monkeypatch.delitem(sys.modules, "hearvalidator.validate", raising=False)
    return importlib.import_module("hearvalidator.validate")


def run_validator(validator, module_name, model_path):
    """Run the validator as ``hear-validator MODULE -m PATH -d cpu`` does; return its warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            validator.ValidateModel(module_name, model_path, device="cpu")()
        except validator.ModelError as error:
            pytest.fail(f"hear-validator rejected {module_name}: {error}")
    return [str(w.message) for w in caught]


def test_a_module_over_a_tiny_checkpoint_passes(validator, tmp_path, monkeypatch):
    (tmp_path / "tiny_hear.py").write_text(textwrap.dedent('''
        from passt_hear.variants import Variant, get_scene_embeddings, get_timestamp_embeddings
        VARIANT = Variant("passt_tiny", timestamp_windows_ms=(160.0, 800.0), timestamp_mel_frames=6)
        load_model = VARIANT.load_model
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    checkpoint = tmp_path / "tiny.pt"
    torch.save(get_model("passt_tiny", pretrained=False).state_dict(), checkpoint)
    messages = run_validator(validator, "tiny_hear", str(checkpoint))
    assert not [m for m in messages if "Your timestamps" in m or "We suggest" in m], messages


def test_the_validator_catches_timestamps_past_the_end(validator, tmp_path, monkeypatch):
    (tmp_path / "late_hear.py").write_text(textwrap.dedent('''
        from passt_hear import variants
        load_model = variants.Variant("passt_tiny").load_model
        get_scene_embeddings = variants.get_scene_embeddings

        def get_timestamp_embeddings(audio, model):
            embeddings, timestamps = variants.get_timestamp_embeddings(audio, model)
            return embeddings, timestamps + 100.0
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    checkpoint = tmp_path / "tiny.pt"
    torch.save(get_model("passt_tiny", pretrained=False).state_dict(), checkpoint)
    with pytest.raises(validator.ModelError, match="Your timestamps end at"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it also warns that the timestamps begin late
        validator.ValidateModel("late_hear", str(checkpoint), device="cpu")()


def test_passt_hear_base_with_release_weights_from_the_hub_cache_passes(validator, hub_dir):
    url = get_arch("passt_s_swa_p16_128_ap476").url
    torch.save(get_model("passt_s_swa_p16_128_ap476", pretrained=False).state_dict(), hub_cache_path(url))
    messages = run_validator(validator, "passt_hear.base", "")
    assert not [m for m in messages if "Your timestamps" in m or "We suggest" in m], messages
