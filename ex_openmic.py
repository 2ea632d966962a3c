"""PaSST fine-tuned on OpenMIC-2018 (20 instruments, partially labelled): train (default), evaluate_only,
model_speed_test, test_loaders, save_logits. Loss and metrics use only the known labels (the mask in the
targets): the loss as upstream (`openmic_loss=batch`) or normalised per clip (`openmic_loss=per_clip`).

    python ex_openmic.py with trainer.precision=16-mixed -c "OpenMIC PaSST"
    DDP=2 python ex_openmic.py with ...
"""

import openmic.dataset as openmic
from config_updates import add_configs
from helpers import experiment
from helpers.common_config import loader_config
from helpers.config_keys import Key, OneOf
from helpers.experiment import DatasetSpec, Split, in_base_dir
from helpers.tasks import MaskedMultiLabel

TEST = Split("openmic_test_hdf5", loader="test")
SPEC = DatasetSpec(
    name="openmic", task=lambda config: MaskedMultiLabel(openmic.NUM_INSTRUMENTS, config["openmic_loss"]),
    n_classes=openmic.NUM_INSTRUMENTS,
    dataset_keys=(
        Key("openmic_train_hdf5", in_base_dir("mp3/" + openmic.TRAIN_FILE), "the training split"),
        Key("openmic_test_hdf5", in_base_dir("mp3/" + openmic.TEST_FILE), "the test split"),
        Key("name", "openmic2008", "the dataset's name"),
        Key("num_of_classes", openmic.NUM_INSTRUMENTS, "instruments"),
    ),
    keys=(Key("openmic_loss", "batch", "batch: upstream's mean(mask * BCE) over batch x labels, first clip's mask "
              "under mixup (waveform mixup mixes labels and mask) | per_clip: each clip over its known labels, a "
              "label known in a mix if known in either clip", OneOf(*MaskedMultiLabel.NORMALIZATIONS)),),
    overrides={"lr": 1e-5, "swa_epoch_start": 2, "swa_freq": 1, "compile": False,  # upstream fine-tunes eagerly
               "wandb": {"project": "passt_openmic"},
               "datasets": {"training": loader_config(6, 16), "test": loader_config(20, 16)},
               "models": {"net": {"n_classes": openmic.NUM_INSTRUMENTS}},
               "trainer": {"max_epochs": 10, "precision": "32-true"}},  # upstream fine-tunes in 32 bit
    shuffle=False,  # file order, as upstream
    training_files=lambda config: ("openmic_train_hdf5",),
    training_set=lambda config, options: openmic.training_set(
        config["basedataset"]["openmic_train_hdf5"], options, known_label_mixup=config["openmic_loss"] == "per_clip"),
    evaluation_set=lambda config, path, options, whole_file: openmic.evaluation_set(path, options),
    validation=lambda config: [TEST], evaluated=lambda config: [TEST],
    logits_files=("openmic_train_hdf5", "openmic_test_hdf5"), logits_loader="test",
    train_doc="Train on the OpenMIC training split, validating on the test split every epoch.",
    evaluated_on="the test split")

ex = experiment.build_experiment(SPEC)
add_configs(ex)

if __name__ == "__main__":
    experiment.launch(ex)
