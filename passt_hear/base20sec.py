"""HEAR 2021 API and waveform model: PaSST-S with time embeddings for 20 s: audio up to 20 s runs in one pass."""
from passt_hear.variants import Variant, get_model_passt, get_scene_embeddings, get_timestamp_embeddings

VARIANT = Variant("passt_s_f128_20sec_p16_s10_ap474", scene_hop_seconds=5.0)
load_model = VARIANT.load_model
get_basic_model = VARIANT.get_basic_model

__all__ = ["VARIANT", "load_model", "get_basic_model", "get_model_passt", "get_scene_embeddings",
           "get_timestamp_embeddings"]
