"""Launching an experiment's command line: `DDP=N` under torchrun, the default observer, the run folder."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time

from sacred.observers import FileStorageObserver

OBSERVER_FLAGS = ("-F", "--file_storage", "-m", "--mongo_db", "-s", "--sql", "-t", "--tiny_db", "-u",
                  "--unobserved", "-S", "--s3")
UNOBSERVED_COMMANDS = {"help", "print_config", "print_named_configs", "print_dependencies", "save_config",
                       "test_loaders", "preload_mp3", "model_speed_test"}


def global_rank() -> int:
    return int(os.environ.get("RANK", 0))


def launch(ex, argv: list[str] | None = None):
    """Run the sacred command line of `ex`.

    - `DDP=N` re-executes the command under `torch.distributed.run` with N processes on this node
      (`NUM_NODES`, `NODE_RANK`, `MASTER_ADDR`, `MASTER_PORT` for several nodes); a rank that fails stops
      all of them. Only rank 0 is observed (the others run with `-u`). Without `seed=` the launcher draws
      one for all processes (`with_shared_seed`).
    - Runs that train or evaluate get a file storage observer in `runs/<experiment>/` unless the command
      line names observers (`-F DIR`, `-m HOST:PORT:DB`, ...) or `-u`.
    """
    argv = list(sys.argv if argv is None else argv)
    if os.environ.get("DDP") and "TORCHELASTIC_RUN_ID" not in os.environ:
        _exec_torchrun(int(os.environ["DDP"]), with_shared_seed(argv))
    if global_rank() != 0:
        if not {"-u", "--unobserved"} & set(argv[1:]):
            argv.insert(1, "-u")
        logging.getLogger().setLevel(logging.WARNING)
    command = next((arg for arg in argv[1:] if not arg.startswith("-")), None)
    observed = command in (None, "with") or command not in UNOBSERVED_COMMANDS
    if observed and not any(arg.split("=")[0] in OBSERVER_FLAGS for arg in argv[1:]):
        ex.observers.append(FileStorageObserver(os.path.join("runs", ex.path)))
    return ex.run_commandline(argv)


def with_shared_seed(argv: list[str]) -> list[str]:
    """`argv` with `seed=N` drawn once here when it names none: sacred would draw another seed in every
    process, and the ranks' samplers must draw the same epoch to take disjoint shards of it. Nodes cannot
    share a drawn seed, so several nodes need `seed=` on the command line."""
    if any(arg.startswith("seed=") for arg in argv[1:]):
        return argv
    if int(os.environ.get("NUM_NODES", 1)) > 1:
        raise SystemExit("NUM_NODES > 1: give the same seed=N on every node's command line (the ranks' samplers "
                         "must draw the same epochs)")
    seed = int.from_bytes(os.urandom(4), "little") >> 1
    logging.getLogger(__name__).info("DDP: every process runs with seed=%d", seed)
    return argv + ([] if "with" in argv[1:] else ["with"]) + [f"seed={seed}"]


def _exec_torchrun(processes: int, argv: list[str]) -> None:
    nodes = int(os.environ.get("NUM_NODES", 1))
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}", f"--nnodes={nodes}"]
    if nodes == 1:
        command.append("--standalone")
    else:
        command += [f"--node_rank={os.environ.get('NODE_RANK', 0)}",
                    f"--master_addr={os.environ.get('MASTER_ADDR', '127.0.0.1')}",
                    f"--master_port={os.environ.get('MASTER_PORT', 29500)}"]
    logging.getLogger(__name__).info("DDP=%d: starting %d processes per node on %d node(s)", processes, processes,
                                     nodes)
    sys.stdout.flush()
    os.execv(sys.executable, command + argv)


def ddp_trainer_defaults() -> dict:
    """`devices`, `num_nodes` and `strategy` for the `trainer` config: from torchrun's environment under
    `DDP=N`, a single device otherwise."""
    if "LOCAL_WORLD_SIZE" in os.environ or os.environ.get("DDP"):
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("DDP", 1)))
        world = int(os.environ.get("WORLD_SIZE", per_node * int(os.environ.get("NUM_NODES", 1))))
        return {"devices": per_node, "num_nodes": max(world // per_node, 1), "strategy": "ddp"}
    return {"devices": 1, "num_nodes": 1, "strategy": "auto"}



def run_directory(run, experiment_name: str) -> str | None:
    """The folder for logs, checkpoints and pictures: the file storage observer's run folder, else
    `runs/<experiment>/unobserved-<time>`; None on ranks other than 0."""
    if global_rank() != 0:
        return None
    for observer in run.observers:
        if isinstance(observer, FileStorageObserver) and getattr(observer, "dir", None):
            return observer.dir
    os.makedirs(os.path.join("runs", experiment_name), exist_ok=True)
    return tempfile.mkdtemp(prefix=time.strftime("unobserved-%Y%m%d-%H%M%S-"), dir=os.path.join("runs", experiment_name))


