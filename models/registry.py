"""The table of PaSST architectures: sizes, strides, input size and release weights, as data.

Every name that upstream's ``get_model`` accepts is here, with the sizes that make its release checkpoint load
strictly. ``get_arch`` is the only way in; an unknown name is an error listing the valid ones.
"""
from dataclasses import dataclass
from types import MappingProxyType
from typing import Optional, Tuple

RELEASES = "https://github.com/kkoutini/PaSST/releases/download/"
DEIT_BASE_DISTILLED_384 = "https://dl.fbaipublicfiles.com/deit/deit_base_distilled_patch16_384-d0272ac0.pth"


@dataclass(frozen=True)
class Arch:
    """One architecture.

    ``stride`` and ``input_size`` are what the release weights were trained with; they fix the shapes of the
    frequency/time positional embeddings (``input_size // stride``). ``weights`` is ``"audioset"`` for PaSST
    release checkpoints (same key layout as this model), ``"imagenet"`` for DeiT weights that are adapted to
    audio on load, ``None`` for architectures without weights. ``mel_hopsize`` and ``clip_length`` are the
    frontend settings the weights expect. ``frame_head`` ("linear" | "bigru") makes it a frame-level model
    (``models.passt.FramePaSST``).
    """
    name: str
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    patch_size: int = 16
    stride: Tuple[int, int] = (10, 10)
    input_size: Tuple[int, int] = (128, 998)
    n_classes: int = 527
    distilled: bool = True
    url: Optional[str] = None
    weights: Optional[str] = "audioset"
    mel_hopsize: int = 320
    clip_length: int = 10
    frame_head: Optional[str] = None
    description: str = ""


def _release(name, path, **kwargs):
    return Arch(name=name, url=RELEASES + path, **kwargs)


_ARCHS = [
    Arch("passt_deit_bd_p16_384", url=DEIT_BASE_DISTILLED_384, weights="imagenet", n_classes=1000,
         description="PaSST-B from ImageNet DeiT-B distilled 384 weights (the paper's starting point)"),
    _release("passt_s_swa_p16_128_ap476", "v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt",
             description="PaSST-S, stride 10, SWA, AudioSet mAP .476"),
    _release("passt_s_swa_p16_128_ap4761", "v0.0.2-audioset/passt-s-f128-p16-s10-ap.4761-swa.pt",
             description="PaSST-S, stride 10, SWA, AudioSet mAP .4761"),
    _release("passt_s_p16_128_ap472", "v0.0.2-audioset/passt-s-f128-p16-s10-ap.472.pt",
             description="PaSST-S, stride 10, AudioSet mAP .472"),
    _release("passt_s_kd_p16_128_ap486", "v.0.0.9/passt-s-kd-ap.486.pt",
             description="PaSST-S with knowledge distillation, AudioSet mAP .486"),
    _release("passt_l_kd_p16_128_ap47", "v.0.0.10/passt-l-kd-ap.47.pt", depth=7,
             description="PaSST-L (light, depth 7) with knowledge distillation, AudioSet mAP .47"),
    _release("passt_s_swa_p16_s12_128_ap473", "v0.0.2-audioset/passt-s-f128-p16-s12-ap.473-swa.pt",
             stride=(12, 12), description="PaSST-S, stride 12, SWA, AudioSet mAP .473"),
    _release("passt_s_p16_s12_128_ap470", "v0.0.2-audioset/passt-s-f128-p16-s12-ap.470.pt",
             stride=(12, 12), description="PaSST-S, stride 12, AudioSet mAP .470"),
    _release("passt_s_swa_p16_s14_128_ap471", "v0.0.2-audioset/passt-s-f128-p16-s14-ap.471-swa.pt",
             stride=(14, 14), description="PaSST-S, stride 14, SWA, AudioSet mAP .471"),
    _release("passt_s_p16_s14_128_ap469", "v0.0.2-audioset/passt-s-f128-p16-s14-ap.469.pt",
             stride=(14, 14), description="PaSST-S, stride 14, AudioSet mAP .469"),
    _release("passt_b_f128_p16_s16_ap_459", "v.0.0.7-audioset/passt-b-f128-p16-s16-ap.459.pt", stride=(16, 16),
             description="PaSST-B: trained without patchout, stride 16 (as its file name says), AudioSet mAP .459"),
    _release("passt_u600_f128_p16_s16_ap_460", "v.0.0.7-audioset/passt-u600-f128-p16-s16-ap.460.pt",
             stride=(16, 16), description="PaSST-U600: trained with unstructured patchout of 600 patches, stride 16 "
                                          "(as its file name says), AudioSet mAP .460"),
    _release("passt_s_swa_p16_s16_128_ap473", "v0.0.2-audioset/passt-s-f128-p16-s16-ap.473-swa.pt",
             stride=(16, 16), description="PaSST-S-N (no overlap), stride 16, SWA, AudioSet mAP .473"),
    _release("passt_s_p16_s16_128_ap468", "v0.0.2-audioset/passt-s-f128-p16-s16-ap.468.pt",
             stride=(16, 16), description="PaSST-S-N (no overlap), stride 16, AudioSet mAP .468"),
    _release("passt_s_f128_20sec_p16_s10_ap474", "v0.0.5/passt-s-f128-20sec-p16-s10-ap.474-swa.pt",
             input_size=(128, 2000), clip_length=20,
             description="PaSST-S with time embeddings for 20 s clips, SWA, AudioSet mAP .474"),
    _release("passt_s_f128_30sec_p16_s10_ap473", "v0.0.5/passt-s-f128-30sec-p16-s10-ap.473-swa.pt",
             input_size=(128, 3000), clip_length=30,
             description="PaSST-S with time embeddings for 30 s clips, SWA, AudioSet mAP .473"),
    _release("passt_s_swa_f128_stfthop100_p16_s10_ap473",
             "v0.0.3-audioset/passt-s-f128-stfthop100-p16-s10-ap.473-swa.pt", input_size=(128, 3200),
             mel_hopsize=100, description="PaSST-S on mel frames with STFT hop 100, SWA, AudioSet mAP .473"),
    _release("passt_s_swa_f128_stfthop160_p16_s10_ap473",
             "v0.0.3-audioset/passt-s-f128-stfthop160-p16-s10-ap.473-swa.pt", input_size=(128, 2000),
             mel_hopsize=160, description="PaSST-S on mel frames with STFT hop 160, SWA, AudioSet mAP .473"),
    _release("openmic2008_passt_u_f128_p16_s10_ap85_swa",
             "v0.0.4-openmic/openmic2008.passt-u-f128-p16-s10-ap.85-swa.pt", n_classes=20,
             description="PaSST-U fine-tuned on OpenMIC-2018 (20 instruments), SWA, mAP .85"),
    _release("openmic2008_passt_u_f128_p16_s10_ap85",
             "v0.0.4-openmic/openmic2008.passt-u-f128-p16-s10-ap.85.pt", n_classes=20,
             description="PaSST-U fine-tuned on OpenMIC-2018 (20 instruments), mAP .85"),
    _release("openmic_passt_s_f128_10sec_p16_s10_ap85", "v0.0.5/openmic-passt-s-f128-10sec-p16-s10-ap.85.pt",
             n_classes=20, description="PaSST-S fine-tuned on OpenMIC-2018 (20 instruments), mAP .85: "
                                       "hear21passt's 'openmic'"),
    _release("fsd50k_passt_s_f128_p16_s10_ap655", "v0.0.5/fsd50k-passt-s-f128-p16-s10-ap.655.pt",
             n_classes=200, input_size=(128, 2000), clip_length=20,
             description="PaSST-S fine-tuned on FSD50K (200 classes), mAP .655"),
    _release("fsd50k_passt_s_n_f128_p16_s16_ap642", "v0.0.5/fsd50k-passt-s-n-f128-p16-s16-ap.642.pt",
             n_classes=200, input_size=(128, 2000), stride=(16, 16), clip_length=20,
             description="PaSST-S-N fine-tuned on FSD50K (200 classes), mAP .642"),
    Arch("fpasst_s_p16_s10_128", url=RELEASES + "v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt",
         frame_head="linear", description="frame-level PaSST-S (sound event detection, 40 ms frames) from the "
                                          "PaSST-S SWA weights; its frame head starts fresh"),
    Arch("fpasst_tiny", embed_dim=96, depth=4, num_heads=3, weights=None, frame_head="linear",
         description="tiny frame-level PaSST for CPU work and tests (no weights)"),
    Arch("passt_tiny", embed_dim=96, depth=4, num_heads=3, weights=None,
         description="tiny PaSST for CPU work and tests (no weights)"),
    Arch("passt_mini", embed_dim=192, depth=6, num_heads=3, weights=None,
         description="small PaSST for CPU work (no weights)"),
]

ARCHITECTURES = MappingProxyType({arch.name: arch for arch in _ARCHS})

# The names of the hear21passt inference package (0.0.26), its ``get_model`` short names and its weight names,
# each for the same release file as there. Its openmic2008 module asks for "openmic2008", a name its get_model
# does not know; here that name is the OpenMIC PaSST-U.
ALIASES = MappingProxyType({
    "passt_20sec": "passt_s_f128_20sec_p16_s10_ap474",
    "passt-s-f128-20sec-p16-s10-ap474-swa": "passt_s_f128_20sec_p16_s10_ap474",
    "passt_30sec": "passt_s_f128_30sec_p16_s10_ap473",
    "passt-s-f128-30sec-p16-s10-ap473-swa": "passt_s_f128_30sec_p16_s10_ap473",
    "stfthop100": "passt_s_swa_f128_stfthop100_p16_s10_ap473",
    "stfthop160": "passt_s_swa_f128_stfthop160_p16_s10_ap473",
    "openmic": "openmic_passt_s_f128_10sec_p16_s10_ap85",
    "openmic2008": "openmic2008_passt_u_f128_p16_s10_ap85_swa",
    "fsd50k": "fsd50k_passt_s_f128_p16_s10_ap655",
    "fsd50k-n": "fsd50k_passt_s_n_f128_p16_s16_ap642",
})


def get_arch(name: str) -> Arch:
    """The registered architecture called ``name`` (or one of its aliases)."""
    name = ALIASES.get(name, name)
    try:
        return ARCHITECTURES[name]
    except KeyError:
        valid = ", ".join(sorted(ARCHITECTURES)) + "; aliases: " + ", ".join(sorted(ALIASES))
        raise ValueError(f"unknown PaSST architecture {name!r}; valid names: {valid}") from None
