"""ex_audioset.py end to end on CPU: a tiny PaSST on a small generated dataset, through the command line
(training, DDP=2) and in-process (named configs, resume, evaluate_only with an ensemble, observers)."""
import contextlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from audioset.prepare_scripts.make_demo_dataset import make_demo_dataset
from helpers.config_checks import ConfigError
from helpers.data import PackedBitsTargets, read_targets
from helpers.metrics import mean_average_precision
from helpers.process_tree import run_tree
from tests.experiment_runs import resolved_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES, SECONDS, EPOCHS = 8, 3, 10


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    make_demo_dataset(out, n_train=96, n_eval=25, n_unbalanced=8, n_classes=CLASSES, clip_length=SECONDS)
    return str(out)


def demo_updates(demo_dir):
    """Config updates of the demo config for the small test dataset."""
    return {"basedataset.base_dir": demo_dir + "/", "basedataset.num_of_classes": CLASSES,
            "basedataset.clip_length": SECONDS, "basedataset.epoch_len": 104, "seed": 1, "models.net.n_classes": CLASSES,
            "models.net.input_tdim": 100 * SECONDS - 2, "datasets.training.num_workers": 0,
            "datasets.test.num_workers": 0, "trainer.enable_progress_bar": False, "spectrogram_batches": 1}


def command_line(demo_dir, **extra):
    return [f"{key}={value}" for key, value in {**demo_updates(demo_dir), **extra}.items()]


def run_script(args, cwd, env_extra=None, timeout=600):
    """ex_audioset.py's command line in another process; on its timeout every process it started (DDP ranks
    included) is killed. Returns the finished process (stdout holds stdout and stderr)."""
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    try:
        process = run_tree([sys.executable, os.path.join(ROOT, "ex_audioset.py"), *args], timeout, cwd=cwd, env=env)
    except subprocess.TimeoutExpired as error:
        raise AssertionError(f"ex_audioset.py {' '.join(args[:3])} ran past {timeout} s: "
                             f"{(error.output or '')[-6000:]}") from None
    assert process.returncode == 0, process.stdout[-8000:]
    return process


def read_json(path):
    with open(path) as file:
        return json.load(file)


@pytest.fixture(scope="module")
def trained_run(demo_dir, tmp_path_factory):
    """One short training run through the command line, observed with -F; returns its run folder (its stdout is
    in stdout.txt two levels up)."""
    work = tmp_path_factory.mktemp("train")
    process = run_script(["-F", "observed", "with", "demo", *command_line(
        demo_dir, **{"trainer.max_epochs": EPOCHS, "swa_epoch_start": EPOCHS - 1, "swa_freq": 1,
                     "warm_up_len": 1, "ramp_down_start": 4, "ramp_down_len": 5, "lr": 5e-4,
                     "datasets.training.batch_size": 8, "models.net.s_patchout_f": 0})], cwd=work)
    (work / "stdout.txt").write_text(process.stdout)
    return str(work / "observed" / "1")


def chance_map(demo_dir):
    """The mean mAP of random scores on the evaluation clips."""
    targets = read_targets(os.path.join(demo_dir, "mp3", "eval_segments_mp3.hdf"), PackedBitsTargets(CLASSES))
    rng = np.random.default_rng(0)
    return float(np.mean([mean_average_precision(rng.random(targets.shape), targets) for _ in range(200)]))


def test_command_line_training_learns_and_records_everything(trained_run, demo_dir):
    run = read_json(os.path.join(trained_run, "run.json"))
    assert run["status"] == "COMPLETED"
    result = run["result"]
    assert result["epochs"] == EPOCHS
    chance = chance_map(demo_dir)
    assert result["ap"] > chance + 0.15 and result["best_ap"] > chance + 0.2, (result, chance)
    metrics = read_json(os.path.join(trained_run, "metrics.json"))
    for name in ("ap", "roc", "val.loss", "train.loss", "lr"):
        assert metrics[name]["steps"] == list(range(EPOCHS)), name
    assert metrics["ap"]["values"][-1] == pytest.approx(result["ap"])
    for path in ("checkpoints/last.ckpt", result["best_checkpoint"], "training_curves.png",
                 "spectrograms/epoch000_batch000.png", "csv/metrics.csv"):
        assert os.path.isfile(os.path.join(trained_run, path)), path
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(os.path.join(trained_run, "tensorboard")))
    import torch
    checkpoint = torch.load(os.path.join(trained_run, "checkpoints", "last.ckpt"), weights_only=True)
    assert checkpoint["epoch"] == EPOCHS - 1
    curves = checkpoint["callbacks"]["TrainingCurves"]["history"]  # what training_curves.png shows
    assert [epoch for epoch, _ in curves["ap"]] == list(range(1, EPOCHS + 1))
    assert [value for _, value in curves["ap"]] == pytest.approx(metrics["ap"]["values"])


def test_a_training_run_records_and_closes_with_the_eval_sets_fingerprint(trained_run, demo_dir):
    from helpers.data.clip_ids import file_clip_ids, fingerprint

    expected = fingerprint(file_clip_ids(os.path.join(demo_dir, "mp3", "eval_segments_mp3.hdf")))
    result = read_json(os.path.join(trained_run, "run.json"))["result"]
    assert result["eval_fingerprint"] == expected and result["eval_clips"] == 25, result
    assert read_json(os.path.join(trained_run, "info.json"))["eval_fingerprint"] == expected
    with open(os.path.join(trained_run, "..", "..", "stdout.txt")) as output:
        closing = [line for line in output.read().splitlines() if line.startswith("final mAP")]
    assert closing and closing[-1].endswith(f"[25 clips, fingerprint {expected}]"), closing


def test_swa_adds_a_second_set_of_metrics(trained_run):
    metrics = read_json(os.path.join(trained_run, "metrics.json"))
    # the average starts after epoch EPOCHS - 1 (1-based): validated after the last two epochs
    for name in ("swa_ap", "swa_roc", "swa_val.loss"):
        assert metrics[name]["steps"] == [EPOCHS - 2, EPOCHS - 1], name
    assert metrics["swa_ap"]["values"] != metrics["ap"]["values"][-2:]


def evaluate_in_process(demo_dir, tmp_path, **updates):
    import ex_audioset
    with contextlib.chdir(tmp_path):
        run = ex_audioset.ex.run("evaluate_only", named_configs=["demo"],
                                 config_updates={**demo_updates(demo_dir), **updates}, options={"--loglevel": "ERROR"})
    return run.result


def test_ddp_two_processes_match_single_process_evaluation(demo_dir, tmp_path):
    run_script(["-F", "observed", "with", "demo", *command_line(
        demo_dir, **{"trainer.max_epochs": 1, "swa_epoch_start": 1})], cwd=tmp_path, env_extra={"DDP": "2"})
    run_dir = tmp_path / "observed" / "1"
    run = read_json(run_dir / "run.json")
    config = read_json(run_dir / "config.json")
    assert run["status"] == "COMPLETED" and config["trainer"]["devices"] == 2
    assert config["trainer"]["strategy"] == "ddp"
    assert not (tmp_path / "observed" / "2").exists()  # only rank 0 is observed
    ddp = run["result"]
    assert ddp["val.clips"] == 25  # 13 + 12 clips gathered from the two ranks, none twice
    checkpoint = str(run_dir / "checkpoints" / "last.ckpt")
    single = evaluate_in_process(demo_dir, tmp_path, **{"models.net.checkpoint": checkpoint})
    assert single["ap"] == pytest.approx(ddp["ap"], abs=1e-6) and single["roc"] == pytest.approx(ddp["roc"], abs=1e-6)
    single_swa = evaluate_in_process(demo_dir, tmp_path, **{"models.net.checkpoint": checkpoint,
                                                            "models.net.checkpoint_weights": "swa"})
    assert single_swa["ap"] == pytest.approx(ddp["swa_ap"], abs=1e-6)


def test_evaluate_only_with_an_ensemble_of_checkpoints(trained_run, demo_dir, tmp_path):
    last = os.path.join(trained_run, "checkpoints", "last.ckpt")
    single = evaluate_in_process(demo_dir, tmp_path, **{"models.net.checkpoint": last})
    assert single["ap"] == pytest.approx(read_json(os.path.join(trained_run, "run.json"))["result"]["ap"], abs=1e-6)
    assert single["excluded_clips"] == 0
    twice = evaluate_in_process(demo_dir, tmp_path, **{
        "models.net.arch_list": [["passt_tiny", 16, 16, last], ["passt_tiny", 16, 16, last]]})
    assert twice["ap"] == pytest.approx(single["ap"], abs=1e-6)  # the mean of identical members
    best = read_json(os.path.join(trained_run, "run.json"))["result"]["best_checkpoint"]
    mixed = evaluate_in_process(demo_dir, tmp_path, **{
        "models.net.arch_list": [["passt_tiny", 16, 16, last], ["passt_tiny", 16, 16, best]]})
    assert mixed["ap"] > chance_map(demo_dir) + 0.2



def test_evaluation_leaves_out_clips_that_do_not_decode_and_counts_them(trained_run, demo_dir, tmp_path):
    import shutil

    import h5py

    base = tmp_path / "broken"
    (base / "mp3").mkdir(parents=True)
    shutil.copy(os.path.join(demo_dir, "mp3", "eval_segments_mp3.hdf"), base / "mp3" / "eval_segments_mp3.hdf")
    with h5py.File(base / "mp3" / "eval_segments_mp3.hdf", "r+") as file:
        file["mp3"][3] = np.frombuffer(b"this is not an mp3 file", dtype=np.uint8)
    last = os.path.join(trained_run, "checkpoints", "last.ckpt")
    result = evaluate_in_process(demo_dir, tmp_path, **{"models.net.checkpoint": last,
                                                        "basedataset.base_dir": str(base) + "/"})
    assert result["excluded_clips"] == 1 and result["val.clips"] == 24
    full = evaluate_in_process(demo_dir, tmp_path, **{"models.net.checkpoint": last})
    assert full["val.clips"] == 25 and result["ap"] != full["ap"]

def test_resume_continues_from_the_checkpoint_epoch(trained_run, demo_dir, tmp_path):
    import ex_audioset
    with contextlib.chdir(tmp_path):
        run = ex_audioset.ex.run(named_configs=["demo"], options={"--loglevel": "ERROR", "--file_storage": "resumed"},
                                 config_updates={**demo_updates(demo_dir), "resume": trained_run,
                                                 "trainer.max_epochs": EPOCHS + 1, "swa_epoch_start": EPOCHS - 1,
                                                 "swa_freq": 1})
    assert run.result["epochs"] == EPOCHS + 1
    metrics = read_json(tmp_path / "resumed" / "1" / "metrics.json")
    assert metrics["ap"]["steps"] == [EPOCHS]  # only the one epoch after the checkpoint was trained
    assert metrics["swa_ap"]["steps"] == [EPOCHS]  # the SWA average came back with the checkpoint


def test_mongo_observer_records_the_run(demo_dir, tmp_path, monkeypatch):
    import mongomock
    import pymongo
    import ex_audioset

    import gridfs.synchronous.grid_file as grid_file
    from mongomock.gridfs import _create_grid_out_cursor

    client = mongomock.MongoClient()
    monkeypatch.setattr(pymongo, "MongoClient", lambda *args, **kwargs: client)
    # what mongomock.gridfs.enable_gridfs_integration patches, undone after the test
    monkeypatch.setattr(grid_file, "Database", (grid_file.Database, mongomock.database.Database))
    monkeypatch.setattr(grid_file, "Collection", (grid_file.Collection, mongomock.collection.Collection))
    monkeypatch.setattr(grid_file, "GridOutCursor", _create_grid_out_cursor)
    with contextlib.chdir(tmp_path):
        ex_audioset.ex.run_commandline(["ex_audioset.py", "evaluate_only", "-m", "localhost:27017:passt_test",
                                        "--loglevel", "ERROR", "with", "demo", *command_line(demo_dir)])
    runs = list(client["passt_test"]["runs"].find())
    assert len(runs) == 1 and runs[0]["status"] == "COMPLETED"
    assert runs[0]["config"]["models"]["net"]["arch"] == "passt_tiny"
    assert 0 <= runs[0]["result"]["ap"] <= 1
    names = {metric["name"] for metric in client["passt_test"]["metrics"].find()}
    assert {"ap", "roc", "val.loss"} <= names


@pytest.mark.parametrize("updates, message", [
    ({"lr": -1.0}, "lr: must be a number > 0, got -1.0"),
    ({"models.net.arch": "passt_huge"}, "models.net.arch: unknown architecture 'passt_huge'; allowed: "),
    ({"models.net.s_patchout_t": 99}, "models.net.s_patchout_f/s_patchout_t/u_patchout: (2, 99, 0) remove the whole "
                                      "8x18 patch grid of passt_tiny; allowed: s_patchout_f < 8, s_patchout_t < 18"),
    ({"models.net.tstride": 0}, "models.net.fstride/tstride: must be positive integers, got 16, 0"),
    ({"models.net.input_tdim": 10}, "models.net.input_fdim/input_tdim: must be at least one patch (16), got 128, 10"),
    ({"models.net.n_classes": 527}, "models.net.n_classes: the dataset has 8 classes, got 527"),
    ({"trainer.precision": "8-bit"}, "trainer.precision: '8-bit' is not a precision; allowed: 32-true, 16-mixed"),
    ({"trainer.accelerator": "gpu"}, "trainer.accelerator: 'gpu' but no CUDA device is visible; allowed here: cpu"),
    ({"basedataset.eval_hdf5": "/nonexistent/eval.hdf"}, "basedataset.eval_hdf5: data file '/nonexistent/eval.hdf' "
                                                         "does not exist"),
    ({"resume": "/nonexistent/run"}, "resume: no checkpoint at '/nonexistent/run'; allowed: a run folder"),
    ({"basedataset.eval_subset": "/nonexistent/ids.txt"}, "basedataset.eval_subset: no id list at "
                                                          "'/nonexistent/ids.txt'; allowed: None, or a file of clip ids"),
])
def test_bad_config_stops_before_any_work_naming_the_key(demo_dir, tmp_path, monkeypatch, updates, message):
    import h5py
    import ex_audioset
    import helpers.procedures

    def no_work(*args, **kwargs):
        raise AssertionError("data was read or a network built before the config was checked")
    monkeypatch.setattr(h5py, "File", no_work)
    monkeypatch.setattr(helpers.procedures, "build_network", no_work)
    with contextlib.chdir(tmp_path), pytest.raises(ConfigError) as error:
        ex_audioset.ex.run(named_configs=["demo"], config_updates={**demo_updates(demo_dir), **updates},
                           options={"--loglevel": "ERROR"})
    assert str(error.value).startswith("invalid config:\n  " + message)
    assert str(error.value).count("\n") == 1  # one problem: this one
    assert not os.path.exists(tmp_path / "runs")  # nothing was trained or logged


def test_every_named_config_resolves():
    import ex_audioset
    for name in ex_audioset.ex.named_configs:
        config = resolved_config(ex_audioset.ex, name)
        assert config["models"]["net"]["n_classes"] in (527, 10), name
    config = resolved_config(ex_audioset.ex, "passt_s_swa_p16_s12_128_ap473")
    assert (config["models"]["net"]["fstride"], config["models"]["net"]["tstride"]) == (12, 12)
    ensemble = resolved_config(ex_audioset.ex, "ensemble_s16_14")["models"]["net"]["arch_list"]
    assert ensemble == [["passt_s_swa_p16_s14_128_ap471", 14, 14], ["passt_s_swa_p16_s16_128_ap473", 16, 16]]


def test_s_patchout_t_travels_from_the_command_line_to_the_model(demo_dir):
    import ex_audioset
    from helpers.procedures import build_module
    from helpers.tasks import MultiLabel
    config = resolved_config(ex_audioset.ex, "demo", **{"models.net.s_patchout_t": 3})
    assert build_module(config, MultiLabel()).net.s_patchout_t == 3


def test_model_speed_test_and_test_loaders(demo_dir, tmp_path, capsys):
    import ex_audioset
    speed = ex_audioset.ex.run("model_speed_test", named_configs=["demo"], options={"--loglevel": "ERROR"},
                               config_updates={**demo_updates(demo_dir), "speed_test_batch_size": 2}).result
    assert speed > 0
    ex_audioset.ex.run("test_loaders", named_configs=["demo"], options={"--loglevel": "ERROR"},
                       config_updates=demo_updates(demo_dir))
    out = capsys.readouterr().out
    assert "training: 104 clips; waveforms (16, 1, 96000)" in out and "test: 25 clips" in out


def test_evaluate_only_with_eval_subset_scores_exactly_the_listed_clips(demo_dir, tmp_path, capsys):
    import h5py

    from helpers.data.clip_ids import file_clip_ids, fingerprint

    eval_file = os.path.join(demo_dir, "mp3", "eval_segments_mp3.hdf")
    ids = file_clip_ids(eval_file)
    rows = np.arange(1, 25, 3)  # 8 of the 25 clips
    listed = tmp_path / "common_subset.txt"
    listed.write_text("\n".join(clip.decode() for clip in ids[rows]) + "\nnot-in-this-copy-1\nnot-in-this-copy-2\n")
    subset = evaluate_in_process(demo_dir, tmp_path, **{"basedataset.eval_subset": str(listed)})
    assert subset["val.clips"] == 8 and subset["excluded_clips"] == 0 and subset["eval_clips"] == 8
    assert subset["eval_subset_missing"] == 2 and subset["eval_fingerprint"] == fingerprint(ids[rows])
    assert (f"[8 clips, fingerprint {subset['eval_fingerprint']}, 2 eval_subset clips missing]  (8 clips evaluated, "
            "0 excluded)") in capsys.readouterr().out
    only = tmp_path / "only" / "mp3"  # a copy holding just those clips scores the same
    only.mkdir(parents=True)
    with h5py.File(eval_file, "r") as source, h5py.File(only / "eval_segments_mp3.hdf", "w") as copy:
        for key in ("audio_name", "mp3", "target"):
            copy.create_dataset(key, data=source[key][rows], dtype=source[key].dtype)
    alone = evaluate_in_process(demo_dir, tmp_path, **{"basedataset.base_dir": str(only.parent) + "/"})
    assert alone["ap"] == pytest.approx(subset["ap"], abs=1e-6) and alone["eval_fingerprint"] == subset["eval_fingerprint"]
    full = evaluate_in_process(demo_dir, tmp_path)
    assert full["val.clips"] == 25 and full["eval_fingerprint"] == fingerprint(ids) and "eval_subset_missing" not in full


def test_validation_during_training_scores_the_eval_subset(demo_dir, tmp_path):
    import ex_audioset
    from helpers.data.clip_ids import file_clip_ids

    ids = file_clip_ids(os.path.join(demo_dir, "mp3", "eval_segments_mp3.hdf"))
    listed = tmp_path / "subset.txt"
    listed.write_text("\n".join(clip.decode() for clip in ids[:10]) + "\n")
    with contextlib.chdir(tmp_path):
        run = ex_audioset.ex.run(named_configs=["demo"], options={"--loglevel": "ERROR"}, config_updates={
            **demo_updates(demo_dir), "basedataset.eval_subset": str(listed), "trainer.max_epochs": 1,
            "swa": False, "datasets.training.dataset": "balanced", "trainer.limit_train_batches": 2})
    assert run.result["val.clips"] == 10 and run.result["eval_clips"] == 10 and run.result["eval_subset_missing"] == 0
