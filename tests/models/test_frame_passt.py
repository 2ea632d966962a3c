"""The frame-level PaSST: per-frame logits from the patch tokens, built on any registered architecture and its
release weights."""
import pytest
import torch

from models.passt import FramePaSST, get_model
from models.registry import get_arch
from models.weights import hub_cache_path

SPEC = torch.randn(2, 1, 128, 998)


def test_a_registered_frame_architecture_gives_40ms_frames_and_clip_logits():
    model = get_model("fpasst_tiny", pretrained=False, n_classes=7).eval()
    assert isinstance(model, FramePaSST)
    frames, clip = model(SPEC)
    assert frames.shape == (2, 250, 7) and clip.shape == (2, 7)


def test_any_architecture_takes_a_frame_head_with_its_own_frame_count():
    model = get_model("passt_tiny", pretrained=False, n_classes=3, frame_head="bigru", frames=125).eval()
    assert model.frame_rnn is not None
    assert model(SPEC)[0].shape == (2, 125, 3)
    fewer = get_model("passt_tiny", pretrained=False, n_classes=3, frame_head="linear", frames=50).eval()
    assert fewer(SPEC)[0].shape == (2, 50, 3)  # 99 time columns pooled down


def test_frames_follow_the_time_columns_they_come_from():
    """A frame's output depends on what happens at its time, not only on the clip: changing the last second of
    the input changes the last frames more than the first ones."""
    torch.manual_seed(0)
    model = get_model("passt_tiny", pretrained=False, n_classes=2, frame_head="linear", frames=99).eval()
    changed = SPEC.clone()
    changed[..., -100:] += 3.0
    with torch.no_grad():
        delta = (model(changed)[0] - model(SPEC)[0]).abs().mean(dim=(0, 2))
    assert delta[-10:].mean() > delta[:10].mean()


def test_frequency_patchout_is_allowed_time_patchout_is_not():
    get_model("passt_tiny", pretrained=False, frame_head="linear", s_patchout_f=2).train()(SPEC)
    for patchout in (dict(s_patchout_t=4), dict(u_patchout=10)):
        with pytest.raises(ValueError, match="keeps every time column"):
            get_model("passt_tiny", pretrained=False, frame_head="linear", **patchout)
    with pytest.raises(ValueError, match="frame_head 'lstm'"):
        get_model("passt_tiny", pretrained=False, frame_head="lstm")


def test_release_weights_load_into_the_frame_model_with_a_fresh_frame_head(hub_dir):
    """Real PaSST-S size: every PaSST weight comes from the release file; only the frame layers are new."""
    release = get_model("passt_s_swa_p16_128_ap476", pretrained=False).eval()
    torch.save(release.state_dict(), hub_cache_path(get_arch("passt_s_swa_p16_128_ap476").url))
    frame_model = get_model("fpasst_s_p16_s10_128", pretrained=True).eval()
    loaded = frame_model.state_dict()
    for name, tensor in release.state_dict().items():
        torch.testing.assert_close(loaded[name], tensor)
    assert sorted({name.split(".")[0] for name in loaded if name not in release.state_dict()}) == ["frame_classifier"]
    x = torch.randn(1, 1, 128, 998)
    with torch.no_grad():
        torch.testing.assert_close(frame_model(x)[1], release(x)[0])  # the clip head is the release model's
