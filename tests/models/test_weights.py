"""Release weights: the hub cache, strict loading, new heads, ImageNet adaptation, untrusted files."""
import collections
import urllib.error

import pytest
import torch

from models import weights
from models.passt import get_model
from models.registry import get_arch
from models.weights import CheckpointError, hub_cache_path

SPEC = torch.randn(1, 1, 128, 300)


def plant_release(model, arch_name):
    """Write ``model``'s weights where torch.hub would keep the release file of ``arch_name``."""
    path = hub_cache_path(get_arch(arch_name).url)
    torch.save(model.state_dict(), path)
    return path


def test_hub_cache_path_is_the_url_file_name_under_checkpoints(hub_dir):
    url = get_arch("passt_s_swa_p16_128_ap476").url
    assert hub_cache_path(url) == str(hub_dir / "checkpoints" / "passt-s-f128-p16-s10-ap.476-swa.pt")


def test_planted_release_file_loads_strictly_and_reproduces_logits(hub_dir):
    """Real PaSST-S size: the release layout loads with strict=True and gives the saved model's logits."""
    original = get_model("passt_s_swa_p16_128_ap476", pretrained=False).eval()
    plant_release(original, "passt_s_swa_p16_128_ap476")
    loaded = get_model("passt_s_swa_p16_128_ap476", pretrained=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(SPEC)[0], original(SPEC)[0])


def test_other_n_classes_keeps_everything_but_the_heads(hub_dir, caplog):
    original = get_model("passt_l_kd_p16_128_ap47", pretrained=False)
    plant_release(original, "passt_l_kd_p16_128_ap47")
    with caplog.at_level("INFO"):
        model = get_model("passt_l_kd_p16_128_ap47", pretrained=True, n_classes=50)
    assert model.head[1].weight.shape == (50, 768) and model.head_dist.weight.shape == (50, 768)
    for key, value in original.state_dict().items():
        if key not in weights.CLASSIFIER_KEYS:
            assert torch.equal(model.state_dict()[key], value), key
    assert "keeping all but the classifier heads" in caplog.text


def test_missing_file_offline_names_url_and_cache_path(hub_dir, monkeypatch):
    def offline(url, dst, progress=True):
        raise urllib.error.URLError("Name or service not known")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    url = get_arch("passt_s_kd_p16_128_ap486").url
    with pytest.raises(CheckpointError) as error:
        get_model("passt_s_kd_p16_128_ap486", pretrained=True)
    assert url in str(error.value)
    assert str(hub_dir / "checkpoints" / "passt-s-kd-ap.486.pt") in str(error.value)


def test_download_happens_only_when_missing(hub_dir, monkeypatch):
    calls = []
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda url, dst, progress=True: calls.append(url))
    path = hub_cache_path("https://example.org/x.pt")
    open(path, "wb").close()
    assert weights.resolve_checkpoint("https://example.org/x.pt") == path and calls == []


def test_arch_without_weights_refuses_pretrained():
    with pytest.raises(CheckpointError, match="no release weights"):
        get_model("passt_tiny", pretrained=True)


def test_local_checkpoint_of_a_lightning_run_loads(tmp_path):
    model = get_model("passt_tiny", pretrained=False, n_classes=10)
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"net." + k: v for k, v in model.state_dict().items()}, "epoch": 3}, path)
    loaded = get_model("passt_tiny", pretrained=False, n_classes=10, checkpoint=str(path)).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(SPEC)[0], model.eval()(SPEC)[0])


def test_checkpoint_with_unexpected_keys_or_shapes_lists_them(tmp_path):
    state = get_model("passt_tiny", pretrained=False).state_dict()
    state["blocks.9.attn.qkv.weight"] = torch.zeros(3)
    state["cls_token"] = torch.zeros(1, 1, 95)
    del state["norm.bias"]
    path = tmp_path / "odd.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as error:
        get_model("passt_tiny", pretrained=False, checkpoint=str(path))
    text = str(error.value)
    assert "missing keys: norm.bias" in text and "unexpected keys: blocks.9.attn.qkv.weight" in text
    assert "cls_token: checkpoint (1, 1, 95) vs model (1, 1, 96)" in text


def test_release_weights_with_other_strides_say_which_strides_they_need(hub_dir):
    plant_release(get_model("passt_s_p16_s16_128_ap468", pretrained=False), "passt_s_p16_s16_128_ap468")
    with pytest.raises(CheckpointError, match=r"fstride/tstride=\(16, 16\)"):
        get_model("passt_s_p16_s16_128_ap468", pretrained=True, fstride=10, tstride=10)


class Payload:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_checkpoints_are_loaded_without_unpickling_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match="cannot load checkpoint"):
        weights.load_state_dict(str(path))


def test_imagenet_deit_weights_are_adapted_to_audio(tmp_path):
    """A DeiT-style file (2-D pos_embed, RGB conv, 1000-class heads) becomes a PaSST state_dict."""
    model = get_model("passt_tiny", pretrained=False, n_classes=10)
    deit = collections.OrderedDict((k, v.clone()) for k, v in model.state_dict().items()
                                   if not k.startswith("head") and "pos_embed" not in k)
    deit["pos_embed"] = torch.randn(1, 2 + 14 * 14, 96)
    deit["patch_embed.proj.weight"] = torch.randn(96, 3, 16, 16)
    deit["head.weight"], deit["head.bias"] = torch.randn(1000, 96), torch.randn(1000)
    deit["head_dist.weight"], deit["head_dist.bias"] = torch.randn(1000, 96), torch.randn(1000)
    path = tmp_path / "deit.pth"
    torch.save({"model": deit}, path)
    adapted = get_model("passt_tiny", pretrained=False, n_classes=10, checkpoint=str(path)).state_dict()
    torch.testing.assert_close(adapted["patch_embed.proj.weight"], deit["patch_embed.proj.weight"].sum(1, True))
    assert adapted["freq_new_pos_embed"].shape == (1, 96, 12, 1)
    assert adapted["time_new_pos_embed"].shape == (1, 96, 1, 99)
    torch.testing.assert_close(adapted["new_pos_embed"], deit["pos_embed"][:, :2])
    grid = torch.nn.functional.interpolate(deit["pos_embed"][0, 2:].reshape(1, 14, 14, 96).permute(0, 3, 1, 2),
                                           size=(12, 99), mode="bicubic", align_corners=False)
    torch.testing.assert_close(adapted["time_new_pos_embed"], grid.mean(2, keepdim=True))
    assert adapted["head.1.weight"].shape == (10, 96)


@pytest.mark.parametrize("zip_format", [True, False])
def test_mapped_reading_gives_the_same_tensors_for_new_and_legacy_files(tmp_path, zip_format):
    state = get_model("passt_tiny", pretrained=False, n_classes=7).state_dict()
    path = tmp_path / "weights.pt"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    mapped = weights.load_state_dict(str(path), mmap=True)
    assert mapped.keys() == state.keys() and all(torch.equal(mapped[k], v) for k, v in state.items())
