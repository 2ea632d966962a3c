"""PaSST fine-tuned on FSD50K (200 classes): train (default; as upstream, the validation and the evaluation
split every epoch: `valid_ap`, `eval_ap`, their SWA twins, ...; the best checkpoint by `valid_ap`),
evaluate_only (the validation split, or `evaluate_split=eval`), model_speed_test, test_loaders, save_logits.

    python ex_fsd50k.py with trainer.precision=16-mixed -c "FSD50K PaSST"
    python ex_fsd50k.py with eval_every_epoch=False   # validation split only; the best checkpoint then on eval
    python ex_fsd50k.py evaluate_only with variable_eval evaluate_split=eval models.net.checkpoint=runs/fsd50k/1/checkpoints/last.ckpt
"""

import fsd50k.dataset as fsd50k
from config_updates import add_configs
from helpers import experiment
from helpers.common_config import loader_config
from helpers.config_keys import Key, Number, OneOf
from helpers.experiment import DatasetSpec, Split, in_base_dir
from helpers.tasks import MultiLabel

VALID = Split("valid_hdf5", loader="valid", prefix="valid_", restricted=False)  # eval_subset restricts eval
EVAL = Split("eval_hdf5", loader="eval", prefix="eval_")


def evaluation_set(config, path, options, whole_file):
    """Each clip's first eval_clip_length seconds (upstream), or whole clips with variable_eval."""
    dataset = config["basedataset"]
    return fsd50k.evaluation_set(path, options.replace(
        clip_length=None if dataset["variable_eval"] else dataset["eval_clip_length"]))


def evaluated(config):
    return [Split(f"{config['evaluate_split']}_hdf5", config["evaluate_split"], config["evaluate_split"] + "_")]


SPEC = DatasetSpec(
    name="fsd50k", task=MultiLabel(), n_classes=fsd50k.NUM_CLASSES,
    dataset_keys=(
        Key("balanced_train_hdf5", in_base_dir("mp3/" + fsd50k.TRAIN_FILE), "the training split (dev minus valid)"),
        Key("valid_hdf5", in_base_dir("mp3/" + fsd50k.VALID_FILE), "the validation split"),
        Key("eval_hdf5", in_base_dir("mp3/" + fsd50k.EVAL_FILE), "the evaluation split"),
        Key("name", "fsd50k", "the dataset's name"),
        Key("num_of_classes", fsd50k.NUM_CLASSES, "classes"),
        Key("random_crop", False, "False: train on each clip's first clip_length seconds (upstream) | True: a "
            "seeded random crop"),
        Key("eval_clip_length", 10, "seconds of each validation/evaluation clip, whatever clip_length (upstream)"),
        Key("variable_eval", False, "evaluate whole clips of any length (use batch size 1)"),
    ),
    keys=(
        Key("eval_every_epoch", True, "validate on the eval split every epoch too (upstream) | False: once, the "
            "best checkpoint", OneOf(True, False)),
        Key("evaluate_split", "valid", "what evaluate_only scores: valid (upstream) | eval", OneOf("valid", "eval")),
        Key("save_best", None, "N: keep the N best checkpoints by valid_ap (upstream's save_best; default: the "
            "best one)", Number(ge=1, integer=True, none=True), training=True),
    ),
    overrides={"lr": 1e-5, "ramp_down_start": 10, "ramp_down_len": 10, "swa_epoch_start": 10, "swa_freq": 3,
               "compile": False,  # upstream fine-tunes eagerly
               "wandb": {"project": "passt_fsd50k"},
               "datasets": {"training": loader_config(12, 16, shuffle=True), "valid": loader_config(10, 16),
                            "eval": loader_config(10, 16)},
               "models": {"mel": {"freqm": 0, "timem": 0}, "net": {"n_classes": fsd50k.NUM_CLASSES,
                                                                   "s_patchout_t": 10}},
               "trainer": {"max_epochs": 50, "precision": "32-true"}},  # upstream fine-tunes in 32 bit
    training_files=lambda config: ("balanced_train_hdf5",),
    training_set=lambda config, options: fsd50k.training_set(config["basedataset"]["balanced_train_hdf5"], options),
    evaluation_set=evaluation_set,
    validation=lambda config: [VALID, EVAL] if config["eval_every_epoch"] else [VALID],
    after_training=lambda config: [] if config["eval_every_epoch"] else [EVAL],
    evaluated=evaluated, logits_files=("balanced_train_hdf5", "valid_hdf5", "eval_hdf5"), logits_loader="eval",
    train_doc="Train, validating on the validation and the eval split every epoch (or, with eval_every_epoch=False, "
              "the best checkpoint on eval at the end).",
    evaluated_on="the validation split (evaluate_split=eval: the eval split)")

ex = experiment.build_experiment(SPEC)
add_configs(ex, clip_length_presets=True)  # upstream's FSD50K training set reads the 20 s presets' clip_length


@ex.named_config
def variable_eval():
    """Evaluate whole clips (any length), one per batch."""
    basedataset = dict(variable_eval=True)  # noqa: F841
    datasets = dict(valid=dict(batch_size=1), eval=dict(batch_size=1))  # noqa: F841


if __name__ == "__main__":
    experiment.launch(ex)
