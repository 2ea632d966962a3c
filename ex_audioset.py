"""PaSST on AudioSet: train (default command), evaluate_only, model_speed_test, test_loaders, save_logits,
preload_mp3.

    python ex_audioset.py with trainer.precision=16-mixed models.net.arch=passt_deit_bd_p16_384 -c "PaSST base"
    DDP=2 python ex_audioset.py with ...                      # 2 processes (GPUs, or CPU with gloo)
    python ex_audioset.py evaluate_only with passt_s_swa_p16_s16_128_ap473
    python ex_audioset.py with demo                           # tiny model on generated data (scripts/demo.sh)

`print_config` shows every key with its meaning; README's Configs section lists them with their allowed values.
"""

import audioset.dataset as audioset
from config_updates import add_configs
from helpers import experiment
from helpers.common_config import loader_config
from helpers.config_keys import Key, OneOf
from helpers.experiment import DatasetSpec, Split, in_base_dir
from helpers.tasks import MultiLabel


def training_files(config):
    """The balanced file, then (datasets.training.dataset=full) the unbalanced one."""
    full = config["datasets"]["training"]["dataset"] == "full"
    return ("balanced_train_hdf5", "unbalanced_train_hdf5") if full else ("balanced_train_hdf5",)


def training_set(config, options):
    """The balanced set, shuffled; or the full set with upstream's class-balanced weighted sampler."""
    dataset, files = config["basedataset"], [config["basedataset"][key] for key in training_files(config)]
    if len(files) == 1:
        return audioset.training_set(files, options, dataset["num_of_classes"])
    weights = audioset.get_ft_cls_balanced_sample_weights(*files, dataset["num_of_classes"],
                                                          dataset["sample_weight_offset"], dataset["sample_weight_sum"])
    sampler = audioset.get_ft_weighted_sampler(weights, dataset["epoch_len"], dataset["sampler_replace"],
                                               seed=options.seed)
    return audioset.training_set(files, options, dataset["num_of_classes"]), sampler


EVAL = Split("eval_hdf5", loader="test")
SPEC = DatasetSpec(
    name="audioset", task=MultiLabel(), n_classes=lambda config: config["basedataset"]["num_of_classes"],
    dataset_keys=(
        Key("balanced_train_hdf5", in_base_dir("mp3/" + audioset.BALANCED_TRAIN_FILE), "the balanced training set"),
        Key("unbalanced_train_hdf5", in_base_dir("mp3/" + audioset.UNBALANCED_TRAIN_FILE), "the unbalanced set"),
        Key("eval_hdf5", in_base_dir("mp3/" + audioset.EVAL_FILE), "the evaluation set"),
        Key("name", "audioset", "the dataset's name"),
        Key("num_of_classes", audioset.NUM_CLASSES, "classes of the targets"),
        Key("sample_weight_offset", 100, "class-balanced weights: 1000 / (class count + offset)"),
        Key("sample_weight_sum", True, "a clip's weight: the sum (True) or the max over its labels"),
        Key("epoch_len", 100000, "clips per epoch, drawn with class-balanced weights (full training set)"),
        Key("sampler_replace", False, "draw the epoch with replacement"),
    ),
    keys=(Key("datasets.training.dataset", "full", "full: balanced + unbalanced with the weighted sampler | "
              "balanced: the balanced set, shuffled", OneOf("full", "balanced")),),
    overrides={"wandb": {"project": "passt_audioset2"}, "models": {"net": {"arch": "passt_deit_bd_p16_384"}},
               "datasets": {"training": loader_config(12, 16, dataset="full"), "test": loader_config(20, 16)}},
    training_files=training_files, training_set=training_set,
    evaluation_set=lambda config, path, options, whole_file: audioset.evaluation_set(
        path, options, config["basedataset"]["num_of_classes"]),
    validation=lambda config: [EVAL], evaluated=lambda config: [EVAL],
    logits_files=("balanced_train_hdf5", "unbalanced_train_hdf5", "eval_hdf5"), logits_loader="test",
    train_doc="Train on the training set, validating on the eval set every epoch.", evaluated_on="the eval set")

ex = experiment.build_experiment(SPEC)
add_configs(ex, with_demo=True)


@ex.command
def preload_mp3(_config):
    """Read both training files once, front to back (fills a network file cache)."""
    dataset = _config["basedataset"]
    print(f"read {audioset.preload_mp3(dataset['balanced_train_hdf5'], dataset['unbalanced_train_hdf5'])} bytes")


if __name__ == "__main__":
    experiment.launch(ex)
