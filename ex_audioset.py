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


@basedataset.config
def dataset_config():
    base_dir = "audioset_hdf5s/"  # holds mp3/*.hdf (audioset/README.md), or make a link
    balanced_train_hdf5 = base_dir + "mp3/" + audioset.BALANCED_TRAIN_FILE
    unbalanced_train_hdf5 = base_dir + "mp3/" + audioset.UNBALANCED_TRAIN_FILE
    eval_hdf5 = base_dir + "mp3/" + audioset.EVAL_FILE
    classes_num = audioset.NUM_CLASSES
    sample_rate, clip_length, in_mem = 32000, 10, False
    gain_augment = 7  # random gain of +-7 dB
    ir_augment, ir_path = 0.0, base_dir + "irs/"
    roll = True  # random time roll of the waveform (roll_conf)
    roll_conf = dict(axis=1, shift=None, shift_range=50)
    wavmix = 1  # waveform mixup of clip pairs (0: off)
    sample_weight_offset, sample_weight_sum = 100, True
    epoch_len = 100000  # clips per epoch, drawn with class-balanced weights (full training set)
    sampler_replace = False


@ex.config
def default_config():
    lr, adamw, weight_decay = 2e-5, True, 1e-4
    use_mixup = True  # spectrogram mixup
    mixup_alpha = 0.3
    schedule_mode = "exp_lin"  # exp_lin | cos_cyc | constant, per epoch
    warm_up_len, ramp_down_start, ramp_down_len, last_lr_value = 5, 50, 50, 0.01
    swa = True  # average the weights after epoch swa_epoch_start and every swa_freq epochs after it
    swa_epoch_start, swa_freq = 50, 5
    compile = "auto"  # torch.compile the net: auto = on GPU only
    nonfinite_loss = "stop"  # stop | skip a batch whose loss is NaN/inf
    resume = None  # run folder or .ckpt to continue from
    speed_test_batch_size = 100
    spectrogram_batches = 2  # PNGs of the first training batches
    wandb = dict(enabled=False, project="passt_audioset")
    datasets = dict(training=dict(dataset="full", batch_size=12, num_workers=16),  # full | balanced
                    test=dict(batch_size=20, num_workers=16))
    models = dict(
        mel=dict(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48, timem=192, htk=False,
                 fmin=0.0, fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000),
        net=dict(arch="passt_deit_bd_p16_384", pretrained=True, n_classes=527, in_channels=1, fstride=10,
                 tstride=10, input_fdim=128, input_tdim=998, u_patchout=0, s_patchout_t=40, s_patchout_f=4,
                 drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0, arch_list=[], checkpoint=None,
                 checkpoint_weights="net"))
    trainer = experiment.trainer_config(max_epochs=130, precision="16-mixed", benchmark=True, num_sanity_val_steps=0)


@basedataset.capture
def training_set(balanced_train_hdf5, unbalanced_train_hdf5, classes_num, sample_rate, clip_length, in_mem,
                 gain_augment, ir_augment, ir_path, roll, roll_conf, wavmix, _config, dataset="full", seed=0):
    options = dict(classes_num=classes_num, sample_rate=sample_rate, clip_length=clip_length, in_mem=in_mem,
                   gain_augment=gain_augment, ir_augment=ir_augment, ir_path=ir_path, roll=roll,
                   roll_conf=roll_conf, wavmix=wavmix, seed=seed)
    if dataset == "balanced":
        return audioset.get_training_set(balanced_train_hdf5, **options), None
    weights = audioset.get_ft_cls_balanced_sample_weights(balanced_train_hdf5, unbalanced_train_hdf5, classes_num,
                                                          _config["sample_weight_offset"], _config["sample_weight_sum"])
    sampler = audioset.get_ft_weighted_sampler(weights, _config["epoch_len"], _config["sampler_replace"], seed=seed)
    return audioset.get_full_training_set(balanced_train_hdf5, unbalanced_train_hdf5, **options), sampler


@basedataset.capture
def test_set(eval_hdf5, classes_num, sample_rate, clip_length, in_mem):
    return audioset.get_test_set(eval_hdf5, classes_num, sample_rate, clip_length, in_mem)


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
    test_loader = experiment.evaluation_loader(test_set(), test_cfg["batch_size"], test_cfg["num_workers"])
    if not training:
        return None, test_loader
    dataset, sampler = training_set(dataset=train_cfg["dataset"], seed=config["seed"])
    return experiment.training_loader(dataset, train_cfg["batch_size"], train_cfg["num_workers"], config["seed"],
                                      sampler), test_loader


def checked(config, training=True, with_files=True):
    files = data_files(training=training, full=config["datasets"]["training"]["dataset"] == "full")
    check_config(config, n_classes=config["basedataset"]["classes_num"], training=training,
                 files=files if with_files else None)


experiment.add_standard_commands(ex, TASK, loaders, checked, loader_names=("training", "test"),
                                 train_doc="Train on the training set, validating on the eval set every epoch.",
                                 evaluated_on="the eval set")


@ex.command
def preload_mp3(_config):
    """Read both training files once, front to back (fills a network file cache)."""
    files = data_files()
    print(f"read {audioset.preload_mp3(files['basedataset.balanced_train_hdf5'], files['basedataset.unbalanced_train_hdf5'])} bytes")


if __name__ == "__main__":
    experiment.launch(ex)
