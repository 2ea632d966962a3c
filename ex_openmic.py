"""PaSST fine-tuned on OpenMIC-2018 (20 instruments, partially labelled): train (default), evaluate_only,
model_speed_test, test_loaders. Loss and metrics use only the known labels (the mask in the targets): the
loss as upstream (`openmic_loss=batch`) or normalised per clip (`openmic_loss=per_clip`).

    python ex_openmic.py with trainer.precision=16-mixed -c "OpenMIC PaSST"
    DDP=2 python ex_openmic.py with ...
"""

from sacred import Experiment, Ingredient

import openmic.dataset as openmic
from config_updates import add_configs
from helpers import experiment
from helpers.config_checks import check_config
from helpers.tasks import MaskedMultiLabel

basedataset = Ingredient("basedataset")
ex = Experiment("openmic", ingredients=[basedataset])
add_configs(ex)


def task(config) -> MaskedMultiLabel:
    return MaskedMultiLabel(openmic.NUM_INSTRUMENTS, config["openmic_loss"])


basedataset.config(experiment.common_dataset_config)


# OpenMIC's files (openmic/README.md); base_dir and the augmentation defaults are
# helpers.experiment.common_dataset_config's.
@basedataset.config
def dataset_config(base_dir):
    name = "openmic2008"
    openmic_train_hdf5 = base_dir + "mp3/" + openmic.TRAIN_FILE
    openmic_test_hdf5 = base_dir + "mp3/" + openmic.TEST_FILE
    num_of_classes = openmic.NUM_INSTRUMENTS


ex.config(experiment.common_config)


# What differs for OpenMIC from helpers.experiment.common_config:
@ex.config
def default_config():
    lr = 1e-5
    # batch: upstream's mean(mask * BCE) over batch x labels, first clip's mask under mixup (waveform mixup mixes
    # labels and mask) | per_clip: each clip over its known labels, a label known in a mix if known in either clip
    openmic_loss = "batch"
    swa_epoch_start, swa_freq = 2, 1
    compile = False  # upstream fine-tunes eagerly
    wandb = dict(project="passt_openmic")
    datasets = dict(training=experiment.loader_config(6, 16),  # shuffle None: file order, as upstream
                    test=experiment.loader_config(20, 16))
    models = dict(net=dict(n_classes=openmic.NUM_INSTRUMENTS))
    trainer = dict(max_epochs=10, precision="32-true")  # upstream fine-tunes in 32 bit


@basedataset.capture
def training_set(openmic_train_hdf5, sample_rate, clip_length, in_mem, gain_augment, ir_augment, ir_path,
                 cut_irs_offset, roll, roll_conf, wavmix, known_label_mixup=False, seed=0, teachers=None):
    return openmic.get_training_set(openmic_train_hdf5, roll=roll, roll_conf=roll_conf, wavmix=wavmix,
                                    target_extensions=teachers,
                                    known_label_mixup=known_label_mixup, sample_rate=sample_rate,
                                    clip_length=clip_length, in_mem=in_mem, gain_augment=gain_augment,
                                    ir_augment=ir_augment, ir_path=ir_path, cut_irs_offset=cut_irs_offset, seed=seed)


@basedataset.capture
def test_set(openmic_test_hdf5, sample_rate, clip_length, in_mem):
    return openmic.get_test_set(openmic_test_hdf5, sample_rate, clip_length, in_mem)


@basedataset.capture
def data_files(openmic_train_hdf5, openmic_test_hdf5, training=True):
    files = {"basedataset.openmic_test_hdf5": openmic_test_hdf5}
    if training:
        files["basedataset.openmic_train_hdf5"] = openmic_train_hdf5
    return files


def training_files(config):
    return [data_files()["basedataset.openmic_train_hdf5"]]


def loaders(config, training=True):
    known_label_mixup = config["openmic_loss"] == "per_clip"
    return experiment.train_and_test_loaders(
        config, training, lambda seed: training_set(
            known_label_mixup=known_label_mixup, seed=seed,
            teachers=experiment.teacher_targets(config, training_files(config))), test_set)


def checked(config, training=True, with_files=True):
    check_config(config, n_classes=openmic.NUM_INSTRUMENTS, training=training,
                 choices={"openmic_loss": MaskedMultiLabel.NORMALIZATIONS},
                 files=data_files(training=training) if with_files else None)


experiment.add_standard_commands(ex, task, loaders, checked, loader_names=("training", "test"),
                                 train_doc="Train on the OpenMIC training split, validating on the test split every "
                                           "epoch.",
                                 evaluated_on="the test split", training_files=training_files,
                                 logits=experiment.LogitsSources(
                                     ("openmic_train_hdf5", "openmic_test_hdf5"),
                                     lambda config, path: test_set(openmic_test_hdf5=path)))


if __name__ == "__main__":
    experiment.launch(ex)
