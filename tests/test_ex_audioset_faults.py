"""ex_audioset.py under faults, through the real command line: a run killed with SIGKILL mid-epoch resumes
and repeats the uninterrupted run exactly; a run pre-empted by SIGTERM mid-epoch stops at the next step with a
checkpoint of it, INTERRUPTED, and `resume=auto` goes on mid-epoch to the metrics of the uninterrupted run; runs
with one seed agree whatever the number of data workers (several processes: tests/test_ex_audioset_cluster.py)."""
import contextlib
import json
import os
import signal
import subprocess
import time

import pytest
import torch

from helpers.preemption import PREEMPTED_EXIT_CODE
from helpers.process_tree import kill_tree
from tests.ex_audioset_runs import EPOCHS, command, config, environment, make_data, metrics, run, run_status

COMPARED = ("train.loss", "lr", "ap", "roc", "val.loss", "swa_ap", "swa_val.loss")
BATCHES_PER_EPOCH = 6


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("faults_data"))


class Background:
    """A command line running beside the test (its output in `log`); `wait()` ends it by its timeout at the latest."""

    def __init__(self, arguments, cwd, log_name, **extra_environment):
        self.log = cwd / log_name
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(arguments, cwd=cwd, env=environment(**extra_environment), stdout=log,
                                            stderr=subprocess.STDOUT)

    def wait(self, timeout=300) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(self.process.pid)
            raise AssertionError(f"did not end in {timeout} s: {self.log.read_text()[-4000:]}") from None
        finally:
            kill_tree(self.process.pid)
            self.process.wait()

    def output(self) -> str:
        return self.log.read_text()


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    """The uninterrupted run's metrics, computed beside the tests that interrupt the same run."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    whole = Background(command(data_dir, "runs"), folder, "whole.log")
    done = {}

    def run_metrics():
        if not done:
            assert whole.wait() == 0, whole.output()[-6000:]
            done.update(metrics(folder / "runs" / "1"))
        return done

    yield run_metrics
    whole.wait()


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


def test_a_run_killed_mid_epoch_resumes_and_repeats_the_uninterrupted_run(data_dir, tmp_path, uninterrupted):
    victim = Background(command(data_dir, "killed"), tmp_path, "killed.log")
    last = tmp_path / "killed" / "1" / "checkpoints" / "last.ckpt"
    seen = wait_for_checkpoints(last, victim.process, epochs=(0, 1))
    time.sleep((seen[1] - seen[0]) / 2)  # half an epoch after the checkpoint of epoch 1
    victim.process.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    restored = saved_epoch(last)  # the newest checkpoint the kill left (never a half-written one)
    later = list(range(restored + 1, EPOCHS))
    assert later, "the run was killed too late to resume"

    code, output, _ = run(command(data_dir, "killed", resume=str(tmp_path / "killed" / "1")), tmp_path, timeout=300)
    assert code == 0, output[-6000:]
    whole, after_resume = uninterrupted(), metrics(tmp_path / "killed" / "2")
    assert after_resume["train.loss"]["steps"] == later  # only the epochs after the checkpoint were trained
    for name in COMPARED:
        assert after_resume[name]["values"] == pytest.approx(at_epochs(whole, name, later), abs=1e-6, rel=0), name


def wait_for_step(folder, step, process, timeout=300):
    deadline = time.monotonic() + timeout
    while not (folder / f"step-{step}").exists():
        assert process.poll() is None, "the run ended before the step"
        assert time.monotonic() < deadline, f"no training step {step} within {timeout} s"
        time.sleep(0.02)


def test_a_run_preempted_mid_epoch_stops_at_a_step_and_resume_auto_continues_it_to_the_same_metrics(
        data_dir, tmp_path, uninterrupted):
    steps = tmp_path / "steps"
    steps.mkdir()
    victim = Background(command(data_dir, "runs"), tmp_path, "preempted.log", PASST_STEP_DIR=str(steps),
                        PASST_HOOKS_ALWAYS="1")
    wait_for_step(steps, BATCHES_PER_EPOCH + 3, victim.process)  # the 3rd step of epoch 1
    signalled = time.monotonic()
    victim.process.send_signal(signal.SIGTERM)
    assert victim.wait() == PREEMPTED_EXIT_CODE, victim.output()[-6000:]
    assert time.monotonic() - signalled < 60
    output = victim.output()
    assert "pre-empted by SIGTERM at epoch 1, after" in output and "continue it with" in output
    assert f"resume={os.path.join('runs', '1')}" in output
    assert run_status(tmp_path / "runs" / "1")["status"] == "INTERRUPTED"
    saved = torch.load(tmp_path / "runs" / "1" / "checkpoints" / "last.ckpt", weights_only=True)
    position = saved["callbacks"]["PreemptionCallback"]["position"]
    assert position["epoch"] == 1 and 3 <= position["batches"] < BATCHES_PER_EPOCH, position
    assert saved["global_step"] == BATCHES_PER_EPOCH + position["batches"]

    code, output, _ = run(command(data_dir, "runs", resume="auto"), tmp_path, timeout=300)
    assert code == 0, output[-6000:]
    assert run_status(tmp_path / "runs" / "2")["status"] == "COMPLETED"
    info = json.loads((tmp_path / "runs" / "2" / "info.json").read_text())
    assert info["resumed_from"] == {
        "checkpoint": os.path.join("runs", "1", "checkpoints", "last.ckpt"), "run": str(tmp_path / "runs" / "1"),
        "seed": 5, "epoch": 1, "global_step": saved["global_step"], "batches_into_epoch": position["batches"],
        "status": "INTERRUPTED"}
    whole, after = uninterrupted(), metrics(tmp_path / "runs" / "2")
    later = list(range(1, EPOCHS))
    assert after["train.loss"]["steps"] == later  # epoch 1 is reported once, over all its batches
    for name in COMPARED:
        assert after[name]["values"] == pytest.approx(at_epochs(whole, name, later), abs=1e-6, rel=0), name


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
