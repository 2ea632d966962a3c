"""HEAR 2021 API and waveform model: PaSST-U fine-tuned on OpenMIC-2018 (20 instrument logits + 768-d embedding)."""
from passt_hear.variants import Variant, get_model_passt, get_scene_embeddings, get_timestamp_embeddings

VARIANT = Variant("openmic2008_passt_u_f128_p16_s10_ap85_swa", scene_hop_seconds=2.5)
load_model = VARIANT.load_model
get_basic_model = VARIANT.get_basic_model

__all__ = ["VARIANT", "load_model", "get_basic_model", "get_model_passt", "get_scene_embeddings",
           "get_timestamp_embeddings"]
