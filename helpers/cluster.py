"""What a run of several processes needs, whatever started them (`DDP=N`, torchrun, srun, several nodes):
which rank this is, a process group with a bounded timeout, one seed on every rank, and a failing rank that
ends the whole job instead of leaving the others waiting."""

from __future__ import annotations

import contextlib
import datetime
import logging
import multiprocessing
import os
import re
import sys
import traceback

from sacred.utils import SacredError

log = logging.getLogger(__name__)

DDP_TIMEOUT_DEFAULT = 300  # seconds a collective may wait for the other ranks before the job fails


def _slurm_tasks() -> int:
    """srun's task count when this process is one of several srun tasks (not torchrun inside a SLURM job)."""
    if "TORCHELASTIC_RUN_ID" in os.environ or os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive"):
        return 1
    return int(os.environ.get("SLURM_NTASKS", 1) or 1)


def world_size() -> int:
    """How many processes this run has: torchrun's WORLD_SIZE, srun's SLURM_NTASKS, else 1."""
    if "WORLD_SIZE" in os.environ:
        return int(os.environ["WORLD_SIZE"])
    return _slurm_tasks()


def global_rank() -> int:
    """This process's rank: torchrun's RANK, srun's SLURM_PROCID, else 0."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    return int(os.environ.get("SLURM_PROCID", 0)) if _slurm_tasks() > 1 else 0


def ddp_trainer_defaults() -> dict:
    """`devices`, `num_nodes` and `strategy` for the `trainer` config: from torchrun's (or `DDP=N`'s) or srun's
    environment, a single device otherwise."""
    if "LOCAL_WORLD_SIZE" in os.environ or os.environ.get("DDP"):
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("DDP", 1)))
        world = int(os.environ.get("WORLD_SIZE", per_node * int(os.environ.get("NUM_NODES", 1))))
        return {"devices": per_node, "num_nodes": max(world // per_node, 1), "strategy": "ddp"}
    if _slurm_tasks() > 1:
        nodes = int(os.environ.get("SLURM_NNODES", 1))
        per_node = int(os.environ.get("SLURM_NTASKS_PER_NODE", "").split("(")[0] or _slurm_tasks() // nodes)
        return {"devices": per_node, "num_nodes": nodes, "strategy": "ddp"}
    return {"devices": 1, "num_nodes": 1, "strategy": "auto"}


def ddp_strategy(strategy, timeout_seconds: float):
    """`trainer.strategy` as a Lightning strategy object whose process group waits at most `timeout_seconds`
    in a collective (a strategy given by name keeps torch's default of 30 minutes): "ddp" and the other names
    of Lightning's DDP strategies; any other value is returned unchanged."""
    from pytorch_lightning.strategies import DDPStrategy, StrategyRegistry

    if not isinstance(strategy, str) or strategy not in StrategyRegistry:
        return strategy
    entry = StrategyRegistry[strategy]
    if not (isinstance(entry["strategy"], type) and issubclass(entry["strategy"], DDPStrategy)) \
            or entry["init_params"].get("start_method", "popen") != "popen":
        return strategy
    return entry["strategy"](**{**entry["init_params"], "timeout": datetime.timedelta(seconds=timeout_seconds)})


class OneLineError(SacredError):
    """An error of a run that sacred prints as one line, without a traceback, and records as its failure."""

    def __init__(self, message: str):
        super().__init__(message, print_traceback=False)


class SeedMismatch(OneLineError):
    """The ranks of one run were given different explicit seeds."""


def init_process_group(accelerator: str, timeout_seconds: float) -> None:
    """The run's default process group, set up the way Lightning's DDP strategy would (which then uses it):
    gloo on CPU, NCCL on GPUs (this rank's device first), collectives waiting at most `timeout_seconds`.
    The cluster environment is Lightning's: torchrun's variables, or srun's (SLURM_*)."""
    import torch
    import torch.distributed as dist
    from lightning_fabric.plugins.environments import LightningEnvironment, SLURMEnvironment, TorchElasticEnvironment
    from lightning_fabric.utilities.distributed import _init_dist_connection

    if dist.is_initialized():
        return
    environment = next((kind() for kind in (TorchElasticEnvironment, SLURMEnvironment) if kind.detect()),
                       LightningEnvironment())
    options: dict = {"timeout": datetime.timedelta(seconds=timeout_seconds)}
    backend = "gloo"
    if accelerator == "gpu":
        backend = "nccl"
        torch.cuda.set_device(environment.local_rank())
        options["device_id"] = torch.device("cuda", environment.local_rank())
    _init_dist_connection(environment, backend, environment.global_rank(), environment.world_size(), **options)


def agree_on_start(seed: int, explicit: bool, start: dict | None = None) -> tuple[int, dict | None]:
    """Every rank's seed and rank 0's `start` (what rank 0 alone decides, e.g. the checkpoint `resume=auto`
    found), exchanged over the process group before any sampler, mixup or patchout draw. The seed is the
    explicit `seed=` where ranks were given one (every rank given one must have the same: else
    `SeedMismatch` on every rank, before any work), else rank 0's. A single process keeps its own."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return int(seed), start
    offers: list = [None] * dist.get_world_size()
    dist.all_gather_object(offers, (int(seed), bool(explicit), start if dist.get_rank() == 0 else None))
    given = {rank: value for rank, (value, was_given, _) in enumerate(offers) if was_given}
    if len(set(given.values())) > 1:
        listed = ", ".join(f"rank {rank}: seed={value}" for rank, value in given.items())
        raise SeedMismatch(f"seed: the ranks of this run were given different seeds ({listed}); give every rank "
                           "the same seed= or none (then rank 0's seed is used everywhere)")
    agreed = next(iter(given.values())) if given else offers[0][0]
    if agreed != seed:
        log.info("rank %d: using the run's seed %d (this process drew %d)", dist.get_rank(), agreed, seed)
    return int(agreed), offers[0][2]


class PeerFailure(OneLineError):
    """This rank stopped because another rank of the job failed or left (its collective could not complete);
    the other rank's error is the one to read."""


# what gloo's transport raises (as a plain RuntimeError) when a peer died or a collective ran past its timeout
_GLOO_PEER_ERRORS = re.compile(r"gloo/transport|Connection (closed|reset) by peer|Timed out waiting \d+ms")


def is_peer_failure(error: BaseException) -> bool:
    """True for the errors a rank sees when another rank died or hung: torch.distributed's backend, network
    and store errors, and gloo's (a closed connection, a collective past its timeout), anywhere in the
    exception chain."""
    import torch.distributed as dist

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, dist.DistError) or (isinstance(error, RuntimeError)
                                                 and _GLOO_PEER_ERRORS.search(str(error))):
            return True
        error = error.__cause__ or error.__context__
    return False


@contextlib.contextmanager
def peer_failures_in_one_line():
    """Inside: on a rank of several, an error that only says another rank failed or left (`is_peer_failure`)
    becomes a `PeerFailure`, which sacred prints as one line and records as the run's failure; the failing
    rank's own error keeps its traceback, so the job shows that one once."""
    try:
        yield
    except Exception as error:
        if world_size() > 1 and not isinstance(error, SacredError) and is_peer_failure(error):
            raise peer_failure(error) from error
        raise


def peer_failure(error: BaseException) -> PeerFailure:
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    return PeerFailure(f"rank {global_rank()} stopped: another rank of the job failed or left "
                       f"({type(error).__name__}: {first_line}); its error is shown above")


def end_process(code: int) -> None:
    """End this rank now with `code`, after flushing its output: its DataLoader workers are killed and the
    interpreter's shutdown is skipped, where a process group with work pending on dead peers, or a
    non-daemon thread, would otherwise keep a failed rank alive (and its peers waiting) for the timeout."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    for child in multiprocessing.active_children():
        child.kill()
    logging.shutdown()
    os._exit(code)


def print_error(error: BaseException) -> None:
    """An error that reached the launcher outside sacred's own reporting."""
    traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
