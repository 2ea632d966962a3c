"""PaSST on AudioSet: train (default command), evaluate_only, model_speed_test, test_loaders, preload_mp3.

    python ex_audioset.py with trainer.precision=16-mixed models.net.arch=passt_deit_bd_p16_384 -c "PaSST base"
    DDP=2 python ex_audioset.py with ...                      # 2 processes (GPUs, or CPU with gloo)
    python ex_audioset.py evaluate_only with passt_s_swa_p16_s16_128_ap473
    python ex_audioset.py with demo                           # tiny model on generated data (scripts/demo.sh)

Config: top level = optimisation, mixup, SWA, schedule; basedataset.* = files and augmentation;
datasets.training/test.* = loaders; models.mel.* = AugmentMelSTFT; models.net.* = models.passt.get_model
(arch_list: ensemble); trainer.* = Lightning Trainer arguments. `print_config` shows all of it.
"""

from sacred import Experiment, Ingredient

import audioset.dataset as audioset
from config_updates import add_configs
from helpers import experiment
from helpers.config_checks import check_config
from helpers.tasks import MultiLabel

basedataset = Ingredient("basedataset")
ex = Experiment("audioset", ingredients=[basedataset])
add_configs(ex, with_demo=True)
TASK = MultiLabel()


basedataset.config(experiment.common_dataset_config)


# AudioSet's files (audioset/README.md) and what differs from helpers.experiment.common_dataset_config
# (which sets base_dir and the augmentation defaults):
@basedataset.config
def dataset_config(base_dir):
    balanced_train_hdf5 = base_dir + "mp3/" + audioset.BALANCED_TRAIN_FILE
    unbalanced_train_hdf5 = base_dir + "mp3/" + audioset.UNBALANCED_TRAIN_FILE
    eval_hdf5 = base_dir + "mp3/" + audioset.EVAL_FILE
    name = "audioset"
    num_of_classes = audioset.NUM_CLASSES
    sample_weight_offset, sample_weight_sum = 100, True
    epoch_len = 100000  # clips per epoch, drawn with class-balanced weights (full training set)
    sampler_replace = False


ex.config(experiment.common_config)


# What differs for AudioSet from helpers.experiment.common_config:
@ex.config
def default_config():
    wandb = dict(project="passt_audioset2")
    datasets = dict(training=experiment.loader_config(12, 16, dataset="full"),  # full | balanced
                    test=experiment.loader_config(20, 16))
    models = dict(net=dict(arch="passt_deit_bd_p16_384"))


@basedataset.capture
def training_set(balanced_train_hdf5, unbalanced_train_hdf5, num_of_classes, sample_rate, clip_length, in_mem,
                 gain_augment, ir_augment, ir_path, cut_irs_offset, roll, roll_conf, wavmix, _config, dataset="full",
                 seed=0, teachers=None):
    options = dict(classes_num=num_of_classes, sample_rate=sample_rate, clip_length=clip_length, in_mem=in_mem,
                   gain_augment=gain_augment, ir_augment=ir_augment, ir_path=ir_path, cut_irs_offset=cut_irs_offset,
                   roll=roll, roll_conf=roll_conf, wavmix=wavmix, seed=seed, target_extensions=teachers)
    if dataset == "balanced":
        return audioset.get_training_set(balanced_train_hdf5, **options), None
    weights = audioset.get_ft_cls_balanced_sample_weights(balanced_train_hdf5, unbalanced_train_hdf5, num_of_classes,
                                                          _config["sample_weight_offset"], _config["sample_weight_sum"])
    sampler = audioset.get_ft_weighted_sampler(weights, _config["epoch_len"], _config["sampler_replace"], seed=seed)
    return audioset.get_full_training_set(balanced_train_hdf5, unbalanced_train_hdf5, **options), sampler


@basedataset.capture
def test_set(eval_hdf5, num_of_classes, sample_rate, clip_length, in_mem):
    return audioset.get_test_set(eval_hdf5, num_of_classes, sample_rate, clip_length, in_mem)


def training_files(config):
    """The training files in the order the training set concatenates them."""
    files = data_files(full=config["datasets"]["training"]["dataset"] == "full")
    return [files[key] for key in ("basedataset.balanced_train_hdf5", "basedataset.unbalanced_train_hdf5") if key in files]


@basedataset.capture
def data_files(balanced_train_hdf5, unbalanced_train_hdf5, eval_hdf5, training=True, full=True):
    files = {"basedataset.eval_hdf5": eval_hdf5}
    if training:
        files["basedataset.balanced_train_hdf5"] = balanced_train_hdf5
    if training and full:
        files["basedataset.unbalanced_train_hdf5"] = unbalanced_train_hdf5
    return files


def loaders(config, training=True):
    train_cfg, test_cfg = config["datasets"]["training"], config["datasets"]["test"]
    if train_cfg["dataset"] not in ("full", "balanced"):
        raise ValueError(f"datasets.training.dataset={train_cfg['dataset']!r}; allowed: full, balanced")
    test_loader = experiment.evaluation_loader(test_set(), subset=experiment.eval_subset(config),
                                              **experiment.loader_options(test_cfg))
    if not training:
        return None, test_loader
    dataset, sampler = training_set(dataset=train_cfg["dataset"], seed=config["seed"],
                                    teachers=experiment.teacher_targets(config, training_files(config)))
    return experiment.training_loader(dataset, seed=config["seed"], sampler=sampler,  # full: the weighted sampler
                                      shuffle=train_cfg["shuffle"] is not False,  # balanced: shuffled unless False
                                      **experiment.loader_options(train_cfg)), test_loader


def checked(config, training=True, with_files=True):
    files = data_files(training=training, full=config["datasets"]["training"]["dataset"] == "full")
    check_config(config, n_classes=config["basedataset"]["num_of_classes"], training=training,
                 files=files if with_files else None)


experiment.add_standard_commands(ex, TASK, loaders, checked, loader_names=("training", "test"),
                                 train_doc="Train on the training set, validating on the eval set every epoch.",
                                 evaluated_on="the eval set", training_files=training_files,
                                 logits=experiment.LogitsSources(
                                     ("balanced_train_hdf5", "unbalanced_train_hdf5", "eval_hdf5"),
                                     lambda config, path: test_set(eval_hdf5=path)))


@ex.command
def preload_mp3(_config):
    """Read both training files once, front to back (fills a network file cache)."""
    files = data_files()
    print(f"read {audioset.preload_mp3(files['basedataset.balanced_train_hdf5'], files['basedataset.unbalanced_train_hdf5'])} bytes")


if __name__ == "__main__":
    experiment.launch(ex)
