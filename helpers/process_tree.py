"""A process and everything it started, found through /proc (Linux): for tests and benchmarks that start a
launcher whose ranks live in sessions of their own, so that a timeout ends all of them and leaves nothing behind."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import time


def _read(path: str) -> str:
    try:
        with open(path, "rb") as file:
            return file.read().decode(errors="replace")
    except OSError:
        return ""


def descendants(root: int) -> list[int]:
    """`root` and every process below it (children of all its threads), parents before children."""
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        for task in glob.glob(f"/proc/{pid}/task/*/children"):
            stack += [int(child) for child in _read(task).split()]
    return found


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, exited but not reaped, counts as ended)."""
    status = _read(f"/proc/{pid}/stat")
    return bool(status) and status.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def command_line(pid: int) -> str:
    return " ".join(_read(f"/proc/{pid}/cmdline").split("\0")).strip()


def _dump(command: list[str], timeout: float) -> tuple[bool, str]:
    try:
        dump = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        return dump.returncode == 0, dump.stdout + dump.stderr
    except subprocess.TimeoutExpired:
        return False, f"({command[0]} timed out)"


def stack_dumps(root: int, timeout: float = 30.0) -> str:
    """The stacks of every process under `root`, as text: Python and native frames from py-spy, or where it
    cannot read a process, every thread's native backtrace from gdb (each where installed)."""
    py_spy, gdb = shutil.which("py-spy"), shutil.which("gdb")
    if py_spy is None and gdb is None:
        return "(neither py-spy nor gdb is installed: no stack dumps)"
    parts = []
    for pid in descendants(root):
        if not alive(pid):
            continue
        read, text = _dump([py_spy, "dump", "--native", "--pid", str(pid)], timeout) if py_spy else (False, "")
        if not read and py_spy:
            read, text = _dump([py_spy, "dump", "--pid", str(pid)], timeout)  # Python frames only
        if gdb and (not read or "(idle)" not in text and "(active)" not in text):
            native = _dump([gdb, "-batch", "-p", str(pid), "-ex", "thread apply all bt 30"], timeout)[1]
            text += "\n" + "\n".join(line for line in native.splitlines() if line.startswith(("#", "Thread")))
        parts.append(f"--- pid {pid} (parent {_parent(pid)}): {command_line(pid)[:200]}\n{text}")
    return "\n".join(parts)


def _parent(pid: int) -> int | None:
    fields = _read(f"/proc/{pid}/stat").rsplit(")", 1)[-1].split()
    return int(fields[1]) if len(fields) > 1 else None


def kill_tree(root: int, grace: float = 0.0) -> list[int]:
    """SIGKILL `root` and every process below it (after SIGTERM and `grace` seconds, when grace > 0), until none
    is left; returns the pids that were signalled. Children are found before their parents die, so orphans
    that re-parent to init are not missed."""
    signalled: list[int] = []
    if grace > 0:
        for pid in descendants(root):
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(alive(pid) for pid in descendants(root)):
            time.sleep(0.05)
    for _ in range(50):
        tree = [pid for pid in descendants(root) if alive(pid)]
        if not tree:
            break
        for pid in reversed(tree):
            _signal(pid, signal.SIGSTOP)  # freeze the tree first: nothing forks or re-parents while it dies
        for pid in tree:
            _signal(pid, signal.SIGKILL)
        signalled += tree
        time.sleep(0.05)
    return sorted(set(signalled))


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux prctl PR_SET_CHILD_SUBREAPER): a rank
    whose launcher died re-parents to this process instead of init, so it can still be found and ended."""
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> set[int]:
    return {int(child) for task in glob.glob(f"/proc/{pid}/task/*/children") for child in _read(task).split()}


def end_orphans(before: set[int]) -> list[int]:
    """Kill (with their trees) and reap this process's children that were not among `before`: under
    `become_subreaper`, the orphans of a process tree that ended."""
    ended = []
    for child in _children(os.getpid()) - before:
        ended += kill_tree(child)
        try:
            os.waitpid(child, os.WNOHANG)
        except ChildProcessError:
            pass
    return ended


def _wait_for_tree_to_end(root: int, before: set[int], grace: float) -> None:
    """Up to `grace` seconds for what `root` started to end by itself (a forkserver notices its parent's exit)."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        rest = [pid for pid in descendants(root)[1:] + sorted(_children(os.getpid()) - before - {root}) if alive(pid)]
        if not rest:
            return
        time.sleep(0.05)


def run_tree(command: list[str], timeout: float, on_timeout=None, grace: float = 5.0,
             **popen) -> subprocess.CompletedProcess:
    """Run `command` (output captured as text unless `popen` redirects it) and wait at most `timeout` seconds.
    On timeout `on_timeout(pid)` runs first (e.g. `stack_dumps`), then the whole process tree is killed and
    `subprocess.TimeoutExpired` is raised with the output so far and what `on_timeout` returned as `.stacks`.
    Whatever happens, no process of the tree is left running: those that outlive the command (ranks
    orphaned by their launcher) re-parent to this process (`become_subreaper`) and are ended too; the
    result's `left_running` lists those still running `grace` seconds after the command ended."""
    become_subreaper()
    before = _children(os.getpid())
    if "stdout" not in popen:
        popen.update(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process = subprocess.Popen(command, **popen)
    left_running: list[int] = []
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as timeout_error:
        timeout_error.stacks = on_timeout(process.pid) if on_timeout else None
        kill_tree(process.pid)
        timeout_error.output, _ = process.communicate()
        raise timeout_error
    finally:
        _wait_for_tree_to_end(process.pid, before, grace)
        left_running += [pid for pid in kill_tree(process.pid) if pid != process.pid]
        process.wait()
        left_running += end_orphans(before | {process.pid})
    result = subprocess.CompletedProcess(command, process.returncode, output, None)
    result.left_running = sorted(set(left_running))
    return result
