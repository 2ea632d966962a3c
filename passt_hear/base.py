"""HEAR 2021 API and waveform model: PaSST-S (stride 10, SWA, AudioSet mAP .476), the default model."""
from passt_hear.variants import Variant, get_model_passt, get_scene_embeddings, get_timestamp_embeddings

VARIANT = Variant("passt_s_swa_p16_128_ap476", scene_hop_seconds=2.5)
load_model = VARIANT.load_model
get_basic_model = VARIANT.get_basic_model

__all__ = ["VARIANT", "load_model", "get_basic_model", "get_model_passt", "get_scene_embeddings",
           "get_timestamp_embeddings"]
