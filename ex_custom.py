"""PaSST fine-tuned on your own data, prepared by `python -m custom prepare AUDIO_DIR --out custom_data/`
(custom/README.md): train (default; validates on the valid split every epoch, then scores the best
checkpoint on the eval split when there is one), evaluate_only (`evaluate_split=valid|eval`),
model_speed_test, test_loaders. Multi-label data (some clip with other than one label) trains with BCE and
reports mAP (`ap`), single-label data with cross-entropy and accuracy (`acc`). Training takes `clip_length`
seconds at random offsets; evaluation runs whole clips through inference's windows (`eval_windowing`).

    python ex_custom.py with basedataset.base_dir=custom_data/ -c "my sounds"
    python ex_custom.py with basedataset.base_dir=stereo_data/   # prepare --channels 2: a two-channel network
"""

import os

from sacred import Experiment, Ingredient

import custom.dataset as custom
from config_updates import add_configs
from helpers import experiment
from helpers.config_checks import ConfigError, check_config
from helpers.tasks import MultiClass, MultiLabel

basedataset = Ingredient("basedataset")
ex = Experiment("custom", ingredients=[basedataset])
add_configs(ex)
EVALUATE_SPLITS = ("valid", "eval")


basedataset.config(experiment.common_dataset_config)


# The prepared folder (custom/README.md) and what differs from helpers.experiment.common_dataset_config:
@basedataset.config
def dataset_config():
    name = "custom"
    base_dir = "custom_data/"  # the --out folder of `python -m custom prepare`
    train_hdf5 = base_dir + custom.SPLIT_FILES["train"]
    valid_hdf5 = base_dir + custom.SPLIT_FILES["valid"]
    eval_hdf5 = base_dir + custom.SPLIT_FILES["eval"]  # optional (prepare --split ...,0 writes none)
    label_file = base_dir + custom.LABEL_FILE  # the class names, for python -m passt_hear tag --labels
    num_of_classes, multi_label = custom.label_space(base_dir)  # from its dataset.json (None: not prepared)
    channels = custom.prepared_channels(base_dir)  # from its dataset.json (1: not prepared); models.net.in_channels
    random_crop = True  # train on clip_length seconds at a random offset of each clip (False: from its start)
    eval_clip_length = None  # None: evaluate whole clips (batch size 1) | seconds from each clip's start
    wavmix = 0  # waveform mixup of clip pairs (0: off)


ex.config(experiment.common_config)


# What differs for your own data from helpers.experiment.common_config:
@ex.config
def default_config(basedataset):
    lr = 1e-5
    ramp_down_start, ramp_down_len = 10, 10
    swa_epoch_start, swa_freq = 10, 2
    eval_windowing = True  # evaluation clips longer than the network takes: inference's windows, mean logits
    evaluate_split = "valid"  # what evaluate_only scores: valid | eval
    wandb = dict(project="passt_custom")
    datasets = dict(training=experiment.loader_config(12, 8, shuffle=True), valid=experiment.loader_config(1, 4),
                    eval=experiment.loader_config(1, 4))
    # masks and patchout scale with the training crop (at 10 s: 2 s of time mask, 20 of ~99 time columns)
    models = dict(mel=dict(timem=int(20 * basedataset["clip_length"])),
                  net=dict(n_classes=basedataset["num_of_classes"], s_patchout_t=int(2 * basedataset["clip_length"]),
                           in_channels=basedataset["channels"]))  # in_channels=1 would mono-mix stereo data
    trainer = dict(max_epochs=30)


def task_of(config):
    """BCE and mAP for multi-label data, cross-entropy and accuracy for single-label data."""
    return MultiLabel() if config["basedataset"]["multi_label"] else MultiClass()


@basedataset.capture
def training_set(train_hdf5, num_of_classes, sample_rate, clip_length, random_crop, in_mem, gain_augment,
                 ir_augment, ir_path, cut_irs_offset, roll, roll_conf, wavmix, channels=1, seed=0, teachers=None):
    return custom.get_training_set(train_hdf5, num_of_classes, clip_length, random_crop, channels, roll=roll,
                                   roll_conf=roll_conf, wavmix=wavmix, sample_rate=sample_rate, in_mem=in_mem,
                                   gain_augment=gain_augment, ir_augment=ir_augment, ir_path=ir_path,
                                   cut_irs_offset=cut_irs_offset, seed=seed, target_extensions=teachers)


@basedataset.capture
def evaluation_set(split, valid_hdf5, eval_hdf5, num_of_classes, eval_clip_length, sample_rate, in_mem, channels=1):
    path = valid_hdf5 if split == "valid" else eval_hdf5
    return custom.get_evaluation_set(path, num_of_classes, eval_clip_length, channels, sample_rate, in_mem)


@basedataset.capture
def data_files(train_hdf5, valid_hdf5, eval_hdf5, split="valid", training=True):
    files = {f"basedataset.{split}_hdf5": valid_hdf5 if split == "valid" else eval_hdf5}
    if training:
        files["basedataset.train_hdf5"] = train_hdf5
    return files


def training_files(config):
    return [config["basedataset"]["train_hdf5"]]


def loaders(config, training=True):
    """(training loader, {"valid_": ...}[, {"eval_": ...} for the best checkpoint when an eval split exists]);
    without `training`, (None, the `evaluate_split` loader)."""
    cfg, channels = config["datasets"], config["models"]["net"]["in_channels"]

    scored = "eval" if training else config["evaluate_split"]  # the split basedataset.eval_subset restricts

    def evaluation_loader(split):
        return {split + "_": experiment.evaluation_loader(evaluation_set(split, channels=channels),
                                                          subset=experiment.eval_subset(config) if split == scored
                                                          else None,
                                                          **experiment.loader_options(cfg[split]))}

    if not training:
        return None, evaluation_loader(config["evaluate_split"])
    activation = "sigmoid" if config["basedataset"]["multi_label"] else "softmax"
    teachers = experiment.teacher_targets(config, training_files(config), activation)
    train_loader = experiment.training_loader(training_set(channels=channels, seed=config["seed"], teachers=teachers),
                                              seed=config["seed"], shuffle=bool(cfg["training"]["shuffle"]),
                                              **experiment.loader_options(cfg["training"]))
    if not os.path.isfile(config["basedataset"]["eval_hdf5"]):
        return train_loader, evaluation_loader("valid")
    return train_loader, evaluation_loader("valid"), evaluation_loader("eval")


def checked(config, training=True, with_files=True):
    dataset = config["basedataset"]
    if dataset["num_of_classes"] is None and (with_files or config["models"]["net"]["n_classes"] is None):
        raise ConfigError(f"invalid config:\n  basedataset.base_dir: {dataset['base_dir']!r} holds no prepared "
                          f"dataset ({custom.INFO_FILE}); run `python -m custom prepare AUDIO_DIR --out "
                          f"{dataset['base_dir']}`")
    if dataset["eval_clip_length"] is None and any(config["datasets"][split]["batch_size"] != 1
                                                   for split in EVALUATE_SPLITS):
        raise ConfigError("invalid config:\n  datasets.valid/eval.batch_size: whole clips of any length "
                          "(basedataset.eval_clip_length=None) need batch size 1; allowed: 1, or set eval_clip_length")
    split = "valid" if training else config["evaluate_split"]
    check_config(config, n_classes=dataset["num_of_classes"], training=training,
                 choices={"evaluate_split": EVALUATE_SPLITS},
                 files=data_files(split=split, training=training) if with_files else None)


experiment.add_standard_commands(ex, task_of, loaders, checked, loader_names=("training", "validation", "evaluation"),
                                 train_doc="Train, validating on the valid split every epoch; the best checkpoint "
                                           "is then scored on the eval split (when the folder has one).",
                                 evaluated_on="the valid split (evaluate_split=eval: the eval split)",
                                 training_files=training_files,
                                 logits=experiment.LogitsSources(
                                     ("train_hdf5", "valid_hdf5", "eval_hdf5"),
                                     lambda config, path: evaluation_set(  # any file, cut as evaluation does
                                         "valid", valid_hdf5=path, channels=config["models"]["net"]["in_channels"]),
                                     loader="eval"))


if __name__ == "__main__":
    experiment.launch(ex)
