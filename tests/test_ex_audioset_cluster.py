"""ex_audioset.py on two processes, started the ways clusters start them -- DDP=2, torchrun, srun (its SLURM_*
environment) and two nodes -- on loopback: every rank trains with rank 0's seed, so the ranks' shards of an
epoch are disjoint; ranks given different seeds refuse to start; a rank that fails ends the whole job fast,
its error shown once, the run FAILED and nothing left running; a pre-emption signal to one rank stops all of
them at one step, and resume=auto continues the run."""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from helpers.process_tree import descendants, kill_tree
from tests.ex_audioset_runs import command, environment, make_data, records, run, run_status

SHORT = {"trainer.max_epochs": 1, "trainer.limit_train_batches": 2, "swa": False}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("cluster_data"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_seed_and_disjoint_shards(record_dir) -> int:
    drawn = records(record_dir)
    assert sorted(drawn) == [0, 1], drawn.keys()
    assert drawn[0]["seed"] == drawn[1]["seed"]
    assert drawn[0]["indices"] and not set(drawn[0]["indices"]) & set(drawn[1]["indices"])
    return drawn[0]["seed"]


def side_by_side(*commands: tuple[dict, list[str]]) -> list[str]:
    """One shell command line starting each (environment, command) at once and failing if any fails."""
    starts = [" ".join([f"{key}={shlex.quote(str(value))}" for key, value in env.items()] + [shlex.join(cmd)])
              for env, cmd in commands]
    script = " ".join(f"env {start} & p{index}=$!;" for index, start in enumerate(starts))
    script += " status=0; " + " ".join(f"wait $p{index} || status=1;" for index in range(len(starts)))
    return ["bash", "-c", script + " exit $status"]


def test_ddp_2_without_a_seed_trains_every_rank_with_one_seed(data_dir, tmp_path):
    code, output, left = run(command(data_dir, "runs", without=("seed",), **SHORT), tmp_path, DDP="2",
                             PASST_RECORD_DIR=str(tmp_path))
    assert code == 0, output[-4000:]
    seed = one_seed_and_disjoint_shards(tmp_path)
    assert run_status(tmp_path / "runs" / "1")["status"] == "COMPLETED" and left == []
    assert json.loads((tmp_path / "runs" / "1" / "config.json").read_text())["seed"] == seed


def test_torchrun_without_a_seed_trains_every_rank_with_rank_0s_seed(data_dir, tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    code, output, _ = run(torchrun + command(data_dir, "runs", without=("seed",), **SHORT)[1:], tmp_path,
                          PASST_RECORD_DIR=str(tmp_path))
    assert code == 0, output[-4000:]
    one_seed_and_disjoint_shards(tmp_path)


def srun_task(rank: int, port: int, record_dir) -> dict:
    """What srun sets for task `rank` of 2 on one node (Lightning's SLURM environment reads these)."""
    return {"SLURM_NTASKS": 2, "SLURM_PROCID": rank, "SLURM_LOCALID": rank, "SLURM_NODEID": 0, "SLURM_NNODES": 1,
            "SLURM_NTASKS_PER_NODE": 2, "SLURM_JOB_ID": 4242, "SLURM_JOB_NAME": "passt", "SLURM_NODELIST": "127.0.0.1",
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "PASST_RECORD_DIR": record_dir}


def test_srun_tasks_without_a_seed_train_with_rank_0s_seed(data_dir, tmp_path):
    port, line = free_port(), command(data_dir, "runs", without=("seed",), **SHORT)
    code, output, _ = run(side_by_side((srun_task(0, port, tmp_path), line), (srun_task(1, port, tmp_path), line)),
                          tmp_path)
    assert code == 0, output[-4000:]
    one_seed_and_disjoint_shards(tmp_path)
    assert run_status(tmp_path / "runs" / "1")["status"] == "COMPLETED"  # task 0 alone is observed
    assert not (tmp_path / "runs" / "2").exists()


def test_two_nodes_without_a_seed_train_with_rank_0s_seed(data_dir, tmp_path):
    port, line = free_port(), command(data_dir, "runs", without=("seed",), **SHORT)
    nodes = [{"DDP": 1, "NUM_NODES": 2, "NODE_RANK": node, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
              "PASST_RECORD_DIR": tmp_path} for node in (0, 1)]
    code, output, _ = run(side_by_side((nodes[0], line), (nodes[1], line)), tmp_path)
    assert code == 0, output[-4000:]
    one_seed_and_disjoint_shards(tmp_path)


def test_ranks_given_different_seeds_stop_before_any_work(data_dir, tmp_path):
    port = free_port()
    code, output, left = run(side_by_side((srun_task(0, port, tmp_path), command(data_dir, "runs", seed=1, **SHORT)),
                                          (srun_task(1, port, tmp_path), command(data_dir, "runs", seed=2, **SHORT))),
                             tmp_path)
    assert code != 0
    assert "the ranks of this run were given different seeds (rank 0: seed=1, rank 1: seed=2)" in output
    assert records(tmp_path) == {} and left == []  # no epoch was drawn


def test_a_failing_rank_ends_the_whole_ddp_run_fast_showing_its_error_once(data_dir, tmp_path):
    started = time.monotonic()
    code, output, left = run(command(data_dir, "runs", **{"trainer.max_epochs": 2}), tmp_path, timeout=180,
                             DDP="2", PASST_FAIL_RANK="1")
    assert code != 0, output[-3000:]
    assert output.count("RuntimeError: injected failure on rank 1 at batch 0") == 1, output[-6000:]
    assert "PeerFailure: rank 0 stopped: another rank of the job failed or left" in output  # one line, no traceback
    assert re.search(r"Root Cause.*?rank\s*: 1 \(local_rank: 1\)", output, re.S)  # torchrun's summary
    assert run_status(tmp_path / "runs" / "1")["status"] == "FAILED"  # rank 0's run: stopped by the other's failure
    assert left == []
    assert time.monotonic() - started < 120, "the other rank was left waiting"


def rank_process(root: int, rank: int) -> int | None:
    """The pid of rank `rank` below `root` (not one of its DataLoader workers, which inherit its environment)."""
    def environ_rank(pid):
        try:
            with open(f"/proc/{pid}/environ", "rb") as file:
                variables = dict(item.split(b"=", 1) for item in file.read().split(b"\0") if b"=" in item)
            with open(f"/proc/{pid}/stat") as file:
                parent = int(file.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None, None
        return variables.get(b"RANK"), parent

    for pid in descendants(root):
        found, parent = environ_rank(pid)
        if found == str(rank).encode() and environ_rank(parent)[0] != found:
            return pid
    return None


def test_a_signal_to_one_rank_stops_every_rank_at_the_same_step_and_resume_auto_continues(data_dir, tmp_path):
    steps = tmp_path / "steps"
    steps.mkdir()
    line = command(data_dir, "runs", **{"trainer.max_epochs": 2, "swa": False})
    with open(tmp_path / "preempted.log", "w") as log:
        launcher = subprocess.Popen(line, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                    env=environment(DDP="2", PASST_STEP_DIR=str(steps)))
    try:
        deadline = time.monotonic() + 240
        while not (steps / "step-2").exists():  # rank 0's 2nd step (of 3 per epoch with 2 ranks)
            assert launcher.poll() is None and time.monotonic() < deadline, (tmp_path / "preempted.log").read_text()
            time.sleep(0.02)
        os.kill(rank_process(launcher.pid, 1), signal.SIGUSR1)  # SLURM's --signal=USR1@... to one rank only
        assert launcher.wait(timeout=120) != 0
    finally:
        kill_tree(launcher.pid)
        launcher.wait()
    output = (tmp_path / "preempted.log").read_text()
    stopped = set(re.findall(r"rank\s*: (\d) \(local_rank: \d\)\s*exitcode\s*: 75", output))
    assert stopped == {"0", "1"}, output[-4000:]  # torchrun's summary: both ranks exited pre-empted
    assert "continue it with" in output and "pre-empted by a signal to another rank at epoch 0" in output
    assert run_status(tmp_path / "runs" / "1")["status"] == "INTERRUPTED"
    saved = torch.load(tmp_path / "runs" / "1" / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["callbacks"]["PreemptionCallback"]["position"]["epoch"] == 0

    code, output, left = run(line + ["resume=auto"], tmp_path, DDP="2", PASST_RECORD_DIR=str(tmp_path))
    assert code == 0, output[-4000:]
    assert run_status(tmp_path / "runs" / "2")["status"] == "COMPLETED" and left == []
    assert json.loads((tmp_path / "runs" / "2" / "info.json").read_text())["resumed_from"]["status"] == "INTERRUPTED"


def test_a_rank_that_hangs_alive_fails_the_others_collectives_after_ddp_timeout(data_dir, tmp_path):
    started = time.monotonic()
    code, output, left = run(command(data_dir, "runs", ddp_timeout=10, **SHORT), tmp_path, timeout=240, DDP="2",
                             PASST_HANG_RANK="1")
    assert code != 0 and left == []
    assert "PeerFailure: rank 0 stopped: another rank of the job failed or left" in output, output[-4000:]
    assert run_status(tmp_path / "runs" / "1")["status"] == "FAILED"
    assert time.monotonic() - started < 200  # start-up, 10 s of waiting, torchrun's 30 s before it kills rank 1
