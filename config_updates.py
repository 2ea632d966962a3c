"""Named configs shared by the experiments (`python ex_audioset.py print_named_configs` lists them).

Use them after `with`, e.g. `python ex_audioset.py evaluate_only with ensemble_s16_14`.
"""

from models.registry import ARCHITECTURES

# Upstream's ensembles of AudioSet release models: (arch, fstride, tstride).
ENSEMBLES = {
    "ensemble_s10": [("passt_s_swa_p16_128_ap476", 10, 10), ("passt_s_swa_p16_128_ap4761", 10, 10),
                     ("passt_s_p16_128_ap472", 10, 10)],
    "ensemble_many": [("passt_s_swa_p16_128_ap476", 10, 10), ("passt_s_swa_p16_128_ap4761", 10, 10),
                      ("passt_s_p16_128_ap472", 10, 10), ("passt_s_p16_s12_128_ap470", 12, 12),
                      ("passt_s_swa_p16_s12_128_ap473", 12, 12), ("passt_s_p16_s14_128_ap469", 14, 14),
                      ("passt_s_swa_p16_s14_128_ap471", 14, 14), ("passt_s_swa_p16_s16_128_ap473", 16, 16),
                      ("passt_s_p16_s16_128_ap468", 16, 16)],
    "ensemble_4": [("passt_s_swa_p16_128_ap476", 10, 10), ("passt_s_swa_p16_s12_128_ap473", 12, 12),
                   ("passt_s_swa_p16_s14_128_ap471", 14, 14), ("passt_s_swa_p16_s16_128_ap473", 16, 16)],
    "ensemble_5": [("passt_s_swa_p16_128_ap476", 10, 10), ("passt_s_swa_p16_128_ap4761", 10, 10),
                   ("passt_s_swa_p16_s12_128_ap473", 12, 12), ("passt_s_swa_p16_s14_128_ap471", 14, 14),
                   ("passt_s_swa_p16_s16_128_ap473", 16, 16)],
    "ensemble_s16_14": [("passt_s_swa_p16_s14_128_ap471", 14, 14), ("passt_s_swa_p16_s16_128_ap473", 16, 16)],
}

# Upstream's short names for some release models. Upstream's passt_s_ap4763 names an arch that was never
# released ("passt_s_swa_p16_128_ap4763": upstream stops with "Unknown model"); here it loads the ap.4761
# SWA release, the only other stride-10 SWA model.
RELEASE_ALIASES = {"passt_s_ap476": "passt_s_swa_p16_128_ap476", "passt_s_ap472": "passt_s_p16_128_ap472",
                   "passt_s_ap4763": "passt_s_swa_p16_128_ap4761",
                   "passt_s_20sec": "passt_s_f128_20sec_p16_s10_ap474",
                   "passt_s_30sec": "passt_s_f128_30sec_p16_s10_ap473"}

# Where `kd_ensemble_many` expects the teacher logits: `save_logits with ensemble_many out=teacher_logits/ensemble_many/`
KD_TEACHER_DIR = "teacher_logits/ensemble_many/"

# The demo: a tiny PaSST on the synthetic dataset of audioset/prepare_scripts/make_demo_dataset.py.
DEMO_DATA_DIR = "demo_data/"
DEMO_CLASSES = 10
DEMO_CLIP_SECONDS = 5


def release_model_config(arch_name: str, clip_length_presets: bool = False) -> dict:
    """Config of a release model: its strides, input length and STFT hop, and with `clip_length_presets`
    the clip length of the 20 s / 30 s models (upstream's presets set it, but only FSD50K's training set
    reads it: AudioSet, OpenMIC and ESC-50 keep their clips' length, so these models see 10 s there)."""
    arch = ARCHITECTURES[arch_name]
    config = {"models": {"net": {"arch": arch.name, "pretrained": True, "arch_list": [],
                                 "fstride": arch.stride[0], "tstride": arch.stride[1],
                                 "input_tdim": arch.input_size[1]},
                         "mel": {"hopsize": arch.mel_hopsize}}}
    if clip_length_presets and arch.clip_length != 10:
        config["basedataset"] = {"clip_length": arch.clip_length}
    return config


def _add(ex, name: str, config: dict, doc: str) -> None:
    ex.add_named_config(name, config)
    ex.named_configs[name].__doc__ = doc  # shown by print_named_configs


def add_configs(ex, with_demo: bool = False, clip_length_presets: bool = False) -> None:
    """Register the named configs on `ex`; `with_demo` adds `demo` (AudioSet-format demo data);
    `clip_length_presets`: the 20 s / 30 s presets set `basedataset.clip_length` (see `release_model_config`)."""

    @ex.named_config
    def nomixup():
        """No spectrogram mixup."""
        use_mixup = False  # noqa: F841

    @ex.named_config
    def mixup():
        """Spectrogram mixup with alpha 0.3."""
        use_mixup = True  # noqa: F841
        mixup_alpha = 0.3  # noqa: F841

    @ex.named_config
    def mini_train():
        """Only 5 training and 5 validation batches per epoch (debugging)."""
        trainer = dict(limit_train_batches=5, limit_val_batches=5)  # noqa: F841

    @ex.named_config
    def dynamic_roll():
        """Roll waveforms by up to +-10000 samples."""
        basedataset = dict(roll=True, roll_conf=dict(axis=1, shift_range=10000))  # noqa: F841

    _add(ex, "passt", release_model_config("passt_s_kd_p16_128_ap486"),
         "PaSST-S as upstream's get_model builds it by default: distilled, AudioSet mAP .486")
    for name, arch in ARCHITECTURES.items():
        if name.startswith("passt_s_"):
            _add(ex, name, release_model_config(name, clip_length_presets), arch.description)
    for alias, name in RELEASE_ALIASES.items():
        _add(ex, alias, release_model_config(name, clip_length_presets), f"= {name}")
    for name, members in ENSEMBLES.items():
        _add(ex, name, {"models": {"net": {"arch": name, "arch_list": [list(member) for member in members],
                                           "pretrained": True, "fstride": None, "tstride": None}}},
             f"ensemble of {len(members)} AudioSet release models (strides "
             + ", ".join(sorted({str(member[1]) for member in members})) + ")")
    # knowledge distillation (README "Reproducing a distilled PaSST"): kd.teacher_weight weighs the teacher term
    _add(ex, "kd_efficientat", {"kd": {"teacher_weight": 0.9, "temperature": 1.0}},
         "EfficientAT's distillation recipe: 90% teacher (its kd_lambda=0.1 weighs the labels), temperature 1")
    _add(ex, "kd_ensemble_many", {"kd": {"teacher_logits": KD_TEACHER_DIR, "teacher_weight": 0.9, "temperature": 1.0}},
         f"distil from ensemble_many's stored logits ({KD_TEACHER_DIR}, written by save_logits), 90% teacher")
    _add(ex, "student_depth7", {"models": {"net": {"cut_depth": 5}}},
         "a depth-7 student: blocks 1-5 of the 12 removed (upstream's cut_depth), as PaSST-L")
    _add(ex, "student_s16", {"models": {"net": {"fstride": 16, "tstride": 16, "s_patchout_t": 25, "s_patchout_f": 4}}},
         "a stride-16 PaSST-S student (no patch overlap: 8x62 patches, patchout t 25, f 4)")
    if with_demo:
        _add(ex, "demo", {
            "lr": 1e-3, "weight_decay": 1e-4, "use_mixup": True, "mixup_alpha": 0.3,
            "warm_up_len": 2, "ramp_down_start": 8, "ramp_down_len": 8, "last_lr_value": 0.05,
            "swa": True, "swa_epoch_start": 10, "swa_freq": 1, "speed_test_batch_size": 16,
            "basedataset": {"base_dir": DEMO_DATA_DIR, "num_of_classes": DEMO_CLASSES, "clip_length": DEMO_CLIP_SECONDS,
                            "epoch_len": 240, "wavmix": 0, "roll_conf": {"shift_range": 50}},
            "datasets": {"training": {"batch_size": 16, "num_workers": 1}, "test": {"batch_size": 30, "num_workers": 1}},
            "models": {"net": {"arch": "passt_tiny", "pretrained": False, "n_classes": DEMO_CLASSES,
                               "fstride": 16, "tstride": 16, "input_tdim": 100 * DEMO_CLIP_SECONDS - 2,
                               "s_patchout_t": 6, "s_patchout_f": 2},
                       "mel": {"freqm": 0, "timem": 0}},
            "trainer": {"max_epochs": 16, "accelerator": "cpu", "precision": "32-true", "benchmark": False,
                        "log_every_n_steps": 5},
        }, "tiny PaSST on the generated demo dataset (demo_data/), CPU, 1-2 minutes")
