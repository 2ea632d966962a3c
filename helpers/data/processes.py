"""What the processes of one run coordinate on without a process group: one process writes a file, the others
wait for it."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(ready: Callable[[], T | None], timeout: float, poll_seconds: float, timeout_message: str) -> T:
    """Poll `ready()` every `poll_seconds` until it returns something other than None and return that; after
    `timeout` seconds raise TimeoutError(`timeout_message`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(timeout_message)
        time.sleep(poll_seconds)
