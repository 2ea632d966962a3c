"""PaSST fine-tuned on ESC-50 (50 classes, 5 folds; train on four, test on `basedataset.fold`): train
(default), evaluate_only, model_speed_test, test_loaders. Cross-entropy loss, metric `acc`.

    python ex_esc50.py with basedataset.fold=3 trainer.precision=16-mixed -c "ESC-50 fold 3"
"""

import os

from sacred import Experiment, Ingredient

import esc50.dataset as esc50
from esc50.prepare_scripts.create_h5pymp3_dataset import ensure_esc50_hdf5
from config_updates import add_configs
from helpers import experiment
from helpers.config_checks import check_config
from helpers.tasks import MultiClass

basedataset = Ingredient("basedataset")
ex = Experiment("esc50", ingredients=[basedataset])
add_configs(ex)
TASK = MultiClass()


basedataset.config(experiment.common_dataset_config)


# ESC-50's file (esc50/README.md) and what differs from helpers.experiment.common_dataset_config
# (which sets base_dir and the augmentation defaults):
@basedataset.config
def dataset_config(base_dir):
    name = "esc50"
    esc50_hdf5 = base_dir + "mp3/" + esc50.DATA_FILE
    # upstream's layout (its base_dir audioset_hdf5s/esc50/): converted into esc50_hdf5 on first use if that is missing
    meta_csv = base_dir + "esc50/meta/esc50.csv"
    audio_path = base_dir + "esc50/audio_32k/"
    num_of_classes = esc50.NUM_CLASSES
    fold = 1  # the test fold (1..5); the other four are trained on
    clip_length = esc50.CLIP_SECONDS
    wavmix = 0  # waveform mixup of clip pairs (0: off)


ex.config(experiment.common_config)


# What differs for ESC-50 from helpers.experiment.common_config:
@ex.config
def default_config():
    lr = 1e-5
    swa_epoch_start, swa_freq = 2, 1
    compile = False  # upstream fine-tunes eagerly
    wandb = dict(project="passt_esc50")
    datasets = dict(training=experiment.loader_config(12, 16),  # shuffle None: file order, as upstream
                    test=experiment.loader_config(20, 16))
    models = dict(mel=dict(timem=80), net=dict(n_classes=esc50.NUM_CLASSES, s_patchout_t=10, s_patchout_f=3))
    trainer = dict(max_epochs=10, precision="32-true")  # upstream fine-tunes in 32 bit


@basedataset.capture
def training_set(esc50_hdf5, fold, sample_rate, clip_length, in_mem, gain_augment, ir_augment, ir_path,
                 cut_irs_offset, roll, roll_conf, wavmix, seed=0, teachers=None):
    return esc50.get_training_set(esc50_hdf5, fold, roll=roll, roll_conf=roll_conf, wavmix=wavmix,
                                  target_extensions=teachers,
                                  clip_length=clip_length, sample_rate=sample_rate, in_mem=in_mem,
                                  gain_augment=gain_augment, ir_augment=ir_augment, ir_path=ir_path,
                                  cut_irs_offset=cut_irs_offset, seed=seed)


@basedataset.capture
def test_set(esc50_hdf5, fold, sample_rate, clip_length, in_mem):
    return esc50.get_test_set(esc50_hdf5, fold, sample_rate, clip_length, in_mem)


@basedataset.capture
def data_files(esc50_hdf5, meta_csv, audio_path):
    """(files, folders) the commands read: esc50_hdf5, or while it is missing and upstream's meta_csv is there,
    meta_csv and the audio_path folder that `esc50_file` converts into it."""
    if os.path.isfile(esc50_hdf5) or not os.path.isfile(meta_csv):
        return {"basedataset.esc50_hdf5": esc50_hdf5}, {}
    return {"basedataset.meta_csv": meta_csv}, {"basedataset.audio_path": audio_path}


def esc50_file(config):
    """basedataset.esc50_hdf5, converted once from upstream's layout when missing (after the config checks)."""
    dataset = config["basedataset"]
    return ensure_esc50_hdf5(dataset["esc50_hdf5"], dataset["meta_csv"], dataset["audio_path"])


def training_files(config):
    return [esc50_file(config)]  # the training folds are rows of this one file


def loaders(config, training=True):
    files = training_files(config)  # upstream's layout converted first (once)
    teachers = experiment.teacher_targets(config, files, activation="softmax") if training else None
    return experiment.train_and_test_loaders(config, training, lambda seed: training_set(seed=seed, teachers=teachers),
                                             test_set)


def checked(config, training=True, with_files=True):
    files, folders = data_files() if with_files else (None, None)
    check_config(config, n_classes=esc50.NUM_CLASSES, training=training, files=files, folders=folders)


experiment.add_standard_commands(ex, TASK, loaders, checked, loader_names=("training", "test"),
                                 train_doc="Train on the four training folds, validating on the test fold every epoch.",
                                 evaluated_on="the test fold", training_files=training_files,
                                 logits=experiment.LogitsSources(  # every fold, in file order
                                     ("esc50_hdf5",), lambda config, path: test_set(esc50_hdf5=path, fold=None)))


if __name__ == "__main__":
    experiment.launch(ex)
