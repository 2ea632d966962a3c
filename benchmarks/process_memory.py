"""Memory of this and other processes, from /proc: RSS now and at peak (VmHWM, resettable), private memory."""

from __future__ import annotations

def mib(n_bytes: float) -> float:
    return n_bytes / 2**20


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024


def rss_now_mib() -> float:
    return _status_mib("VmRSS")


def reset_peak_rss() -> float:
    """Restart this process's peak-RSS count (VmHWM) from its current RSS (Linux); returns that RSS."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    return rss_now_mib()


def peak_rss_mib() -> float:
    """Peak RSS since the start, or since `reset_peak_rss`."""
    return _status_mib("VmHWM")


# --- the index-scale files -----------------------------------------------------------------------------


def _private_mib(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup if line.split(":")[0].startswith("Private")}
    return (fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)) / 1024
