"""A failing rank under load: repeats `DDP=2 python ex_audioset.py with demo ...` with an error injected into
rank 1's first training step, while other CPU-bound processes load the machine, and prints how many runs
ended (non-zero, showing the error, nothing left running) and in what time. A run still going after
`--hang-after` seconds counts as hung: the stacks of all its processes are printed (py-spy), then its whole
tree is killed.

    python benchmarks/failing_rank.py                 # 20 runs, 2 loading processes
    python benchmarks/failing_rank.py --runs 5 --load 1 --hang-after 60
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from helpers.process_tree import run_tree, stack_dumps  # noqa: E402

INJECTED = "injected failure on rank 1 at batch 0"
HOOKS = os.path.join(ROOT, "tests", "process_hooks")  # PASST_FAIL_RANK=1: rank 1 raises in its first step
CLASSES, SECONDS = 8, 3


def demo_command(data_dir: str, observer_dir: str, max_epochs: int = 2, **extra) -> list[str]:
    """ex_audioset.py on the small demo data: a tiny PaSST, 6 batches of 8 per epoch, one data worker."""
    updates = {"basedataset.base_dir": data_dir + "/", "basedataset.num_of_classes": CLASSES,
               "basedataset.clip_length": SECONDS, "basedataset.epoch_len": 48, "seed": 5,
               "models.net.n_classes": CLASSES, "models.net.input_tdim": 100 * SECONDS - 2,
               "datasets.training.batch_size": 8, "datasets.training.num_workers": 1, "datasets.test.num_workers": 0,
               "trainer.enable_progress_bar": False, "trainer.max_epochs": max_epochs, "spectrogram_batches": 0,
               **extra}
    return [sys.executable, os.path.join(ROOT, "ex_audioset.py"), "-F", observer_dir, "with", "demo",
            *[f"{key}={value}" for key, value in updates.items()]]


def _spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def one_run(directory: str, index: int, hang_after: float) -> dict:
    marks = os.path.join(directory, f"marks{index}")
    os.makedirs(marks)
    environment = {**os.environ, "DDP": "2", "OMP_NUM_THREADS": "1", "PASST_FAIL_RANK": "1", "PASST_STEP_DIR": marks,
                   "PYTHONPATH": os.pathsep.join([HOOKS, ROOT])}
    started = time.monotonic()
    try:
        finished = run_tree(demo_command(os.path.join(directory, "data"), os.path.join(directory, f"runs{index}")),
                            hang_after, on_timeout=stack_dumps, cwd=directory, env=environment)
        output, returncode, stacks, left = finished.stdout, finished.returncode, None, finished.left_running
    except subprocess.TimeoutExpired as error:  # hung
        output, returncode, stacks, left = error.output or "", None, error.stacks, []
    seconds, ended = time.monotonic() - started, time.time()
    try:
        with open(os.path.join(marks, "failed-at")) as file:
            after_failure = ended - float(file.read())
    except (OSError, ValueError):
        after_failure = None
    return {"run": index, "seconds": seconds, "after_failure": after_failure, "returncode": returncode, "shows_error": INJECTED in output,
            "hung": returncode is None, "stacks": stacks, "left_running": left, "tail": output[-2000:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--load", type=int, default=2, help="CPU-bound processes running beside the runs")
    parser.add_argument("--hang-after", type=float, default=120.0, help="seconds after which a run counts as hung")
    args = parser.parse_args(argv)
    from audioset.prepare_scripts.make_demo_dataset import make_demo_dataset

    with tempfile.TemporaryDirectory(prefix="failing-rank-") as directory:
        make_demo_dataset(os.path.join(directory, "data"), n_train=48, n_eval=16, n_unbalanced=8, n_classes=CLASSES,
                          clip_length=SECONDS)
        stop = multiprocessing.Event()
        loaders = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.load)]
        for loader in loaders:
            loader.start()
        results = []
        try:
            for index in range(args.runs):
                result = one_run(directory, index, args.hang_after)
                results.append(result)
                state = "HUNG" if result["hung"] else f"exit {result['returncode']}"
                after = result["after_failure"]
                print(f"run {index + 1:2d}/{args.runs}: {state} after {result['seconds']:.1f} s"
                      + (f" ({after:.1f} s after the injected failure)" if after is not None else "")
                      + f", error shown: {result['shows_error']}, processes left: {len(result['left_running'])}",
                      flush=True)
                if result["hung"]:
                    print(result["stacks"] or "", flush=True)
                elif result["returncode"] == 0 or not result["shows_error"]:
                    print(result["tail"], flush=True)
        finally:
            stop.set()
            for loader in loaders:
                loader.join()
    ended = [r for r in results if not r["hung"] and r["returncode"] not in (0, None) and r["shows_error"]
             and not r["left_running"]]
    times = [r["seconds"] for r in ended]
    after = [r["after_failure"] for r in ended if r["after_failure"] is not None]
    print(f"\n{len(ended)} of {len(results)} runs ended non-zero showing the error with nothing left running "
          f"({sum(r['hung'] for r in results)} hung), with {args.load} CPU-bound process(es) beside them"
          + (f"; seconds from the command's start: median {statistics.median(times):.1f}, max {max(times):.1f}"
             if times else "")
          + (f"; from the injected failure to the job's end: median {statistics.median(after):.1f}, "
             f"max {max(after):.1f}" if after else ""))
    return 0 if len(ended) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
