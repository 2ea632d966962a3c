"""The PaSST network: patch grid, patchout, positional embeddings, upstream's layout and numerics."""
import os

import numpy as np
import pytest
import torch

from models.passt import EnsembleModel, PaSST, get_ensemble_model, get_model

GOLDEN = np.load(os.path.join(os.path.dirname(__file__), "data", "upstream_golden.npz"))


def tiny(**kwargs):
    kwargs.setdefault("pretrained", False)
    return get_model("passt_tiny", **kwargs)


def sequence_lengths(model, x):
    """Lengths of the token sequences that enter the first transformer block."""
    seen = []
    handle = model.blocks[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[1]))
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen


SPEC = torch.randn(2, 1, 128, 998)  # 10 s at hop 320: a 12 x 99 patch grid at stride 10


class TestPatchGridAndPatchout:
    def test_eval_uses_the_whole_grid_plus_two_tokens(self):
        model = tiny(s_patchout_t=40, s_patchout_f=4, u_patchout=100).eval()
        assert model.grid_shape(128, 998) == (12, 99)
        assert sequence_lengths(model, SPEC) == [12 * 99 + 2]

    @pytest.mark.parametrize("patchout, expected", [
        (dict(s_patchout_t=40), 12 * 59 + 2),
        (dict(s_patchout_f=4), 8 * 99 + 2),
        (dict(s_patchout_t=40, s_patchout_f=4), 8 * 59 + 2),
        (dict(u_patchout=400), 12 * 99 - 400 + 2),
        (dict(s_patchout_t=10, s_patchout_f=2, u_patchout=100), 10 * 89 - 100 + 2),
    ])
    def test_training_drops_the_configured_patches(self, patchout, expected):
        model = tiny(**patchout).train()
        assert sequence_lengths(model, SPEC) == [expected]
        assert model.sequence_length(128, 998, training=True) == expected
        logits, features = model(SPEC)
        assert logits.shape == (2, 527) and features.shape == (2, 96)

    def test_structured_patchout_removes_whole_columns_and_rows(self):
        model = tiny(s_patchout_t=3, s_patchout_f=2).train()
        index = model._patchout_index(12, 99, "cpu")
        rows, cols = index // 99, index % 99
        assert len(set(rows.tolist())) == 10 and len(set(cols.tolist())) == 96
        assert len(index) == 10 * 96 and torch.all(index[1:] > index[:-1])

    def test_patchout_draws_differ_between_steps(self):
        model = tiny(u_patchout=500).train()
        assert not torch.equal(model._patchout_index(12, 99, "cpu"), model._patchout_index(12, 99, "cpu"))

    def test_patchout_is_a_gather_of_the_full_grid(self):
        """The kept tokens are exactly the full grid's tokens at the kept positions (one index, no reorder)."""
        model = tiny(s_patchout_t=7, s_patchout_f=3, u_patchout=50).train()
        captured = {}
        model.blocks[0].register_forward_pre_hook(lambda _m, args: captured.setdefault("train", args[0]))
        torch.manual_seed(5)
        with torch.no_grad():
            model(SPEC)
        torch.manual_seed(5)
        index = model._patchout_index(12, 99, "cpu")
        full_model = tiny().train()
        full_model.load_state_dict(model.state_dict())
        full_model.blocks[0].register_forward_pre_hook(lambda _m, args: captured.setdefault("full", args[0]))
        with torch.no_grad():
            full_model(SPEC)
        assert torch.equal(captured["train"][:, 2:], captured["full"][:, 2:][:, index])

    def test_eval_is_deterministic(self):
        model = tiny(s_patchout_t=40, s_patchout_f=4).eval()
        with torch.no_grad():
            assert torch.equal(model(SPEC)[0], model(SPEC)[0])


class TestTimeEmbeddingCrop:
    def test_short_input_uses_the_start_of_the_time_embedding_in_eval(self):
        model = tiny().eval()
        short = SPEC[..., :500]
        assert sequence_lengths(model, short) == [12 * 49 + 2]
        with torch.no_grad():
            assert torch.equal(model(short)[0], model(short)[0])

    def test_short_input_gets_a_random_offset_in_training(self):
        model = tiny().train()
        offsets = set()
        for _ in range(10):
            grid = model._positional_grid(12, 20)
            offsets.add(int(torch.nonzero(torch.isclose(
                model.time_new_pos_embed[0, 0, 0], grid[0, 0, 0, 0] - model.freq_new_pos_embed[0, 0, 0, 0]))[0]))
        assert len(offsets) > 1

    def test_long_input_is_cut_with_a_warning(self):
        model = tiny().eval()
        with pytest.warns(UserWarning, match="cut"):
            assert sequence_lengths(model, torch.randn(1, 1, 128, 1500)) == [12 * 99 + 2]


class TestUpstreamCompatibility:
    def test_release_layout_of_passt_s_swa_p16_128_ap476(self):
        state = get_model("passt_s_swa_p16_128_ap476", pretrained=False).state_dict()
        assert len(state) == 159
        assert sum(v.numel() for v in state.values()) == 86_153_758
        assert state["freq_new_pos_embed"].shape == (1, 768, 12, 1)
        assert state["time_new_pos_embed"].shape == (1, 768, 1, 99)
        assert state["new_pos_embed"].shape == (1, 2, 768)
        assert state["head.1.weight"].shape == state["head_dist.weight"].shape == (527, 768)
        assert state["head.0.weight"].shape == (768,)
        assert state["patch_embed.proj.weight"].shape == (768, 1, 16, 16)
        assert {k for k in state if k.startswith("blocks.11.")} == {
            f"blocks.11.{name}" for name in ("norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
                                             "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
                                             "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias")}

    @pytest.mark.parametrize("arch, time_patches, freq_patches", [
        ("passt_s_p16_s12_128_ap470", 83, 10), ("passt_s_p16_s14_128_ap469", 71, 9),
        ("passt_s_p16_s16_128_ap468", 62, 8), ("passt_s_f128_30sec_p16_s10_ap473", 300, 12),
    ])
    def test_positional_embeddings_are_sized_input_over_stride(self, arch, time_patches, freq_patches):
        state = get_model(arch, pretrained=False).state_dict()
        assert state["time_new_pos_embed"].shape[-1] == time_patches
        assert state["freq_new_pos_embed"].shape[2] == freq_patches

    def test_same_logits_as_upstream_for_the_same_weights(self):
        """Golden logits computed with upstream's PaSST class (tests/models/data, see its README)."""
        model = PaSST(img_size=(128, 200), patch_size=16, stride=(10, 12), in_channels=1, num_classes=7,
                      embed_dim=48, depth=2, num_heads=4).eval()
        model.load_state_dict(golden_state_dict(model), strict=True)
        spec = torch.from_numpy(GOLDEN["mel"])[:, None]
        with torch.no_grad():
            logits, features = model(spec[..., :200])
            logits_short, _ = model(spec[..., :150])
        np.testing.assert_allclose(logits.numpy(), GOLDEN["logits"], atol=1e-5)
        np.testing.assert_allclose(features.numpy(), GOLDEN["features"], atol=1e-5)
        np.testing.assert_allclose(logits_short.numpy(), GOLDEN["logits_short"], atol=1e-5)


def golden_state_dict(model):
    """The deterministic weights the golden file was made with: key i (sorted) ~ N(0, 0.05²) from seed i."""
    state = {}
    for i, key in enumerate(sorted(model.state_dict())):
        shape = model.state_dict()[key].shape
        value = torch.randn(shape, generator=torch.Generator().manual_seed(i)) * 0.05
        if key.endswith("weight") and ("norm" in key or key == "head.0.weight"):
            value = value + 1.0
        state[key] = value
    return state


class TestAttention:
    @pytest.mark.parametrize("train", [False, True])
    def test_sdpa_matches_the_plain_formulation(self, train):
        model = tiny(s_patchout_t=10, s_patchout_f=2).train(train)
        x = SPEC[:1]
        torch.manual_seed(3)
        fused = model(x)[0]
        model.set_fused_attention(False)
        torch.manual_seed(3)
        plain = model(x)[0]
        torch.testing.assert_close(fused, plain, atol=1e-5, rtol=1e-4)

    def test_gradients_reach_every_parameter(self):
        model = tiny(s_patchout_t=40, s_patchout_f=4).train()
        model(SPEC)[0].sum().backward()
        without = [n for n, p in model.named_parameters() if p.grad is None and not n.startswith("head_dist")]
        assert without == []


class TestBuilderValidation:
    @pytest.mark.parametrize("kwargs, message", [
        (dict(s_patchout_t=99), "removes the whole"),
        (dict(s_patchout_f=12), "removes the whole"),
        (dict(u_patchout=12 * 99), "removes the whole"),
        (dict(fstride=0), "stride must be positive"),
        (dict(tstride=-3), "stride must be positive"),
        (dict(input_tdim=10), "smaller than one 16x16 patch"),
        (dict(n_classes=0), "n_classes must be positive"),
    ])
    def test_impossible_settings_are_rejected_by_name(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            tiny(**kwargs)

    def test_wrong_input_rank_is_a_clear_error(self):
        with pytest.raises(ValueError, match=r"\(batch, channels, mel bins, frames\)"):
            tiny()(torch.randn(2, 128, 998))


def test_ensemble_averages_member_logits():
    members = [tiny(n_classes=5).eval(), tiny(n_classes=5).eval()]
    ensemble = EnsembleModel(members).eval()
    with torch.no_grad():
        logits, _ = ensemble(SPEC[:1])
        expected = (members[0](SPEC[:1])[0] + members[1](SPEC[:1])[0]) / 2
    torch.testing.assert_close(logits, expected)


def test_ensemble_builder_takes_arch_and_strides(tmp_path):
    ensemble = get_ensemble_model([("passt_tiny", 10, 10), ("passt_tiny", 16, 16)], pretrained=False)
    assert [m.stride for m in ensemble.models] == [(10, 10), (16, 16)]
    assert ensemble.eval()(SPEC[:1])[0].shape == (1, 527)
