"""The HEAR modules return what hear21passt 0.0.26's modules of the same name return, at every length.

hear21passt comes from PyPI (requirements-nodeps.txt, installed with --no-deps). Both packages read release
weights from the same torch.hub cache, where these tests plant random weights under the release file name.
CPU, eval mode. Release-size networks are slow on CPU, so they run on the default model (1 s and 25 s audio); every
module is compared at 1 s (and those with their own windows at 10 s to 31 s) with one small network put into both
packages, so that everything but the network is each package's own.
"""
import contextlib
import importlib
import io
import os
import shutil
import warnings

import pytest
import torch

from models.passt import get_model
from models.registry import get_arch
from models.weights import hub_cache_path
from passt_hear.variants import build_mel
from passt_hear.wrapper import PasstWrapper

with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import hear21passt.base  # noqa: F401  -- PyPI 0.0.26, installed by scripts/bootstrap.sh

SR = 32000
ATOL = 1e-4
MODULES = ["base", "base20sec", "base30sec", "base2level", "base2levelmel", "hop100base", "hop100base2lvl",
           "hop100base2lvlmel", "hop160base", "hop160base2lvl", "hop160base2lvlmel"]  # openmic2008: see below


@contextlib.contextmanager
def quiet():
    """hear21passt prints its network when it builds one and warns about input sizes on every pass."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def noise(seconds, batch=1):
    return torch.rand(batch, round(seconds * SR), generator=torch.Generator().manual_seed(7)) * 2 - 1


def hear_outputs(module, model, audio):
    """Scene embeddings, timestamp embeddings and timestamps of one HEAR module for ``audio``."""
    with quiet():
        scene = module.get_scene_embeddings(audio, model)
        embeddings, timestamps = module.get_timestamp_embeddings(audio, model)
    return scene, embeddings, timestamps


def assert_same_outputs(ours, theirs, what):
    for name, mine, upstream in zip(("scene", "timestamp embeddings", "timestamps"), ours, theirs):
        assert mine.shape == upstream.shape, f"{what}: {name}"
        torch.testing.assert_close(mine, upstream.to(mine.dtype), rtol=0, atol=ATOL, msg=f"{what}: {name}")


@pytest.fixture(scope="module")
def release_hub(tmp_path_factory):
    """A torch.hub cache shared by this module's tests; release-size files are removed at the end."""
    directory = tmp_path_factory.mktemp("hub")
    (directory / "checkpoints").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.hub, "_hub_dir", str(directory))
        yield directory
    shutil.rmtree(directory)


@pytest.fixture(scope="module")
def release_models(release_hub):
    """``release_models(name)``: our and hear21passt's module ``name`` with the planted release weights."""
    built = {}

    def build(name):
        if name not in built:
            built.clear()  # one pair of release-size networks in memory at a time
            ours = importlib.import_module(f"passt_hear.{name}")
            theirs = importlib.import_module(f"hear21passt.{name}")
            arch = get_arch(ours.VARIANT.arch)
            if not os.path.exists(hub_cache_path(arch.url)):
                torch.manual_seed(0)
                planted = get_model(arch.name, pretrained=False, n_classes=arch.n_classes).state_dict()
                torch.save(planted, hub_cache_path(arch.url))
            with quiet():
                their_model = theirs.load_model().to("cpu").eval()
            built[name] = ours, ours.load_model(device="cpu"), theirs, their_model
        return built[name]

    return build


@pytest.mark.parametrize("name, seconds", [("base", 1.0), ("base", 25.0)])
def test_release_weights_give_hear21passts_outputs(release_models, name, seconds):
    ours, our_model, theirs, their_model = release_models(name)
    audio = noise(seconds)
    if seconds > 10:  # long audio: the scene embedding is where the windows matter
        with quiet():
            torch.testing.assert_close(ours.get_scene_embeddings(audio, our_model),
                                       theirs.get_scene_embeddings(audio, their_model), rtol=0, atol=ATOL)
        return
    assert_same_outputs(hear_outputs(ours, our_model, audio), hear_outputs(theirs, their_model, audio),
                        f"{name}, {seconds} s")


def small_network_models(monkeypatch, name):
    """Our and hear21passt's module ``name`` and models, both over one small network with the time embedding
    of the module's release model: every part but the network is each package's own."""
    ours, theirs = importlib.import_module(f"passt_hear.{name}"), importlib.import_module(f"hear21passt.{name}")
    torch.manual_seed(0)
    net = get_model("passt_tiny", pretrained=False, input_tdim=get_arch(ours.VARIANT.arch).input_size[1]).eval()
    monkeypatch.setattr(theirs, "get_model_passt", lambda **_: net)
    with quiet():
        their_model = theirs.load_model().to("cpu").eval()
    options, _ = ours.VARIANT.wrapper_options()
    return ours, PasstWrapper(build_mel(ours.VARIANT.arch), net, mode="all", **options).eval(), theirs, their_model


@pytest.mark.parametrize("name", MODULES)
def test_every_module_gives_hear21passts_outputs(monkeypatch, name):
    """Scene and timestamp embeddings: mel frontend, timestamp windows, levels and mel frames, concatenation."""
    ours, our_model, theirs, their_model = small_network_models(monkeypatch, name)
    audio = noise(1.0, batch=2)
    assert_same_outputs(hear_outputs(ours, our_model, audio), hear_outputs(theirs, their_model, audio), name)


@pytest.mark.parametrize("name, seconds", [("base", 10.0), ("base", 10.01), ("base", 25.0), ("base20sec", 25.0),
                                           ("base30sec", 31.3), ("hop100base", 25.0)])
def test_long_audio_is_windowed_as_hear21passt(monkeypatch, name, seconds):
    """Audio up to and longer than the network takes: windows, reflected ends and averaging, for each window
    length (10 s, 20 s, 30 s) and mel hop. (Timestamps of long audio are those of short audio, more of them;
    hear21passt computes them one by one, slowly.)"""
    ours, our_model, theirs, their_model = small_network_models(monkeypatch, name)
    audio = noise(seconds, batch=2)
    with quiet():
        torch.testing.assert_close(ours.get_scene_embeddings(audio, our_model),
                                   theirs.get_scene_embeddings(audio, their_model), rtol=0, atol=ATOL)


def test_openmic2008_loads_the_openmic_passt_u_where_hear21passt_fails():
    from hear21passt import openmic2008 as theirs
    from passt_hear import openmic2008 as ours

    with quiet(), pytest.raises(RuntimeError, match="Unknown model openmic2008"):
        theirs.load_model()
    model = ours.VARIANT.get_basic_model(pretrained=False)
    assert model.scene_embedding_size == model.timestamp_embedding_size == 768 + 20  # as hear21passt's module sets
    assert ours.VARIANT.arch == "openmic2008_passt_u_f128_p16_s10_ap85_swa"
