"""HEAR 2021 API and waveform model: PaSST-S with time embeddings for 30 s: audio up to 30 s runs in one pass."""
from passt_hear.variants import Variant, get_model_passt, get_scene_embeddings, get_timestamp_embeddings

VARIANT = Variant("passt_s_f128_30sec_p16_s10_ap473", scene_hop_seconds=10.0)
load_model = VARIANT.load_model
get_basic_model = VARIANT.get_basic_model

__all__ = ["VARIANT", "load_model", "get_basic_model", "get_model_passt", "get_scene_embeddings",
           "get_timestamp_embeddings"]
