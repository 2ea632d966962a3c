"""HEAR 2021 API and waveform model: the STFT-hop-100 model; timestamp embeddings from 160 ms and 800 ms windows."""
from passt_hear.variants import Variant, get_model_passt, get_scene_embeddings, get_timestamp_embeddings

VARIANT = Variant("passt_s_swa_f128_stfthop100_p16_s10_ap473", scene_hop_seconds=2.5,
                  timestamp_windows_ms=(160.0, 800.0))
load_model = VARIANT.load_model
get_basic_model = VARIANT.get_basic_model

__all__ = ["VARIANT", "load_model", "get_basic_model", "get_model_passt", "get_scene_embeddings",
           "get_timestamp_embeddings"]
