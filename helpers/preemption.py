"""Pre-emption and requeue: on SIGTERM or SIGUSR1 (what SLURM and Kubernetes send before they stop a job) every
rank stops at the next training step boundary, a checkpoint of that step is written with the position in the
epoch, and the run ends INTERRUPTED with a line saying how to continue (`helpers.resuming` continues it)."""

from __future__ import annotations

import logging
import os
import shlex
import signal

import pytorch_lightning as pl
import torch

log = logging.getLogger(__name__)

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: the run did not finish and can be continued
PREEMPT_SIGNALS_DEFAULT = ["SIGTERM", "SIGUSR1"]


def signal_numbers(names) -> list[int]:
    """`preempt_signals` (names such as "SIGTERM", or numbers) as signal numbers; ValueError naming a bad one."""
    numbers = []
    for name in names or []:
        if isinstance(name, int) and not isinstance(name, bool):
            numbers.append(signal.Signals(name).value)
        elif isinstance(name, str) and name.upper() in signal.Signals.__members__:
            numbers.append(signal.Signals[name.upper()].value)
        else:
            raise ValueError(f"{name!r} is not a signal name")
    if any(number in (signal.SIGKILL, signal.SIGSTOP) for number in numbers):
        raise ValueError("SIGKILL and SIGSTOP cannot be handled")
    return numbers


class RunPreempted(KeyboardInterrupt):
    """The run stopped on a pre-emption signal after writing its checkpoint. A KeyboardInterrupt, so that sacred
    records the run as INTERRUPTED (`STATUS`) and its command line passes it on to `helpers.launch`."""

    STATUS = "INTERRUPTED"

    def __init__(self, signal_name: str, epoch: int, batches: int, step: int, checkpoint: str | None,
                 run_dir: str | None):
        super().__init__(f"pre-empted by {signal_name} at epoch {epoch}, after {batches} batches of it (step {step})")
        self.signal_name, self.epoch, self.batches, self.step = signal_name, epoch, batches, step
        self.checkpoint, self.run_dir = checkpoint, run_dir

    def continue_line(self, argv: list[str]) -> str:
        """What to run to go on: the same command line with resume= on this run's folder (or resume=auto)."""
        if self.run_dir is None:
            return f"{self}"
        arguments = [argument for argument in argv if not argument.startswith("resume=")]
        if "with" not in arguments:
            arguments.append("with")
        launcher = f"DDP={os.environ['DDP']} " if os.environ.get("DDP") else ""
        command = launcher + "python " + shlex.join(arguments + [f"resume={self.run_dir}"])
        return (f"{self}; checkpoint written to {self.checkpoint}. The run is INTERRUPTED; continue it with:\n"
                f"  {command}\n(or resume=auto in a job script that is requeued)")


class _StopTraining(Exception):
    """Raised inside `trainer.fit` after the pre-emption checkpoint, to leave it without further work."""


class PreemptionCallback(pl.Callback):
    """Turns `signals` into a stop at the next training step boundary on every rank (the ranks agree through
    one all-reduce per step, so a signal that reached one rank stops all of them at the same step), writes
    `checkpoint_path` there (rank 0 writes; the loader position travels in this callback's state) and ends
    `trainer.fit`; `train` then raises `RunPreempted`. Continuing from that checkpoint, the training loader
    skips the batches the step had already trained (`EpochLoader.resume_within_epoch`)."""

    def __init__(self, signals, checkpoint_path: str | None, run_dir: str | None):
        self.signals = signal_numbers(signals)
        self.checkpoint_path, self.run_dir = checkpoint_path, run_dir
        self.received: int | None = None
        self.position: dict | None = None  # the epoch position of the checkpoint being written
        self.resume_position: dict | None = None  # the one a checkpoint we continue from holds
        self.preempted: RunPreempted | None = None

    # --- signals ---------------------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        if self.received is None:
            log.warning("received %s: stopping at the next training step (a checkpoint of it will be written)",
                        signal.Signals(signum).name)
        self.received = signum

    def install(self) -> None:
        for number in self.signals:
            signal.signal(number, self._on_signal)

    def on_train_start(self, trainer, pl_module) -> None:
        self.install()  # after Lightning's own handlers (registered when fit starts), which they replace
        position, self.resume_position = self.resume_position, None
        if position:  # (Lightning calls no on_train_epoch_start for an epoch it continues)
            trainer.train_dataloader.resume_within_epoch(position["epoch"], position["batches"])
            log.info("continuing epoch %d after its first %d batches", position["epoch"], position["batches"])

    # --- the stop --------------------------------------------------------------------------------------
    def _any_rank_received(self, trainer) -> bool:
        if trainer.world_size == 1:  # (no device tensor, no synchronisation: this runs every step)
            return self.received is not None
        flag = torch.tensor([0 if self.received is None else 1], device=trainer.strategy.root_device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._any_rank_received(trainer):
            return
        name = signal.Signals(self.received).name if self.received is not None else "a signal to another rank"
        self.position = {"epoch": trainer.current_epoch, "batches": batch_idx + 1}
        trainer.save_checkpoint(self.checkpoint_path or "not-written-on-this-rank.ckpt")
        self.preempted = RunPreempted(name, trainer.current_epoch, batch_idx + 1, trainer.global_step,
                                      self.checkpoint_path, self.run_dir)
        if trainer.is_global_zero:
            log.warning("%s; checkpoint written to %s", self.preempted, self.checkpoint_path)
        raise _StopTraining()

    # --- continuing ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"position": self.position} if self.position else {}

    def load_state_dict(self, state_dict: dict) -> None:
        self.resume_position = state_dict.get("position")


def fit_unless_preempted(trainer, preemption: PreemptionCallback | None, *args, **kwargs) -> None:
    """`trainer.fit(*args, **kwargs)`, raising `RunPreempted` when `preemption` stopped it. The signals' handlers
    of before the fit are restored after it, except after a pre-emption or when a rank of several fails: then a
    further signal (torchrun's SIGTERM once another rank has exited, the scheduler's repeated one) is only
    noted, so that this rank still records its run INTERRUPTED or FAILED and exits with its code."""
    before = {number: signal.getsignal(number) for number in (preemption.signals if preemption else ())}
    try:
        trainer.fit(*args, **kwargs)
    except _StopTraining:
        if preemption is None or preemption.preempted is None:
            raise
        preemption.install()  # (Lightning restored the handlers of before the fit when fit stopped)
        raise preemption.preempted from None
    except BaseException:
        if preemption is not None and trainer.world_size > 1:
            preemption.install()
        else:
            _restore(before)
        raise
    _restore(before)


def _restore(handlers: dict) -> None:
    for number, handler in handlers.items():
        signal.signal(number, handler)
