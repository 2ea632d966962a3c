"""HEAR 2021 API and waveform model: STFT hop 100, timestamps from 160 + 800 ms windows + 6 mel frames."""
from passt_hear.variants import Variant, get_model_passt, get_scene_embeddings, get_timestamp_embeddings

VARIANT = Variant("passt_s_swa_f128_stfthop100_p16_s10_ap473", scene_hop_seconds=2.5,
                  timestamp_windows_ms=(160.0, 800.0), timestamp_mel_frames=6)
load_model = VARIANT.load_model
get_basic_model = VARIANT.get_basic_model

__all__ = ["VARIANT", "load_model", "get_basic_model", "get_model_passt", "get_scene_embeddings",
           "get_timestamp_embeddings"]
