"""PaSST fine-tuned on ESC-50 (50 classes, 5 folds; train on four, test on `basedataset.fold`): train
(default), evaluate_only, model_speed_test, test_loaders, save_logits. Cross-entropy loss, metric `acc`.

    python ex_esc50.py with basedataset.fold=3 trainer.precision=16-mixed -c "ESC-50 fold 3"
"""

import os

import esc50.dataset as esc50
from config_updates import add_configs
from esc50.prepare_scripts.create_h5pymp3_dataset import ensure_esc50_hdf5
from helpers import experiment
from helpers.common_config import loader_config
from helpers.config_keys import Key
from helpers.experiment import DatasetSpec, Split, in_base_dir
from helpers.tasks import MultiClass


def inputs(config, files):
    """What the commands read: esc50_hdf5, or while it is missing and upstream's meta_csv is there, meta_csv
    and the audio_path folder that `prepare` converts into it."""
    dataset = config["basedataset"]
    if os.path.isfile(dataset["esc50_hdf5"]) or not os.path.isfile(dataset["meta_csv"]):
        return files, {}
    return {"basedataset.meta_csv": dataset["meta_csv"]}, {"basedataset.audio_path": dataset["audio_path"]}


def prepare(config):
    """basedataset.esc50_hdf5, converted once from upstream's layout when missing (after the config checks)."""
    dataset = config["basedataset"]
    ensure_esc50_hdf5(dataset["esc50_hdf5"], dataset["meta_csv"], dataset["audio_path"])


TEST_FOLD = Split("esc50_hdf5", loader="test")
SPEC = DatasetSpec(
    name="esc50", task=MultiClass(), n_classes=esc50.NUM_CLASSES,
    dataset_keys=(
        Key("esc50_hdf5", in_base_dir("mp3/" + esc50.DATA_FILE), "every clip, with its fold"),
        Key("meta_csv", in_base_dir("esc50/meta/esc50.csv"), "upstream's layout (its base_dir "
            "audioset_hdf5s/esc50/): converted into esc50_hdf5 on first use if that is missing"),
        Key("audio_path", in_base_dir("esc50/audio_32k/"), "upstream's layout: the wav files"),
        Key("name", "esc50", "the dataset's name"),
        Key("num_of_classes", esc50.NUM_CLASSES, "classes"),
    ),
    dataset_overrides={"clip_length": esc50.CLIP_SECONDS, "wavmix": 0},
    overrides={"lr": 1e-5, "swa_epoch_start": 2, "swa_freq": 1, "compile": False,  # upstream fine-tunes eagerly
               "wandb": {"project": "passt_esc50"},
               "datasets": {"training": loader_config(12, 16), "test": loader_config(20, 16)},
               "models": {"mel": {"timem": 80}, "net": {"n_classes": esc50.NUM_CLASSES, "s_patchout_t": 10,
                                                        "s_patchout_f": 3}},
               "trainer": {"max_epochs": 10, "precision": "32-true"}},  # upstream fine-tunes in 32 bit
    shuffle=False,  # file order, as upstream
    training_files=lambda config: ("esc50_hdf5",),  # the training folds are rows of this one file
    training_set=lambda config, options: esc50.training_set(
        config["basedataset"]["esc50_hdf5"], config["basedataset"]["fold"], options),
    evaluation_set=lambda config, path, options, whole_file: esc50.evaluation_set(  # save_logits: every fold
        path, None if whole_file else config["basedataset"]["fold"], options),
    validation=lambda config: [TEST_FOLD], evaluated=lambda config: [TEST_FOLD],
    logits_files=("esc50_hdf5",), logits_loader="test", teacher_activation="softmax", inputs=inputs,
    prepare=prepare, train_doc="Train on the four training folds, validating on the test fold every epoch.",
    evaluated_on="the test fold")

ex = experiment.build_experiment(SPEC)
add_configs(ex)

if __name__ == "__main__":
    experiment.launch(ex)
