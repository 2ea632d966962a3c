"""Shared pieces of the tests that run ex_audioset.py's real command line in other processes: the demo data,
a tiny config, the environment (with tests/process_hooks first on PYTHONPATH), and running a command so that
it, its ranks and their workers end by a timeout at the latest (`helpers.process_tree.run_tree`)."""
import json
import os
import sys

from audioset.prepare_scripts.make_demo_dataset import make_demo_dataset
from helpers.process_tree import run_tree, stack_dumps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOOKS = os.path.join(ROOT, "tests", "process_hooks")
CLASSES, SECONDS, EPOCHS = 8, 3, 5


def make_data(directory) -> str:
    make_demo_dataset(directory, n_train=48, n_eval=16, n_unbalanced=8, n_classes=CLASSES, clip_length=SECONDS)
    return str(directory)


def config(data_dir, **extra):
    """Config updates of the demo config: a tiny PaSST, 6 batches per epoch, one data worker, SWA from epoch 2."""
    return {"basedataset.base_dir": data_dir + "/", "basedataset.num_of_classes": CLASSES,
            "basedataset.clip_length": SECONDS, "basedataset.epoch_len": 48, "basedataset.wavmix": 1, "seed": 5,
            "models.net.n_classes": CLASSES, "models.net.input_tdim": 100 * SECONDS - 2,
            "datasets.training.batch_size": 8, "datasets.training.num_workers": 1, "datasets.test.num_workers": 0,
            "trainer.enable_progress_bar": False, "trainer.max_epochs": EPOCHS, "spectrogram_batches": 0,
            "swa_epoch_start": 2, "swa_freq": 1, "warm_up_len": 1, "ramp_down_start": 2, "ramp_down_len": 3, **extra}


def command(data_dir, observer_dir, without=(), **extra):
    """The command line of ex_audioset.py with `config(data_dir, **extra)` (less the keys in `without`)."""
    updates = {key: value for key, value in config(data_dir, **extra).items() if key not in without}
    return [sys.executable, os.path.join(ROOT, "ex_audioset.py"), "-F", observer_dir, "with", "demo",
            *[f"{key}={value}" for key, value in updates.items()]]


def environment(**extra):
    return {**os.environ, "PYTHONPATH": os.pathsep.join([HOOKS, ROOT]), "OMP_NUM_THREADS": "1", **extra}


def run(arguments, cwd, timeout=240, **extra_environment):
    """Run a command line to its end (at most `timeout` s: then every process it started is killed, their
    stacks are in the error), returning (exit code, output, processes that outlived it)."""
    try:
        finished = run_tree(arguments, timeout, on_timeout=stack_dumps, cwd=cwd, env=environment(**extra_environment))
    except Exception as error:
        stacks = getattr(error, "stacks", None)
        raise AssertionError(f"{arguments[1:3]} did not end in {timeout} s:\n{(getattr(error, 'output', '') or '')[-4000:]}"
                             f"\n{stacks or ''}"[-30000:]) from None
    return finished.returncode, finished.stdout, finished.left_running


def run_status(run_dir) -> dict:
    with open(os.path.join(run_dir, "run.json")) as file:
        return json.load(file)


def metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.json")) as file:
        return json.load(file)


def records(record_dir, epoch=0) -> dict[int, dict]:
    """What each rank's training loader drew for `epoch` (tests/process_hooks' PASST_RECORD_DIR), by rank."""
    found = {}
    for name in os.listdir(record_dir):
        if name.endswith(f"-epoch{epoch}.json"):
            with open(os.path.join(record_dir, name)) as file:
                found[int(name[4:name.index("-")])] = json.load(file)
    return found
