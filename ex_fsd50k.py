"""PaSST fine-tuned on FSD50K (200 classes): train (default; as upstream, the validation and the evaluation
split every epoch: `valid_ap`, `eval_ap`, their SWA twins, ...; the best checkpoint by `valid_ap`),
evaluate_only (the validation split, or `evaluate_split=eval`), model_speed_test, test_loaders.

    python ex_fsd50k.py with trainer.precision=16-mixed -c "FSD50K PaSST"
    python ex_fsd50k.py with eval_every_epoch=False   # validation split only; the best checkpoint then on eval
    python ex_fsd50k.py evaluate_only with variable_eval evaluate_split=eval models.net.checkpoint=runs/fsd50k/1/checkpoints/last.ckpt
"""

from sacred import Experiment, Ingredient

import fsd50k.dataset as fsd50k
from config_updates import add_configs
from helpers import experiment
from helpers.config_checks import check_config
from helpers.tasks import MultiLabel

basedataset = Ingredient("basedataset")
ex = Experiment("fsd50k", ingredients=[basedataset])
add_configs(ex, clip_length_presets=True)  # upstream's FSD50K training set reads the 20 s presets' clip_length
TASK = MultiLabel()
EVALUATE_SPLITS = ("valid", "eval")


basedataset.config(experiment.common_dataset_config)


# FSD50K's files (fsd50k/README.md) and what differs from helpers.experiment.common_dataset_config
# (which sets base_dir and the augmentation defaults):
@basedataset.config
def dataset_config(base_dir):
    name = "fsd50k"
    balanced_train_hdf5 = base_dir + "mp3/" + fsd50k.TRAIN_FILE
    valid_hdf5 = base_dir + "mp3/" + fsd50k.VALID_FILE
    eval_hdf5 = base_dir + "mp3/" + fsd50k.EVAL_FILE
    num_of_classes = fsd50k.NUM_CLASSES
    random_crop = False  # False: train on each clip's first clip_length seconds (upstream) | True: a seeded random crop
    eval_clip_length = 10  # seconds of each validation/evaluation clip, whatever clip_length (upstream)
    variable_eval = False  # evaluate whole clips of any length (use batch size 1)


ex.config(experiment.common_config)


# What differs for FSD50K from helpers.experiment.common_config:
@ex.config
def default_config():
    lr = 1e-5
    ramp_down_start, ramp_down_len = 10, 10
    swa_epoch_start, swa_freq = 10, 3
    eval_every_epoch = True  # validate on the eval split every epoch too (upstream) | False: once, the best checkpoint
    evaluate_split = "valid"  # what evaluate_only scores: valid (upstream) | eval
    save_best = None  # N: keep the N best checkpoints by valid_ap (upstream's save_best; default: the best one)
    compile = False  # upstream fine-tunes eagerly
    wandb = dict(project="passt_fsd50k")
    datasets = dict(training=experiment.loader_config(12, 16, shuffle=True), valid=experiment.loader_config(10, 16),
                    eval=experiment.loader_config(10, 16))
    models = dict(mel=dict(freqm=0, timem=0), net=dict(n_classes=fsd50k.NUM_CLASSES, s_patchout_t=10))
    trainer = dict(max_epochs=50, precision="32-true")  # upstream fine-tunes in 32 bit


@ex.named_config
def variable_eval():
    """Evaluate whole clips (any length), one per batch."""
    basedataset = dict(variable_eval=True)  # noqa: F841
    datasets = dict(valid=dict(batch_size=1), eval=dict(batch_size=1))  # noqa: F841


@basedataset.capture
def training_set(balanced_train_hdf5, sample_rate, clip_length, random_crop, in_mem, gain_augment, ir_augment,
                 ir_path, cut_irs_offset, roll, roll_conf, wavmix, seed=0, teachers=None):
    return fsd50k.get_training_set(balanced_train_hdf5, roll=roll, roll_conf=roll_conf, wavmix=wavmix,
                                   target_extensions=teachers,
                                   clip_length=clip_length, random_crop=random_crop, sample_rate=sample_rate,
                                   in_mem=in_mem, gain_augment=gain_augment, ir_augment=ir_augment, ir_path=ir_path,
                                   cut_irs_offset=cut_irs_offset, seed=seed)


@basedataset.capture
def evaluation_set(split, valid_hdf5, eval_hdf5, variable_eval, sample_rate, eval_clip_length, in_mem):
    """The `split` ("valid" or "eval") set."""
    if split == "valid":
        return fsd50k.get_valid_set(valid_hdf5, variable_eval, sample_rate, eval_clip_length, in_mem)
    return fsd50k.get_eval_set(eval_hdf5, variable_eval, sample_rate, eval_clip_length, in_mem)


@basedataset.capture
def logits_set(path, variable_eval, sample_rate, eval_clip_length, in_mem):
    """save_logits' clips of a whole file, cut as the evaluation splits are."""
    return fsd50k.get_eval_set(path, variable_eval, sample_rate, eval_clip_length, in_mem)


@basedataset.capture
def data_files(balanced_train_hdf5, valid_hdf5, eval_hdf5, training=True, split="valid"):
    """The files a command reads: all three to train, the `split` file alone to evaluate."""
    if not training:
        return {f"basedataset.{split}_hdf5": valid_hdf5 if split == "valid" else eval_hdf5}
    return {"basedataset.valid_hdf5": valid_hdf5, "basedataset.eval_hdf5": eval_hdf5,
            "basedataset.balanced_train_hdf5": balanced_train_hdf5}


def training_files(config):
    return [data_files()["basedataset.balanced_train_hdf5"]]


def loaders(config, training=True):
    """(training loader, {"valid_": ..., "eval_": ...}) as upstream; with eval_every_epoch=False
    (training loader, {"valid_": ...}, {"eval_": ...}: the best checkpoint on eval after training); without
    `training`, (None, the `evaluate_split` loader)."""
    cfg = config["datasets"]
    subset = experiment.eval_subset(config)  # the eval split's, or the one evaluate_only scores
    scored = "eval" if training else config["evaluate_split"]

    def evaluation_loader(split):
        return experiment.evaluation_loader(evaluation_set(split), subset=subset if split == scored else None,
                                            **experiment.loader_options(cfg[split]))

    if not training:
        return None, {config["evaluate_split"] + "_": evaluation_loader(config["evaluate_split"])}
    sets = {"valid_": evaluation_loader("valid"), "eval_": evaluation_loader("eval")}
    teachers = experiment.teacher_targets(config, training_files(config))
    train_loader = experiment.training_loader(training_set(seed=config["seed"], teachers=teachers), seed=config["seed"],
                                              shuffle=bool(cfg["training"]["shuffle"]),
                                              **experiment.loader_options(cfg["training"]))
    if config["eval_every_epoch"]:
        return train_loader, sets
    return train_loader, {"valid_": sets["valid_"]}, {"eval_": sets["eval_"]}


def checked(config, training=True, with_files=True):
    check_config(config, n_classes=fsd50k.NUM_CLASSES, training=training,
                 choices={"evaluate_split": EVALUATE_SPLITS, "eval_every_epoch": (True, False)},
                 files=data_files(training=training, split=config["evaluate_split"]) if with_files else None)


experiment.add_standard_commands(ex, TASK, loaders, checked, loader_names=("training", "validation", "evaluation"),
                                 train_doc="Train, validating on the validation and the eval split every epoch (or, "
                                           "with eval_every_epoch=False, the best checkpoint on eval at the end).",
                                 evaluated_on="the validation split (evaluate_split=eval: the eval split)",
                                 training_files=training_files,
                                 logits=experiment.LogitsSources(
                                     ("balanced_train_hdf5", "valid_hdf5", "eval_hdf5"),
                                     lambda config, path: logits_set(path), loader="eval"))


if __name__ == "__main__":
    experiment.launch(ex)
