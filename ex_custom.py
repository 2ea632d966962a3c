"""PaSST fine-tuned on your own data, prepared by `python -m custom prepare AUDIO_DIR --out custom_data/`
(custom/README.md). Multi-label data: BCE and mAP (`ap`); single-label: cross-entropy and accuracy (`acc`);
strong labels (`prepare --events`): a frame-level model scored by PSDS (`helpers.sed`). Training takes
`clip_length` s at random offsets; evaluation runs whole clips through inference's windows (`eval_windowing`).
Commands: train, evaluate_only (`evaluate_split=valid|eval`), model_speed_test, test_loaders, save_logits.

    python ex_custom.py with basedataset.base_dir=custom_data/ -c "my sounds"
    python ex_custom.py with basedataset.base_dir=stereo_data/   # prepare --channels 2: a two-channel network
"""

import os

import custom.dataset as custom
from config_updates import add_configs
from helpers import experiment
from helpers.common_config import loader_config
from helpers.config_keys import Derived, Key, OneOf
from helpers.experiment import DatasetSpec, Split, from_basedataset, in_base_dir
from helpers.sed import FRAME_NET_OVERRIDES, SED_KEYS, detection_task, strong_label_keys
from helpers.tasks import MultiClass, MultiLabel


def prepared(read):  # a default read from base_dir's dataset.json
    return Derived(lambda config: read(config["base_dir"]), "from base_dir's dataset.json")


def channels(config, options):  # the network's input channels (in_channels=1 mono-mixes stereo data)
    return options.replace(channels=config["models"]["net"]["in_channels"])


SPEC = DatasetSpec(
    name="custom", n_classes=lambda config: config["basedataset"]["num_of_classes"],
    task=lambda config: detection_task(  # strong labels (prepare --events): frame-level detection
        config, MultiLabel() if config["basedataset"]["multi_label"] else MultiClass(),
        config["basedataset"]["num_of_classes"], custom.prepared_value(config["basedataset"]["base_dir"], "classes", None)),
    dataset_keys=(
        Key("train_hdf5", in_base_dir(custom.SPLIT_FILES["train"]), "the training split"),
        Key("valid_hdf5", in_base_dir(custom.SPLIT_FILES["valid"]), "the validation split"),
        Key("eval_hdf5", in_base_dir(custom.SPLIT_FILES["eval"]), "the evaluation split (optional: prepare "
            "--split ...,0 writes none)"),
        Key("label_file", in_base_dir(custom.LABEL_FILE), "the class names, for python -m passt_hear tag --labels"),
        Key("name", "custom", "the dataset's name"),
        Key("num_of_classes", prepared(lambda base_dir: custom.label_space(base_dir)[0]), "None: not prepared"),
        Key("multi_label", prepared(lambda base_dir: custom.label_space(base_dir)[1]), "BCE + mAP or CE + accuracy"),
        Key("channels", prepared(custom.prepared_channels), "channels of the prepared mp3s (1: not prepared)"),
        Key("random_crop", True, "train on clip_length seconds at a random offset of each clip (False: from its "
            "start)"),
        *strong_label_keys(prepared(lambda base_dir: custom.prepared_value(base_dir, "strong", False))),
        Key("eval_clip_length", Derived(lambda data: data["clip_length"] if data["strong"] else None, "clip_length "
            "with strong labels, else None"), "None: evaluate whole clips (batch size 1) | seconds from each start"),
    ),
    dataset_overrides={"base_dir": "custom_data/",  # the --out folder of `python -m custom prepare`
                       "wavmix": 0},
    keys=(
        Key("eval_windowing", from_basedataset(lambda data: not data["strong"], "not strong"), "evaluation clips "
            "longer than the network takes: inference's windows, mean logits"),
        *SED_KEYS,
        Key("evaluate_split", "valid", "what evaluate_only scores: valid | eval", OneOf("valid", "eval")),
    ),
    overrides={"lr": 1e-5, "ramp_down_start": 10, "ramp_down_len": 10, "swa_epoch_start": 10, "swa_freq": 2,
               "wandb": {"project": "passt_custom"},
               "datasets": {"training": loader_config(12, 8, shuffle=True), "valid": loader_config(1, 4),
                            "eval": loader_config(1, 4)},
               # masks and patchout scale with the training crop (at 10 s: 2 s of time mask, 20 of ~99 time columns)
               "models": {"mel": {"timem": from_basedataset(lambda dataset: int(20 * dataset["clip_length"]),
                                                        "20 * clip_length")},
                          "net": {"n_classes": from_basedataset(lambda data: data["num_of_classes"], "num_of_classes"),
                                  "s_patchout_t": from_basedataset(lambda data: 0 if data["strong"] else
                                                                   int(2 * data["clip_length"]), "2 * clip_length"),
                                  **FRAME_NET_OVERRIDES,
                                  "in_channels": from_basedataset(lambda data: data["channels"], "channels")}},
               "trainer": {"max_epochs": 30}},
    training_files=lambda config: ("train_hdf5",),
    training_set=lambda config, options: custom.training_set(
        config["basedataset"]["train_hdf5"], config["basedataset"]["num_of_classes"], channels(config, options)),
    evaluation_set=lambda config, path, options, whole_file: custom.evaluation_set(  # whole clips, or the first
        path, config["basedataset"]["num_of_classes"],  # eval_clip_length seconds
        channels(config, options).replace(clip_length=config["basedataset"]["eval_clip_length"])),
    validation=lambda config: [Split("valid_hdf5", "valid", "valid_", restricted=False)],
    after_training=lambda config: [Split("eval_hdf5", "eval", "eval_")]
    if os.path.isfile(config["basedataset"]["eval_hdf5"]) else [],
    evaluated=lambda config: [Split(f"{config['evaluate_split']}_hdf5", config["evaluate_split"],
                                    config["evaluate_split"] + "_")],
    logits_files=("train_hdf5", "valid_hdf5", "eval_hdf5"), logits_loader="eval",
    teacher_activation=lambda config: "sigmoid" if config["basedataset"]["multi_label"] else "softmax",
    check=custom.config_problems, train_doc="Train, validating on the valid split every epoch; the best checkpoint is then scored on "
                           "the eval split (when the folder has one).",
    evaluated_on="the valid split (evaluate_split=eval: the eval split)")

ex = experiment.build_experiment(SPEC)
add_configs(ex)

if __name__ == "__main__":
    experiment.launch(ex)
