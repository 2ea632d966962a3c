"""Launching an experiment's command line: `DDP=N` under torchrun, the default observer, the run folder."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time

from sacred.observers import FileStorageObserver

from helpers.cluster import end_process, global_rank, print_error, world_size
from helpers.preemption import PREEMPTED_EXIT_CODE, RunPreempted

OBSERVER_FLAGS = ("-F", "--file_storage", "-m", "--mongo_db", "-s", "--sql", "-t", "--tiny_db", "-u",
                  "--unobserved", "-S", "--s3")
UNOBSERVED_COMMANDS = {"help", "print_config", "print_named_configs", "print_dependencies", "save_config",
                       "test_loaders", "preload_mp3", "model_speed_test"}


def launch(ex, argv: list[str] | None = None):
    """Run the sacred command line of `ex`.

    - `DDP=N` re-executes the command under `torch.distributed.run` with N processes on this node
      (`NUM_NODES`, `NODE_RANK`, `MASTER_ADDR`, `MASTER_PORT` for several nodes). torchrun and srun start
      the ranks directly. Only rank 0 is observed (the others run with `-u`); every rank trains with rank
      0's seed (`helpers.cluster.agree_on_seed`).
    - Runs that train or evaluate get a file storage observer in `runs/<experiment>/` unless the command
      line names observers (`-F DIR`, `-m HOST:PORT:DB`, ...) or `-u`.
    - A rank of a run of several processes that fails ends at once (`helpers.cluster.end_process`), so
      its peers' collectives fail fast and torchrun stops the job; a pre-empted run exits with
      `PREEMPTED_EXIT_CODE` after saying how to continue.
    """
    argv = list(sys.argv if argv is None else argv)
    if os.environ.get("DDP") and "TORCHELASTIC_RUN_ID" not in os.environ:
        _exec_torchrun(int(os.environ["DDP"]), argv)
    if global_rank() != 0:
        if not {"-u", "--unobserved"} & set(argv[1:]):
            argv.insert(1, "-u")
        logging.getLogger().setLevel(logging.WARNING)
    command = next((arg for arg in argv[1:] if not arg.startswith("-")), None)
    observed = command in (None, "with") or command not in UNOBSERVED_COMMANDS
    if observed and not any(arg.split("=")[0] in OBSERVER_FLAGS for arg in argv[1:]):
        ex.observers.append(FileStorageObserver(os.path.join("runs", ex.path)))
    try:
        result = ex.run_commandline(argv)
    except RunPreempted as preempted:
        if global_rank() == 0:
            print(preempted.continue_line(argv), file=sys.stderr, flush=True)
        code = PREEMPTED_EXIT_CODE
    except SystemExit as stop:  # sacred's exit after printing a failed run's error (or its usage)
        if stop.code is not None and not isinstance(stop.code, int):
            print(stop.code, file=sys.stderr)
        code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
    except BaseException as error:  # noqa: BLE001  (e.g. KeyboardInterrupt: ends the rank like any failure)
        print_error(error)
        code = 1
    else:
        if world_size() > 1:
            _leave_process_group()
        return result
    if world_size() > 1 or code == PREEMPTED_EXIT_CODE:
        end_process(code)
    raise SystemExit(code)


def _leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


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


