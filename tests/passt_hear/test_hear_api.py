"""The HEAR 2021 API: load_model, scene and timestamp embeddings, sizes, timestamps, sibling modules."""
import importlib
import math

import numpy as np
import pytest
import torch

from models.passt import get_model
from models.registry import get_arch
from models.weights import hub_cache_path
from passt_hear.variants import DEFAULT_ARCH, Variant, get_scene_embeddings, get_timestamp_embeddings

SR = 32000
SIBLINGS = {  # module: (architecture, scene hop s, timestamp windows ms, mel frames)
    "base": ("passt_s_swa_p16_128_ap476", 2.5, (160.0,), 0),
    "base20sec": ("passt_s_f128_20sec_p16_s10_ap474", 5.0, (160.0,), 0),
    "base30sec": ("passt_s_f128_30sec_p16_s10_ap473", 10.0, (160.0,), 0),
    "hop100base": ("passt_s_swa_f128_stfthop100_p16_s10_ap473", 2.5, (160.0,), 0),
    "hop160base": ("passt_s_swa_f128_stfthop160_p16_s10_ap473", 2.5, (160.0,), 0),
    "openmic2008": ("openmic2008_passt_u_f128_p16_s10_ap85_swa", 2.5, (160.0,), 0),
    "base2level": ("passt_s_swa_p16_128_ap476", 2.5, (160.0, 800.0), 0),
    "base2levelmel": ("passt_s_swa_p16_128_ap476", 2.5, (160.0, 640.0), 6),
    "hop100base2lvl": ("passt_s_swa_f128_stfthop100_p16_s10_ap473", 2.5, (160.0, 800.0), 0),
    "hop100base2lvlmel": ("passt_s_swa_f128_stfthop100_p16_s10_ap473", 2.5, (160.0, 800.0), 6),
    "hop160base2lvl": ("passt_s_swa_f128_stfthop160_p16_s10_ap473", 2.5, (160.0, 800.0), 0),
    "hop160base2lvlmel": ("passt_s_swa_f128_stfthop160_p16_s10_ap473", 2.5, (160.0, 800.0), 6),
}


def noise(batch, seconds):
    return torch.rand(batch, int(seconds * SR), generator=torch.Generator().manual_seed(3)) * 2 - 1


@pytest.mark.parametrize("module_name", sorted(SIBLINGS))
def test_sibling_modules_are_variants_with_the_hear_functions(module_name):
    module = importlib.import_module(f"passt_hear.{module_name}")
    arch, scene_hop, windows, mel_frames = SIBLINGS[module_name]
    assert module.VARIANT == Variant(arch, scene_hop_seconds=scene_hop, timestamp_windows_ms=windows,
                                     timestamp_mel_frames=mel_frames)
    assert module.get_scene_embeddings is get_scene_embeddings
    assert module.get_timestamp_embeddings is get_timestamp_embeddings
    assert module.load_model.__self__ is module.VARIANT


@pytest.mark.parametrize("module_name, hop", [("hop100base", 100), ("hop160base", 160), ("base20sec", 320)])
def test_variants_build_the_mel_frontend_of_their_weights(module_name, hop):
    module = importlib.import_module(f"passt_hear.{module_name}")
    arch = get_arch(module.VARIANT.arch)
    assert arch.mel_hopsize == hop
    model = module.VARIANT.get_basic_model(arch="passt_tiny", pretrained=False)
    assert model.mel.hopsize == get_arch("passt_tiny").mel_hopsize  # the arch argument decides the frontend


class TestLoadModel:
    def test_local_checkpoint_gives_an_eval_model_with_the_hear_attributes(self, tiny_checkpoint):
        model = Variant("passt_tiny").load_model(tiny_checkpoint, device="cpu")
        assert not model.training
        assert model.sample_rate == 32000
        assert model.scene_embedding_size == 527 + 96 == model.timestamp_embedding_size
        assert isinstance(model.scene_embedding_size, int) and isinstance(model.timestamp_embedding_size, int)
        torch.testing.assert_close(model.net.state_dict()["head.1.bias"], torch.load(tiny_checkpoint)["head.1.bias"])

    def test_checkpoint_head_decides_the_number_of_classes(self, tmp_path, make_tiny_checkpoint):
        path = make_tiny_checkpoint(tmp_path / "ft.ckpt", n_classes=7, lightning=True)
        model = Variant("passt_tiny").load_model(path, mode="logits", device="cpu")
        assert model.scene_embedding_size == 7
        assert get_scene_embeddings(noise(2, 1.0), model).shape == (2, 7)

    def test_empty_path_uses_the_release_weights_from_the_hub_cache(self, hub_dir):
        from passt_hear import base

        planted = get_model("passt_s_swa_p16_128_ap476", pretrained=False).state_dict()
        torch.save(planted, hub_cache_path(get_arch("passt_s_swa_p16_128_ap476").url))
        model = base.load_model("", device="cpu")
        assert model.scene_embedding_size == 527 + 768 == model.timestamp_embedding_size
        torch.testing.assert_close(model.net.state_dict()["time_new_pos_embed"], planted["time_new_pos_embed"])


class TestHear21passtArguments:
    """What hear21passt's load_model and get_basic_model take (times in ms) means the same here."""

    def test_window_and_hop_arguments_in_ms(self):
        variant = Variant("passt_tiny", scene_hop_seconds=2.5, timestamp_windows_ms=(160.0, 800.0))
        model = variant.get_basic_model(pretrained=False, scene_hop=5000, max_model_window=8000,
                                        timestamp_window=200, timestamp_hop=25)
        assert (model.hop_seconds, model.window_seconds) == (5.0, 8.0)
        assert model.timestamp_windows_ms == (200.0, 1000.0)  # the second level stays 5 times the first
        assert model.timestamp_hop_ms == 25.0

    def test_mode_defaults_to_all_and_arch_picks_the_network(self):
        model = Variant(DEFAULT_ARCH).get_basic_model(arch="passt_tiny", pretrained=False)
        assert model.mode == "all" and model.net.embed_dim == 96

    def test_model_path_is_the_weights_file(self, tiny_checkpoint):
        model = Variant("passt_tiny").load_model(model_path=tiny_checkpoint, device="cpu")
        torch.testing.assert_close(model.net.state_dict()["head.1.bias"], torch.load(tiny_checkpoint)["head.1.bias"])

    def test_embedding_sizes_are_checked_against_the_model(self):
        variant = Variant("passt_tiny")
        assert variant.get_basic_model(pretrained=False, scene_embedding_size=527 + 96).scene_embedding_size == 623
        with pytest.raises(ValueError, match=r"timestamp_embedding_size=1295 does not match the model: passt_tiny "
                                             r"in mode 'all' gives 623"):
            variant.get_basic_model(pretrained=False, timestamp_embedding_size=1295)


class TestSceneEmbeddings:
    def test_shape_and_dtype(self, tiny_model):
        embeddings = get_scene_embeddings(noise(4, 2.74), tiny_model)
        assert embeddings.shape == (4, tiny_model.scene_embedding_size) and embeddings.dtype == torch.float32

    def test_long_audio_is_averaged_over_windows(self, tiny_model):
        audio = noise(1, 16.0)
        outputs, _ = tiny_model.window_outputs(audio)
        torch.testing.assert_close(get_scene_embeddings(audio, tiny_model), outputs.mean(1))


class TestTimestampEmbeddings:
    @pytest.mark.parametrize("seconds", [1.07, 1.98, 4.0, 0.1])
    def test_timestamps_are_evenly_spaced_ms_from_zero_to_at_most_the_end(self, tiny_model, seconds):
        audio = noise(2, seconds)
        embeddings, timestamps = get_timestamp_embeddings(audio, tiny_model)
        duration_ms = audio.shape[1] * 1000 / SR
        count = math.floor(duration_ms / 50) + 1
        assert embeddings.shape == (2, count, tiny_model.timestamp_embedding_size)
        assert embeddings.dtype == torch.float32 and timestamps.shape == (2, count)
        np.testing.assert_allclose(timestamps[1].numpy(), np.arange(count) * 50.0)
        assert timestamps.max() <= duration_ms and duration_ms - timestamps.max() < 50

    def test_each_embedding_is_the_window_centred_on_its_timestamp(self, tiny_model):
        audio = noise(1, 1.0)
        embeddings, timestamps = get_timestamp_embeddings(audio, tiny_model)
        index = 7  # 350 ms: the 160 ms window is samples 11200 - 2560 ... 11200 + 2560
        centre = int(timestamps[0, index] * SR / 1000)
        with torch.no_grad():
            expected = tiny_model(audio[:, centre - 2560:centre + 2560])
        torch.testing.assert_close(embeddings[:, index], expected)

    def test_first_window_reflects_the_audio_at_its_start(self, tiny_model):
        audio = noise(1, 1.0)
        embeddings, _ = get_timestamp_embeddings(audio, tiny_model)
        reflected = torch.cat((audio[:, 1:2561].flip(1), audio[:, :2560]), dim=1)
        with torch.no_grad():
            torch.testing.assert_close(embeddings[:, 0], tiny_model(reflected))

    def test_two_levels_and_mel_frames_are_concatenated(self):
        variant = Variant("passt_tiny", timestamp_windows_ms=(160.0, 800.0), timestamp_mel_frames=6)
        model = variant.get_basic_model(mode="all", pretrained=False).eval()
        audio = noise(2, 1.5)
        embeddings, timestamps = get_timestamp_embeddings(audio, model)
        assert model.timestamp_embedding_size == 2 * (527 + 96) + 6 * 128
        assert embeddings.shape == (2, 31, model.timestamp_embedding_size)
        short, _ = model.timestamp_outputs(audio, 160.0)
        long, _ = model.timestamp_outputs(audio, 800.0)
        torch.testing.assert_close(embeddings[..., :623], short)
        torch.testing.assert_close(embeddings[..., 623:1246], long)
        centre = int(timestamps[0, 10] * SR / 1000)  # mel frames of the 6 hops around 500 ms
        with torch.no_grad():
            mels = model.mel(audio[:, centre - 960:centre + 960])
        torch.testing.assert_close(embeddings[:, 10, 1246:], mels.flatten(1))
