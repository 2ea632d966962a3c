"""ex_audioset.py under faults, through the real command line: a run killed with SIGKILL mid-epoch resumes
and repeats the uninterrupted run exactly; runs with one seed agree whatever the number of data workers;
(several processes and their faults: tests/test_ex_audioset_cluster.py)."""
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from audioset.prepare_scripts.make_demo_dataset import make_demo_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES, SECONDS, EPOCHS = 8, 3, 5
COMPARED = ("train.loss", "lr", "ap", "roc", "val.loss", "swa_ap", "swa_val.loss")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults_data")
    make_demo_dataset(out, n_train=48, n_eval=16, n_unbalanced=8, n_classes=CLASSES, clip_length=SECONDS)
    return str(out)


def config(data_dir, **extra):
    """Config updates of the demo config: a tiny PaSST, 6 batches per epoch, one data worker, SWA from epoch 2."""
    return {"basedataset.base_dir": data_dir + "/", "basedataset.num_of_classes": CLASSES,
            "basedataset.clip_length": SECONDS, "basedataset.epoch_len": 48, "basedataset.wavmix": 1, "seed": 5,
            "models.net.n_classes": CLASSES, "models.net.input_tdim": 100 * SECONDS - 2,
            "datasets.training.batch_size": 8, "datasets.training.num_workers": 1, "datasets.test.num_workers": 0,
            "trainer.enable_progress_bar": False, "trainer.max_epochs": EPOCHS, "spectrogram_batches": 0,
            "swa_epoch_start": 2, "swa_freq": 1, "warm_up_len": 1, "ramp_down_start": 2, "ramp_down_len": 3, **extra}


def command(data_dir, observer_dir, **extra):
    return [sys.executable, os.path.join(ROOT, "ex_audioset.py"), "-F", observer_dir, "with", "demo",
            *[f"{key}={value}" for key, value in config(data_dir, **extra).items()]]


def environment(**extra):
    return {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", **extra}


def start(arguments, cwd, log_name):
    log = open(cwd / log_name, "w")
    return subprocess.Popen(arguments, cwd=cwd, env=environment(), stdout=log, stderr=subprocess.STDOUT)


def finish(process, cwd, log_name, timeout=300):
    assert process.wait(timeout=timeout) == 0, (cwd / log_name).read_text()[-6000:]


def metrics(run_dir):
    with open(run_dir / "metrics.json") as file:
        return json.load(file)


def at_epochs(run_metrics, name, epochs):
    by_epoch = dict(zip(run_metrics[name]["steps"], run_metrics[name]["values"]))
    return [by_epoch[epoch] for epoch in epochs]


def saved_epoch(path):
    with contextlib.suppress(FileNotFoundError):
        return torch.load(path, weights_only=True)["epoch"]
    return None


def wait_for_checkpoints(path, process, epochs, timeout=300):
    """When (monotonic time) `path` first held each of `epochs`; fails if the process ends first."""
    seen, deadline, mtime = {}, time.monotonic() + timeout, None
    while len(seen) < len(epochs):
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, f"no checkpoint of epochs {epochs} in {path}"
        if os.path.exists(path) and os.path.getmtime(path) != mtime:
            mtime = os.path.getmtime(path)
            epoch = saved_epoch(path)
            if epoch in epochs:
                seen.setdefault(epoch, time.monotonic())
        time.sleep(0.02)
    return seen


def test_a_run_killed_mid_epoch_resumes_and_repeats_the_uninterrupted_run(data_dir, tmp_path):
    uninterrupted = start(command(data_dir, "whole"), tmp_path, "whole.log")
    victim = start(command(data_dir, "killed"), tmp_path, "killed.log")
    last = tmp_path / "killed" / "1" / "checkpoints" / "last.ckpt"
    seen = wait_for_checkpoints(last, victim, epochs=(0, 1))
    time.sleep((seen[1] - seen[0]) / 2)  # half an epoch after the checkpoint of epoch 1
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    restored = saved_epoch(last)  # the newest checkpoint the kill left (never a half-written one)
    later = list(range(restored + 1, EPOCHS))
    assert later, "the run was killed too late to resume"
    finish(uninterrupted, tmp_path, "whole.log")

    resumed = subprocess.run(command(data_dir, "killed", resume=str(tmp_path / "killed" / "1")), cwd=tmp_path,
                             env=environment(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-6000:]
    whole, after_resume = metrics(tmp_path / "whole" / "1"), metrics(tmp_path / "killed" / "2")
    assert after_resume["train.loss"]["steps"] == later  # only the epochs after the checkpoint were trained
    for name in COMPARED:
        assert after_resume[name]["values"] == pytest.approx(at_epochs(whole, name, later), abs=1e-6, rel=0), name


def train_in_process(data_dir, tmp_path, **updates):
    """Train 2 epochs in this process; returns the run's metrics."""
    import ex_audioset
    with contextlib.chdir(tmp_path):
        run = ex_audioset.ex.run(named_configs=["demo"], options={"--loglevel": "ERROR", "--file_storage": "runs"},
                                 config_updates=config(data_dir, **{"trainer.max_epochs": 2, **updates}))
    return metrics(tmp_path / "runs" / str(run._id))


def test_the_seed_alone_decides_the_losses_whatever_the_number_of_workers(data_dir, tmp_path):
    """Patchout, mixup, augmentation and sampling all follow `seed`: equal runs, also with 0 or 2 workers."""
    first, second, without_workers, other_seed = (
        train_in_process(data_dir, tmp_path, **updates) for updates in (
            {"datasets.training.num_workers": 2}, {"datasets.training.num_workers": 2},
            {"datasets.training.num_workers": 0}, {"datasets.training.num_workers": 2, "seed": 6}))
    for name in ("train.loss", "val.loss", "ap"):
        assert first[name]["values"] == second[name]["values"] == without_workers[name]["values"], name
    assert first["train.loss"]["values"][0] != other_seed["train.loss"]["values"][0]
