"""Scale: an index-scale full AudioSet (2,041,789 training clips in upstream's HDF5 layout) and the real
DDP command line on it.

Writes the balanced (20,550 rows), unbalanced (2,021,239) and eval (20,371) files the way upstream's
preparation script lays them out (`audio_name` S20, `mp3` variable-length uint8, `target` np.packbits of
527 classes, contiguous datasets), every row holding the same short real mp3 (0.1 s: the index is full size,
the audio is not) and AudioSet-like labels (1-4 per clip, a long-tailed class distribution; every class in
the balanced file). Then measures, each in a process of its own:

- the class-balanced sample weights: seconds, peak RSS and its rise during the call; with
  `--upstream-weights` also upstream's formula (the dense unpacked targets, a float32 torch matrix of
  clips x classes) and the largest difference between the two;
- what else grows with the clip count: building and validating the datasets, the sampler's epoch draw and
  DDP shards, waveform-mixup partner draws, what a DataLoader worker holds, the gather of eval predictions
  (20,371 x 527) over 2 gloo ranks;
- `DDP=N python ex_audioset.py with ...` (passt_tiny, `--steps` training steps, then the full validation):
  time to the first training step and the peak RSS (VmHWM) and PSS of every process.

    python benchmarks/scale.py                               # full size (~2.4 GB in --dir, several minutes)
    python benchmarks/scale.py --clips 200000 --upstream-weights
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.index_scale_audioset import (CLASSES, add_dataset_arguments, epoch_len,  # noqa: E402,F401
                                             make_index_scale_audioset)
from benchmarks.process_memory import _private_mib, mib, peak_rss_mib, reset_peak_rss  # noqa: E402
from helpers.process_tree import descendants  # noqa: E402
from helpers.data import DataOptions  # noqa: E402

# --- measurements in their own processes ---------------------------------------------------------------
def upstream_formula(files: list[str], offset: float = 100, summed: bool = True) -> np.ndarray:
    """Upstream's formula as upstream computes it: all targets unpacked, a float32 clips x classes torch matrix."""
    import torch

    labels = []
    for path in files:
        with h5py.File(path, "r") as file:
            labels.append(np.unpackbits(file["target"][:], axis=-1, count=CLASSES))
    labels = torch.as_tensor(np.concatenate(labels))
    class_weights = 1000.0 / (labels.long().sum(0).float() + offset)
    weighted = labels * class_weights
    return (weighted.sum(dim=1) if summed else weighted.max(dim=1).values).numpy()


def measure_weights(kind: str, files: list[str], out: str) -> dict:
    from helpers.data import class_balanced_weights_from_hdf5
    from helpers.data.atomic import atomic_open

    before = reset_peak_rss()
    started = time.perf_counter()
    weights = upstream_formula(files) if kind == "upstream" else class_balanced_weights_from_hdf5(files, CLASSES)
    seconds = time.perf_counter() - started
    peak = peak_rss_mib()
    with atomic_open(out) as file:
        np.save(file, weights)
    packed = 0
    for path in files:
        with h5py.File(path, "r") as file:
            packed += file["target"].size
    return {"kind": kind, "clips": len(weights), "seconds": seconds, "rss_before_mib": before, "peak_rss_mib": peak,
            "rise_mib": peak - before, "packed_targets_mib": mib(packed), "weights_mib": mib(weights.nbytes)}


def _gather_rank(rank: int, world: int, rendezvous: str, rows: int, queue) -> None:
    import torch
    import torch.distributed as dist

    from helpers.lightning_module import PaSSTModule

    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    mine = len(range(rank, rows, world))
    outputs = {key: torch.rand(mine, CLASSES) for key in ("scores", "labels", "mask")}
    outputs["loss"] = torch.rand(mine)
    before, started = reset_peak_rss(), time.perf_counter()
    gathered = {key: PaSSTModule.gather_rows(None, value) for key, value in outputs.items()}
    seconds = time.perf_counter() - started
    queue.put({"rank": rank, "rows": len(gathered["scores"]), "seconds": seconds, "rise_mib": peak_rss_mib() - before,
               "gathered_mib": mib(sum(value.nbytes for value in gathered.values()))})
    dist.destroy_process_group()


def measure_gather(rows: int, world: int = 2) -> list[dict]:
    """Time and memory of gathering `rows` eval predictions (scores, labels, mask, loss) over gloo ranks."""
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    queue = context.Queue()
    with tempfile.TemporaryDirectory() as scratch:
        processes = [context.Process(target=_gather_rank, args=(rank, world, os.path.join(scratch, "rdv"), rows, queue))
                     for rank in range(world)]
        for process in processes:
            process.start()
        results = sorted((queue.get(timeout=300) for _ in processes), key=lambda result: result["rank"])
        for process in processes:
            process.join(timeout=60)
    return results


def measure_components(paths: dict[str, str], weights_file: str, eval_rows: int) -> dict:
    import audioset.dataset as audioset

    results = {}
    started, before = time.perf_counter(), reset_peak_rss()
    training = audioset.training_set([paths["balanced"], paths["unbalanced"]], DataOptions(wavmix=True, roll=True))
    test = audioset.evaluation_set(paths["eval"], DataOptions())
    results["datasets"] = {"seconds": time.perf_counter() - started, "peak_rss_rise_mib": peak_rss_mib() - before,
                           "training_clips": len(training), "eval_clips": len(test),
                           "pickled_training_set_bytes": len(pickle.dumps(training)),
                           "pickled_test_set_bytes": len(pickle.dumps(test))}
    weights = np.load(weights_file)
    for replicas in (2, 8):
        started = time.perf_counter()
        samplers = [audioset.get_ft_weighted_sampler(weights, epoch_len(len(weights)), False, num_replicas=replicas, rank=rank, seed=1)
                    for rank in range(replicas)]
        built = time.perf_counter() - started
        started = time.perf_counter()
        shards = [np.fromiter(sampler, dtype=np.int64) for sampler in samplers]
        per_rank = (time.perf_counter() - started) / replicas
        union = np.concatenate(shards)
        draw = samplers[0].global_draw()
        results[f"sampler_{replicas}_ranks"] = {
            "construct_seconds_all_ranks": built, "epoch_draw_seconds_per_rank": per_rank,
            "disjoint": bool(len(np.unique(union)) == len(union)),
            "cover_the_draw": bool(np.array_equal(np.sort(union), np.sort(draw))),
            "held_mib_per_rank": mib(samplers[0].probabilities.nbytes)}
    mixup = training
    draws = 10000
    started = time.perf_counter()
    for index in range(draws):
        mixup.random(index).integers(len(mixup.dataset))
    results["wavmix_partner_draw_us"] = (time.perf_counter() - started) / draws * 1e6
    # a DataLoader worker: fork, open the file lazily, load 300 random training clips; what it adds privately
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        first = _private_mib()
        rng = np.random.default_rng(0)
        for index in rng.integers(len(training), size=300):
            training[int(index)]
        os.write(writer, json.dumps({"private_before_mib": first, "private_after_mib": _private_mib()}).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        worker = json.loads(pipe.read())
    os.waitpid(pid, 0)
    worker["added_mib"] = worker["private_after_mib"] - worker["private_before_mib"]
    results["worker_300_clips"] = worker
    results["eval_gather"] = measure_gather(eval_rows)
    return results


def run_in_subprocess(*args: str) -> dict:
    output = subprocess.run([sys.executable, os.path.abspath(__file__), *args], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    if output.returncode != 0:
        raise RuntimeError(f"measuring {args[1]} failed (exit {output.returncode}):\n{output.stderr[-4000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


# --- the real command line ---------------------------------------------------------------------------
def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as file:
            return file.read().decode(errors="replace")
    except OSError:
        return None


class ProcessWatcher(threading.Thread):
    """Polls the process tree under `root`: each process's role, peak RSS (VmHWM) and largest PSS. A process
    that replaces its program (the launcher exec-ing torchrun) counts as a new entry."""

    def __init__(self, root: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.processes: dict[tuple[int, str], dict] = {}
        self.stopped = threading.Event()

    def role(self, pid: int, command: str) -> str:
        environ = dict(item.split("=", 1) for item in (_read(f"/proc/{pid}/environ") or "").split("\0") if "=" in item)
        status = _read(f"/proc/{pid}/status") or ""
        match = re.search(r"PPid:\s+(\d+)", status)
        parent = next((entry for (other, _), entry in self.processes.items() if match and other == int(match.group(1))),
                      None)
        if "torch.distributed.run" in command:
            return "torchrun agent"
        if pid == self.root:
            return "launcher (before exec-ing torchrun)"
        if parent is not None and parent["role"].startswith("rank") and command == parent["command"]:
            return f"{parent['role']} DataLoader worker"
        if "RANK" in environ and command.split()[1:2] == ["-u"]:
            return f"rank {environ['RANK']}"
        return "other: " + command[:40]

    def poll(self, with_pss: bool) -> None:
        for pid in descendants(self.root):
            status, command = _read(f"/proc/{pid}/status"), " ".join((_read(f"/proc/{pid}/cmdline") or "").split("\0"))
            if not status or not command.strip():
                continue
            entry = self.processes.get((pid, command))
            if entry is None:
                entry = self.processes[(pid, command)] = {"pid": pid, "role": self.role(pid, command), "command": command,
                                                          "peak_rss_mib": 0.0, "peak_pss_mib": 0.0, "polls": 0}
            entry["polls"] += 1
            match = re.search(r"VmHWM:\s+(\d+)", status)
            if match:
                entry["peak_rss_mib"] = max(entry["peak_rss_mib"], int(match.group(1)) / 1024)
            if with_pss:
                rollup = _read(f"/proc/{pid}/smaps_rollup") or ""
                match = re.search(r"^Pss:\s+(\d+)", rollup, re.M)
                if match:
                    entry["peak_pss_mib"] = max(entry["peak_pss_mib"], int(match.group(1)) / 1024)

    def run(self) -> None:
        tick = 0
        while not self.stopped.is_set():
            self.poll(with_pss=tick % 5 == 0)
            tick += 1
            time.sleep(self.interval)


FIRST_STEP = re.compile(r"Epoch 0:.*?\b1/\d+")


def run_command_line(directory: str, clips: int, ddp: int, steps: int, workers: int, timeout: float) -> dict:
    """`DDP=ddp python ex_audioset.py with ...` on the index-scale files; returns timings and per-process memory."""
    for stale in glob.glob(os.path.join(directory, "mp3", "*.weights-*.npy")):
        os.remove(stale)  # rank 0 computes the weights in this run (a later run would read them)
    command = [sys.executable, "ex_audioset.py", "-F", os.path.join(directory, "runs"), "with",
               f"basedataset.base_dir={directory}/", f"basedataset.epoch_len={epoch_len(clips)}",
               "basedataset.clip_length=1", "models.net.arch=passt_tiny",
               "models.net.pretrained=False", "models.net.fstride=16", "models.net.tstride=16",
               "models.net.input_tdim=98", "models.net.s_patchout_t=2", "models.net.s_patchout_f=1",
               "datasets.training.batch_size=12", f"datasets.training.num_workers={workers}",
               "datasets.test.batch_size=20", f"datasets.test.num_workers={workers}", "trainer.max_epochs=1",
               f"trainer.limit_train_batches={steps}", "trainer.accelerator=cpu", "trainer.precision=32"]
    environment = {**os.environ, "DDP": str(ddp), "PYTHONPATH": ROOT, "PYTHONUNBUFFERED": "1"}
    print(f"running: DDP={ddp} {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watcher = ProcessWatcher(process.pid)
    watcher.start()
    events: dict[str, float] = {}
    tail: list[str] = []
    buffer = b""
    try:
        deadline = started + timeout
        while True:
            chunk = process.stdout.read1(65536)
            if not chunk:
                break
            buffer += chunk
            *pieces, buffer = re.split(rb"[\r\n]", buffer)
            now = time.perf_counter() - started
            for piece in pieces:
                text = piece.decode(errors="replace").strip()
                if not text:
                    continue
                tail = (tail + [text])[-300:]
                if "class-balanced weights for" in text:
                    events.setdefault("weights_ready_s", now)
                    match = re.search(r"in ([\d.]+) s", text)
                    if match:
                        events["weights_compute_s"] = float(match.group(1))
                if FIRST_STEP.search(text):
                    events.setdefault("first_step_s", now)
                if text.startswith("final mAP"):
                    events["final_line"] = text
            if time.perf_counter() > deadline:
                process.kill()
                raise TimeoutError(f"the command line ran past {timeout} s")
        returncode = process.wait()
    finally:
        watcher.stopped.set()
        watcher.join()
    events["total_s"] = time.perf_counter() - started
    if returncode != 0:
        print("\n".join(tail), file=sys.stderr)
        raise RuntimeError(f"DDP={ddp} ex_audioset.py exited with {returncode}")
    return {"ddp": ddp, "steps": steps, "workers_per_rank": workers, **events,
            "processes": sorted((entry for entry in watcher.processes.values()  # (not the forks that exec git etc.)
                                 if not entry["role"].startswith("other") and entry["polls"] >= 5),
                                key=lambda entry: (entry["role"], entry["pid"])),
            "other_processes": sorted({entry["role"] for entry in watcher.processes.values()
                                       if entry["role"].startswith("other")})}


# --- report --------------------------------------------------------------------------------------------
def report(results: dict) -> None:
    print("\n== class-balanced weights ==")
    for entry in results["weights"]:
        print(f"{entry['kind']:9s} {entry['clips']:>10,} clips: {entry['seconds']:6.2f} s, peak RSS "
              f"{entry['peak_rss_mib']:8,.0f} MiB (rise {entry['rise_mib']:8,.0f} MiB over {entry['rss_before_mib']:,.0f}"
              f" MiB before the call); packed targets {entry['packed_targets_mib']:.0f} MiB, weights "
              f"{entry['weights_mib']:.0f} MiB")
    if "max_relative_difference_to_upstream" in results:
        print(f"largest relative difference to upstream's float32 weights: "
              f"{results['max_relative_difference_to_upstream']:.2e}")
    components = results.get("components")
    if components:
        datasets = components["datasets"]
        print(f"\n== what grows with the clip count ==\n"
              f"datasets: {datasets['training_clips']:,} training + {datasets['eval_clips']:,} eval clips built and "
              f"validated in {datasets['seconds']:.3f} s, peak RSS +{datasets['peak_rss_rise_mib']:.1f} MiB; pickled "
              f"(what a spawned worker receives): {datasets['pickled_training_set_bytes']:,} B training, "
              f"{datasets['pickled_test_set_bytes']:,} B eval")
        for replicas in (2, 8):
            sampler = components[f"sampler_{replicas}_ranks"]
            print(f"sampler, {replicas} ranks: built in {sampler['construct_seconds_all_ranks']:.3f} s (all ranks), "
                  f"epoch draw + shard {sampler['epoch_draw_seconds_per_rank']:.3f} s per rank, holds "
                  f"{sampler['held_mib_per_rank']:.1f} MiB per rank; shards disjoint: {sampler['disjoint']}, "
                  f"cover the draw: {sampler['cover_the_draw']}")
        worker = components["worker_300_clips"]
        print(f"waveform-mixup partner draw: {components['wavmix_partner_draw_us']:.1f} us; a forked worker after "
              f"300 random clips: +{worker['added_mib']:.1f} MiB private memory")
        for rank in components["eval_gather"]:
            print(f"eval gather, rank {rank['rank']}: {rank['rows']:,} rows ({rank['gathered_mib']:.0f} MiB) in "
                  f"{rank['seconds']:.2f} s, peak RSS +{rank['rise_mib']:.0f} MiB")
    run = results.get("command_line")
    if run:
        print(f"\n== DDP={run['ddp']} ex_audioset.py ({run['steps']} steps, {run['workers_per_rank']} workers per rank "
              f"and loader) ==")
        for key in ("weights_compute_s", "weights_ready_s", "first_step_s", "total_s"):
            if key in run:
                print(f"{key:20s} {run[key]:8.1f}")
        print(run.get("final_line", "(no final line)"))
        for entry in run["processes"]:
            print(f"  {entry['role']:32s} pid {entry['pid']:>7}: peak RSS {entry['peak_rss_mib']:7,.0f} MiB, "
                  f"peak PSS {entry['peak_pss_mib']:7,.0f} MiB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(parser)
    parser.add_argument("--upstream-weights", action="store_true", help="also time upstream's formula")
    parser.add_argument("--ddp", type=int, default=2, help="processes of the command-line run (0: skip it)")
    parser.add_argument("--steps", type=int, default=5, help="training steps of the command-line run")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers per rank and loader")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)  # internal: one measurement per process
    args = parser.parse_args(argv)
    if args.measure:
        kind, *rest = args.measure
        if kind == "components":
            result = measure_components(json.loads(rest[0]), rest[1], int(rest[2]))
        else:
            result = measure_weights(kind, rest[1:], rest[0])
        print(json.dumps(result))
        return
    directory = os.path.abspath(args.dir)
    paths = make_index_scale_audioset(directory, args.clips, args.eval_clips)
    training_files = [paths["balanced"], paths["unbalanced"]]
    results = {"clips": args.clips, "weights": []}
    ours = os.path.join(directory, "weights-ours.npy")
    results["weights"].append(run_in_subprocess("--measure", "ours", ours, *training_files))
    if args.upstream_weights:
        theirs = os.path.join(directory, "weights-upstream.npy")
        results["weights"].append(run_in_subprocess("--measure", "upstream", theirs, *training_files))
        mine, upstream = np.load(ours), np.load(theirs).astype(np.float64)
        results["max_relative_difference_to_upstream"] = float(np.max(np.abs(mine - upstream) / np.maximum(mine, 1e-300)))
    results["components"] = run_in_subprocess("--measure", "components", json.dumps(paths), ours,
                                              str(args.eval_clips))
    if args.ddp:
        results["command_line"] = run_command_line(directory, args.clips, args.ddp, args.steps, args.workers, args.timeout)
    report(results)
    if args.json:
        from helpers.data.atomic import write_text

        write_text(args.json, json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
