"""helpers.data.processes: one process writes, the others wait."""
import pytest

from helpers.data.processes import wait_for


def test_waiting_for_another_process_returns_its_value_or_times_out_with_the_message():
    answers = iter([None, None, 7])
    assert wait_for(lambda: next(answers), timeout=5, poll_seconds=0.001, timeout_message="never") == 7
    with pytest.raises(TimeoutError, match="the file did not appear"):
        wait_for(lambda: None, timeout=0.01, poll_seconds=0.001, timeout_message="the file did not appear")
