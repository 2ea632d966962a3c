"""ex_custom.py in-process on CPU: a tiny PaSST from scratch on generated folders prepared by `custom prepare`
learns well above chance, single-label (cross-entropy, accuracy) and multi-label (BCE, mAP), evaluating whole
clips of 1-2.5 s through inference's windows (the network takes 1.1 s); its checkpoint then tags files with the
user's class names."""
import contextlib
import json

import pytest
import torch

from custom.prepare import prepare
from helpers.config_checks import ConfigError
from helpers.data import PackedBitsTargets, read_targets
from passt_hear.cli import main as passt_hear_main
from tests.custom.clips import CLASSES, class_folders, multi_label_csv
from tests.experiment_runs import resolved_config, tiny_training_updates

EPOCHS = 10


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def single_label(tmp_path_factory):
    """10 clips per class (1-2.5 s, four formats and rates, some stereo), 60% train / 40% valid."""
    root = tmp_path_factory.mktemp("single")
    class_folders(root / "audio", 10, seconds=(1.0, 2.5))
    prepare(root / "audio", root / "data", fractions=(0.6, 0.4, 0.0), workers=1)
    return root


@pytest.fixture(scope="module")
def multi_label(tmp_path_factory):
    """36 clips, every second one with two classes; the CSV gives 18 train, 12 valid and 6 eval clips."""
    root = tmp_path_factory.mktemp("multi")
    csv_path = multi_label_csv(root, 36, splits=lambda i: ("valid", "eval", "train", "valid", "train", "train")[i % 6],
                               seconds=(1.0, 2.5))
    prepare(root / "audio", root / "data", csv_path=csv_path, workers=1)
    return root


def updates(root, epochs=EPOCHS, data="data", **extra):
    """Tiny passt_tiny training on 1 s crops; no mel masking (it would erase what a from-scratch model learns)."""
    return tiny_training_updates(str(root / data), 1, {
        "models.mel.freqm": 0, "models.mel.timem": 0, "models.net.s_patchout_t": 1, "datasets.valid.num_workers": 0,
        "datasets.eval.num_workers": 0, "trainer.max_epochs": epochs, "trainer.check_val_every_n_epoch": 2,
        "swa_epoch_start": epochs - 1, "warm_up_len": 1, "ramp_down_start": epochs // 2, "ramp_down_len": epochs // 2,
        **extra})


def run(root, command=None, **config_updates):
    import ex_custom
    with contextlib.chdir(root):
        return ex_custom.ex.run(command, config_updates=config_updates,
                                options={"--loglevel": "ERROR", "--file_storage": "runs"}).result


def test_single_label_data_trains_with_cross_entropy_well_above_chance(single_label):
    result = run(single_label, **updates(single_label))
    assert result["valid_val.clips"] == 12 and result["epochs"] == EPOCHS
    assert result["best_valid_acc"] >= 0.75 and result["valid_acc"] >= 0.6  # chance: 1/3; measured: 1.0
    assert "valid_ap" not in result and result["best_checkpoint"].endswith(".ckpt")


def test_multi_label_data_trains_with_bce_well_above_chance_and_scores_the_eval_split(multi_label):
    targets = read_targets(multi_label / "data" / "valid_mp3.hdf", PackedBitsTargets(3))
    chance = float(targets.mean())  # the mAP of scores that know nothing: the positive rate
    result = run(multi_label, **updates(multi_label))
    assert result["valid_val.clips"] == 12 and result["eval_val.clips"] == 6
    assert result["best_valid_ap"] >= chance + 0.2 and result["valid_ap"] >= chance + 0.15  # measured: 0.80 vs 0.5
    assert 0 <= result["eval_ap"] <= 1 and "valid_acc" not in result
    evaluated = run(multi_label, "evaluate_only", **updates(multi_label), evaluate_split="eval",
                    **{"models.net.checkpoint": result["best_checkpoint"]})
    assert evaluated["eval_ap"] == pytest.approx(result["eval_ap"], abs=1e-6) and evaluated["eval_excluded_clips"] == 0


@pytest.fixture(scope="module")
def stereo(single_label):
    """The single-label folder prepared with --channels 2 (its stereo files stay stereo) as `stereo/`."""
    prepare(single_label / "audio", single_label / "stereo", fractions=(0.6, 0.4, 0.0), channels=2, workers=1)
    return single_label


def test_stereo_data_trains_a_two_channel_network_by_default(stereo):
    import ex_custom
    assert resolved_config(ex_custom.ex, **{"basedataset.base_dir": f"{stereo / 'stereo'}/"})["models"]["net"][
        "in_channels"] == 2  # the prepared channels
    assert resolved_config(ex_custom.ex, **{"basedataset.base_dir": f"{stereo / 'data'}/"})["models"]["net"][
        "in_channels"] == 1
    result = run(stereo, **updates(stereo, epochs=2, data="stereo"))
    assert result["valid_val.clips"] == 12 and 0 <= result["valid_acc"] <= 1
    state_dict = torch.load(result["last_checkpoint"], weights_only=True)["state_dict"]
    assert state_dict["net.patch_embed.proj.weight"].shape[1] == 2


def test_model_speed_test_feeds_the_network_its_channels(stereo, capsys):
    speed = run(stereo, "model_speed_test", **updates(stereo, data="stereo"), speed_test_batch_size=2)
    assert speed > 0 and "training specs/s" in capsys.readouterr().out


def test_the_fine_tuned_checkpoint_tags_files_with_the_users_classes(single_label, capsys):
    """Trained at passt_tiny's registered strides and input size, which `tag --arch passt_tiny` builds."""
    geometry = {"models.net.fstride": None, "models.net.tstride": None, "models.net.input_tdim": None}
    result = run(single_label, **updates(single_label, epochs=2, **geometry))
    clip = next((single_label / "audio" / "engine").glob("clip 02*"))
    capsys.readouterr()  # the training's closing line
    status = passt_hear_main(["tag", str(clip), "--arch", "passt_tiny", "--checkpoint", result["last_checkpoint"],
                              "--labels", str(single_label / "data" / "class_labels_indices.csv"), "--json",
                              "--events", "--threshold", "0"])
    [tags] = json.loads(capsys.readouterr().out)
    assert status == 0 and sorted(label["name"] for label in tags["labels"]) == sorted(CLASSES)
    assert {event["label"] for event in tags["events"]} == set(CLASSES)  # threshold 0: every class is an event


def test_a_training_checkpoint_tags_without_arch_whatever_its_strides(single_label, capsys):
    """Trained at stride 16 on 1 s input (not passt_tiny's registered stride 10, 10 s): the checkpoint names its
    network, so `tag` needs no --arch."""
    result = run(single_label, **updates(single_label, epochs=2))
    network = torch.load(result["last_checkpoint"], weights_only=True)["network"]
    assert (network["arch"], network["fstride"], network["tstride"], network["input_tdim"]) == ("passt_tiny", 16, 16, 98)
    clip = next((single_label / "audio" / "engine").glob("clip 02*"))
    capsys.readouterr()
    status = passt_hear_main(["tag", str(clip), "--checkpoint", result["last_checkpoint"],
                              "--labels", str(single_label / "data" / "class_labels_indices.csv"), "--json"])
    [tags] = json.loads(capsys.readouterr().out)
    assert status == 0 and sorted(label["name"] for label in tags["labels"]) == sorted(CLASSES)


def test_the_config_follows_the_prepared_folder(single_label, multi_label, tmp_path):
    import ex_custom
    config = resolved_config(ex_custom.ex, **{"basedataset.base_dir": f"{multi_label / 'data'}/"})
    assert config["basedataset"]["num_of_classes"] == 3 and config["basedataset"]["multi_label"] is True
    assert config["models"]["net"]["n_classes"] == 3 and config["eval_windowing"] is True
    assert config["models"]["mel"]["timem"] == 200 and config["models"]["net"]["s_patchout_t"] == 20  # 10 s crops
    assert resolved_config(ex_custom.ex, "passt_s_swa_p16_128_ap476",
                           **{"basedataset.base_dir": f"{single_label / 'data'}/"})["models"]["net"]["n_classes"] == 3
    with pytest.raises(ConfigError, match="holds no prepared dataset .*python -m custom prepare"):
        run(tmp_path, **{"basedataset.base_dir": f"{tmp_path}/"})
    with pytest.raises(ConfigError, match="whole clips of any length .* need batch size 1"):
        run(single_label, **updates(single_label), **{"datasets.valid.batch_size": 4})
