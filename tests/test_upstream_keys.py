"""Upstream's command lines work here: every config key and preset of upstream's experiments resolves with
upstream's meaning, Lightning-1 trainer keys are mapped or refused naming their replacement, and the defaults
(fine-tuning weights, loaders, presets) are upstream's."""
from helpers.data import DataOptions
import pytest
import torch

from helpers.config_checks import ConfigError, check_config
from helpers.lightning1_keys import lightning2_options
from helpers.networks import build_network
from tests.experiment_runs import resolved_config

# keys of upstream's configs (print_config of upstream's ex_*.py), with a value that is not the default
UPSTREAM_KEYS = {
    "basedataset.num_of_classes": 527, "basedataset.normalize": False, "basedataset.subsample": False,
    "basedataset.cut_irs_offset": 3, "basedataset.name": "mine", "basedataset.fold": 2, "basedataset.roll": False,
    "basedataset.roll_conf.shift_range": 100, "basedataset.wavmix": 0, "basedataset.gain_augment": 3,
    "basedataset.ir_augment": 0.5, "basedataset.ir_path": "irs/",
    "dyn_norm": False, "save_last_n": 3, "watch_model": False, "wandb.log_model": False, "wandb.project": "p",
    "models.net.cut_depth": 2, "models.net.embed": "default", "models.net.u_patchout": 100, "compile": False,
    "trainer.gpus": 1, "trainer.weights_summary": "full", "trainer.reload_dataloaders_every_epoch": True,
    "trainer.precision": 16, "swa": True, "swa_epoch_start": 3, "swa_freq": 2, "warm_up_len": 2,
    "ramp_down_start": 4, "ramp_down_len": 5, "last_lr_value": 0.1, "schedule_mode": "cos_cyc", "adamw": False,
    "weight_decay": 0.01, "lr": 1e-4, "use_mixup": False, "mixup_alpha": 0.2, "speed_test_batch_size": 7,
    "datasets.training.batch_size": 3, "datasets.training.num_workers": 2, "datasets.training.shuffle": True,
    "datasets.training.drop_last": True, "datasets.training.pin_memory": False, "datasets.training.timeout": 5,
    "datasets.training.prefetch_factor": 4, "datasets.training.persistent_workers": False,
}
EXPERIMENTS = ("ex_audioset", "ex_openmic", "ex_esc50", "ex_fsd50k")


def experiment(name):
    return __import__(name).ex


def lookup(config, dotted):
    for part in dotted.split("."):
        config = config[part]
    return config


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_upstream_keys_resolve_with_their_values(name):
    updates = dict(UPSTREAM_KEYS)
    if name != "ex_audioset":
        updates["basedataset.num_of_classes"] = {"ex_openmic": 20, "ex_esc50": 50, "ex_fsd50k": 200}[name]
    config = resolved_config(experiment(name), **updates)
    for key, value in updates.items():
        assert lookup(config, key) == value, key
    for key in ("cmd", "process_id", "slurm_job_id", "saque_cmd", "saque_id"):  # what upstream records
        assert key in config


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_upstream_presets_exist(name):
    upstream_presets = {"nomixup", "mixup", "mini_train", "passt", "passt_s_20sec", "passt_s_30sec", "passt_s_ap476",
                        "passt_s_ap4763", "passt_s_ap472", "passt_s_p16_s16_128_ap468", "passt_s_swa_p16_s16_128_ap473",
                        "passt_s_swa_p16_s14_128_ap471", "passt_s_p16_s14_128_ap469", "passt_s_swa_p16_s12_128_ap473",
                        "passt_s_p16_s12_128_ap470", "ensemble_s10", "ensemble_many", "ensemble_4", "ensemble_5",
                        "ensemble_s16_14", "dynamic_roll"}
    assert upstream_presets <= set(experiment(name).named_configs)


def test_upstream_preset_of_an_unreleased_arch_loads_the_released_one():
    config = resolved_config(experiment("ex_audioset"), "passt_s_ap4763")
    assert config["models"]["net"]["arch"] == "passt_s_swa_p16_128_ap4761"


@pytest.mark.parametrize("name, clip_seconds", [("ex_audioset", 10), ("ex_openmic", 10), ("ex_esc50", 5),
                                                ("ex_fsd50k", 20)])
def test_the_20_second_preset_feeds_10_second_clips_except_to_fsd50k_training(name, clip_seconds):
    config = resolved_config(experiment(name), "passt_s_20sec")
    assert config["models"]["net"]["arch"] == "passt_s_f128_20sec_p16_s10_ap474"
    assert config["models"]["net"]["input_tdim"] == 2000
    assert config["basedataset"]["clip_length"] == clip_seconds
    if name == "ex_fsd50k":
        assert config["basedataset"]["eval_clip_length"] == 10  # upstream validates on 10 s crops
        assert resolved_config(experiment(name), "passt_s_30sec")["basedataset"]["clip_length"] == 30


def test_the_20_second_network_takes_the_10_second_spectrogram():
    net = build_network("passt_s_f128_20sec_p16_s10_ap474", pretrained=False, n_classes=527, fstride=10, tstride=10,
                        input_tdim=2000, s_patchout_t=0, s_patchout_f=0).eval()
    with torch.no_grad():
        logits, _ = net(torch.randn(1, 1, 128, 998))  # a 10 s AudioSet clip: the first part of the time embedding
    assert logits.shape == (1, 527)


@pytest.mark.parametrize("name", ["ex_openmic", "ex_esc50", "ex_fsd50k"])
def test_fine_tuning_starts_from_get_models_default_the_distilled_passt(name):
    config = resolved_config(experiment(name))
    assert config["models"]["net"]["arch"] == "passt_s_kd_p16_128_ap486" and config["models"]["net"]["pretrained"]
    assert config["trainer"]["precision"] == "32-true" and config["compile"] is False  # upstream fine-tunes so
    assert config["datasets"]["training"]["shuffle"] == (True if name == "ex_fsd50k" else None)


def test_lightning1_trainer_keys_map_to_lightning2(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    options = lightning2_options({"gpus": 2, "weights_summary": "full", "reload_dataloaders_every_epoch": True,
                                  "progress_bar_refresh_rate": 0, "checkpoint_callback": False, "max_epochs": 3})
    assert options == {"max_epochs": 3, "accelerator": "gpu", "devices": 2, "enable_model_summary": True,
                       "model_summary_depth": -1, "reload_dataloaders_every_n_epochs": 1,
                       "enable_progress_bar": False, "enable_checkpointing": False}
    assert lightning2_options({"gpus": 0})["accelerator"] == "cpu"
    assert lightning2_options({"gpus": "0,1"})["devices"] == [0, 1]
    assert lightning2_options({"accelerator": "ddp"}) == {"strategy": "ddp", "accelerator": "auto"}
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # DDP=2: one GPU per process, devices come from torchrun
    assert lightning2_options({"gpus": 1}) == {"accelerator": "gpu"}


def test_lightning1_trainer_keys_without_an_equivalent_are_refused_naming_the_replacement():
    config = resolved_config(experiment("ex_audioset"), **{
        "trainer.resume_from_checkpoint": "last.ckpt", "trainer.stochastic_weight_avg": True,
        "trainer.tpu_cores": 8, "trainer.replace_sampler_ddp": True, "trainer.terminate_on_nan": True})
    with pytest.raises(ConfigError) as error:
        check_config(config)
    message = str(error.value)
    assert "trainer.resume_from_checkpoint='last.ckpt': a Lightning 1 argument that Lightning 2 dropped; use " \
           "resume=<run folder or .ckpt>" in message
    assert "trainer.stochastic_weight_avg=True" in message and "use swa=True" in message
    assert "trainer.tpu_cores=8" in message and "trainer.accelerator=tpu" in message
    # equal to Lightning 1's default (replace_sampler_ddp=True) or mappable (terminate_on_nan): accepted
    assert "replace_sampler_ddp" not in message and "terminate_on_nan" not in message


@pytest.mark.parametrize("updates, message", [
    ({"dyn_norm": True}, "dyn_norm: True is not supported (upstream never implemented"),
    ({"basedataset.normalize": True}, "basedataset.normalize: True is not supported"),
    ({"models.net.embed": "overlap"}, "models.net.embed: 'overlap' is not available"),
    ({"models.net.cut_depth": 11}, "models.net.cut_depth: passt_deit_bd_p16_384 has 12 blocks, so cut_depth must "
                                   "lie in 1..10"),
    ({"save_last_n": 0}, "save_last_n: must be None or an integer >= 1, got 0"),
    ({"swa_snapshot": "later"}, "swa_snapshot: 'later'; allowed: epoch_start, epoch_end"),
    ({"kd.teacher_weight": 2}, "kd.teacher_weight: must lie in \\[0, 1\\], got 2"),
    ({"kd.temperature": 0}, "kd.temperature: must be a number > 0, got 0"),
])
def test_upstream_switches_that_cannot_work_stop_before_any_work(updates, message):
    with pytest.raises(ConfigError, match=r"(?s)" + message.replace("(", r"\(").replace(")", r"\)")):
        check_config(resolved_config(experiment("ex_audioset"), **updates))


@pytest.mark.parametrize("cut_depth, blocks", [(0, 4), (1, 3), (2, 2), (-2, 3)])
def test_cut_depth_removes_blocks_as_upstreams_lighten_model(cut_depth, blocks):
    net = build_network("passt_tiny", pretrained=False, n_classes=3, fstride=16, tstride=16, input_tdim=98,
                        cut_depth=cut_depth)
    assert len(net.blocks) == blocks
    full = build_network("passt_tiny", pretrained=False, n_classes=3, fstride=16, tstride=16, input_tdim=98)
    kept = {0: [0, 1, 2, 3], 1: [0, 2, 3], 2: [0, 3], -2: [0, 1, 3]}[cut_depth]
    assert [type(block) for block in net.blocks] == [type(full.blocks[index]) for index in kept]
    net.eval()(torch.randn(1, 1, 128, 98))


def test_save_last_n_keeps_the_checkpoints_of_the_last_epochs(tmp_path):
    from pytorch_lightning.callbacks import ModelCheckpoint, ModelSummary

    from helpers.trainer import build_trainer, trainer_config

    class Run:
        _id, observers = None, []

        def log_scalar(self, *args):
            pass

    trainer = build_trainer(trainer_config(accelerator="cpu", weights_summary="full"), Run(), str(tmp_path), "ap",
                            save_last_n=2)
    last_n = [c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor == "epoch"]
    assert len(last_n) == 1 and last_n[0].save_top_k == 2 and last_n[0].mode == "max"
    assert any(isinstance(c, ModelSummary) and c._max_depth == -1 for c in trainer.callbacks)


def test_upstreams_dataloader_keys_reach_the_loaders(tmp_path):
    from helpers.data import make_training_set
    from helpers.common_config import loader_config
    from helpers.loaders import evaluation_loader, loader_options, training_loader
    from tests.helpers.data.clips import write_tone_hdf5
    write_tone_hdf5(tmp_path / "clips.hdf", n_clips=5, classes_num=4, seconds=0.25)
    dataset = make_training_set([tmp_path / "clips.hdf"], 4, DataOptions(sample_rate=16000, clip_length=0.25, roll=False))
    config = loader_config(2, 1, drop_last=True, timeout=7, prefetch_factor=3, pin_memory=False)
    loader = training_loader(dataset, seed=0, **loader_options(config))
    assert (loader.batch_size, loader.drop_last, loader.timeout, loader.prefetch_factor, loader.pin_memory) == \
           (2, True, 7, 3, False)
    assert len(loader) == 2  # 5 clips, the last odd one dropped
    with pytest.raises(ValueError, match="drop_last=True would leave evaluation clips out"):
        evaluation_loader(dataset, **loader_options(config))


def test_persistent_workers_and_evaluation_drop_last_are_refused_before_any_work():
    config = resolved_config(experiment("ex_fsd50k"), **{"datasets.training.persistent_workers": True,
                                                         "datasets.valid.drop_last": True})
    with pytest.raises(ConfigError) as error:
        check_config(config)
    assert "datasets.training.persistent_workers: True would keep the previous epoch's dataset state" in str(error.value)
    assert "datasets.valid.drop_last: True would leave evaluation clips out" in str(error.value)
