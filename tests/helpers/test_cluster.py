"""helpers.cluster: which rank this is under each launcher, the bounded process-group timeout, one seed on every
rank, and which errors mean that another rank failed."""
import datetime
import multiprocessing
import socket

import pytest
import torch.distributed as dist

from helpers import cluster

LAUNCHER_VARIABLES = ("LOCAL_WORLD_SIZE", "WORLD_SIZE", "RANK", "DDP", "NUM_NODES", "TORCHELASTIC_RUN_ID",
                      "SLURM_NTASKS", "SLURM_PROCID", "SLURM_NNODES", "SLURM_NTASKS_PER_NODE", "SLURM_JOB_NAME")


@pytest.fixture
def no_launcher(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_single_process_is_rank_0_of_1_on_one_device(no_launcher):
    assert (cluster.world_size(), cluster.global_rank()) == (1, 0)
    assert cluster.ddp_trainer_defaults() == {"devices": 1, "num_nodes": 1, "strategy": "auto"}


def test_torchrun_sets_the_devices_nodes_and_rank(no_launcher):
    no_launcher.setenv("LOCAL_WORLD_SIZE", "2")
    no_launcher.setenv("WORLD_SIZE", "4")
    no_launcher.setenv("RANK", "3")
    assert cluster.ddp_trainer_defaults() == {"devices": 2, "num_nodes": 2, "strategy": "ddp"}
    assert (cluster.world_size(), cluster.global_rank()) == (4, 3)


def test_srun_tasks_are_ranks_from_the_slurm_variables(no_launcher):
    for name, value in {"SLURM_NTASKS": "4", "SLURM_PROCID": "2", "SLURM_NNODES": "2",
                        "SLURM_NTASKS_PER_NODE": "2(x2)", "SLURM_JOB_NAME": "passt"}.items():
        no_launcher.setenv(name, value)
    assert cluster.ddp_trainer_defaults() == {"devices": 2, "num_nodes": 2, "strategy": "ddp"}
    assert (cluster.world_size(), cluster.global_rank()) == (4, 2)


def test_torchrun_inside_a_slurm_job_and_interactive_jobs_are_not_srun_tasks(no_launcher):
    no_launcher.setenv("SLURM_NTASKS", "1")
    no_launcher.setenv("SLURM_PROCID", "0")
    assert cluster.world_size() == 1
    no_launcher.setenv("SLURM_NTASKS", "2")
    no_launcher.setenv("SLURM_JOB_NAME", "interactive")
    assert cluster.world_size() == 1


def test_a_ddp_strategy_by_name_gets_the_configured_timeout():
    from pytorch_lightning.strategies import DDPStrategy

    strategy = cluster.ddp_strategy("ddp", 42)
    assert isinstance(strategy, DDPStrategy) and strategy._timeout == datetime.timedelta(seconds=42)
    unused = cluster.ddp_strategy("ddp_find_unused_parameters_true", 7)
    assert unused._ddp_kwargs == {"find_unused_parameters": True} and unused._timeout.total_seconds() == 7
    assert cluster.ddp_strategy("auto", 42) == "auto"
    assert cluster.ddp_strategy("ddp_spawn", 42) == "ddp_spawn"  # not how this project starts ranks: unchanged


def test_errors_of_collectives_are_peer_failures_wherever_they_are_in_the_chain():
    backend_error = dist.DistBackendError("Connection closed by peer [127.0.0.1]:1234")
    assert cluster.is_peer_failure(backend_error)
    try:
        try:
            raise backend_error
        except RuntimeError as error:
            raise ValueError("while logging") from error
    except ValueError as wrapped:
        assert cluster.is_peer_failure(wrapped)
    assert not cluster.is_peer_failure(RuntimeError("injected failure"))
    gloo = RuntimeError("[third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 10000ms for "
                        "recv operation to complete")
    assert cluster.is_peer_failure(gloo)
    message = str(cluster.peer_failure(backend_error))
    assert "another rank of the job failed or left" in message and "Connection closed by peer" in message


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _agree(rank, port, offer, results):
    import os
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=datetime.timedelta(seconds=30))
    try:
        results.put((rank, cluster.agree_on_start(*offer)))
    except cluster.SeedMismatch as error:
        results.put((rank, str(error)))
    finally:
        dist.destroy_process_group()


def agreed(offers):
    """What agree_on_start returns on each of 2 gloo ranks making these (seed, explicit, start) offers."""
    context = multiprocessing.get_context("spawn")
    results, port = context.Queue(), _free_port()
    ranks = [context.Process(target=_agree, args=(rank, port, offer, results)) for rank, offer in enumerate(offers)]
    for process in ranks:
        process.start()
    try:
        answers = dict(results.get(timeout=90) for _ in ranks)
    finally:
        for process in ranks:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    return [answers[0], answers[1]]


def test_every_rank_takes_rank_0s_seed_and_start_unless_given_one():
    assert agreed([(11, False, {"checkpoint": "a.ckpt"}), (22, False, None)]) == [(11, {"checkpoint": "a.ckpt"})] * 2
    assert agreed([(11, False, None), (7, True, None)]) == [(7, None)] * 2  # a rank given seed= decides
    assert agreed([(7, True, None), (7, True, None)]) == [(7, None)] * 2


def test_ranks_given_different_seeds_refuse_to_start():
    answers = agreed([(5, True, None), (6, True, None)])
    assert answers[0] == answers[1] and "rank 0: seed=5, rank 1: seed=6" in answers[0]


def test_only_peer_failures_of_a_rank_of_several_become_one_line(no_launcher):
    gloo = RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:561] Connection closed by peer")
    with pytest.raises(RuntimeError, match="Connection closed"):  # one process: nothing to say about peers
        with cluster.peer_failures_in_one_line():
            raise gloo
    no_launcher.setenv("WORLD_SIZE", "2")
    no_launcher.setenv("RANK", "0")
    with pytest.raises(cluster.PeerFailure, match="rank 0 stopped: another rank of the job failed or left"):
        with cluster.peer_failures_in_one_line():
            raise gloo
    with pytest.raises(ValueError, match="own error"):  # this rank's own error keeps its traceback
        with cluster.peer_failures_in_one_line():
            raise ValueError("own error")
