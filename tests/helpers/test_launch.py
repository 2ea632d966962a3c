"""helpers.launch: the command line of every rank; a failing or pre-empted rank of a run of several processes
ends at once with its code."""
import pytest

from helpers import launch
from helpers.preemption import PREEMPTED_EXIT_CODE, RunPreempted


class Experiment:
    path, observers = "x", []

    def __init__(self, outcome=None):
        self.outcome = outcome

    def run_commandline(self, argv):
        if self.outcome is not None:
            raise self.outcome
        return argv


@pytest.fixture
def ended(monkeypatch):
    codes = []

    def end_process(code):
        codes.append(code)
        raise SystemExit(f"ended with {code}")

    monkeypatch.setattr(launch, "end_process", end_process)
    return codes


def test_other_ranks_run_unobserved_once(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    argv = ["ex.py", "save_logits", "with", "a=1"]
    assert launch.launch(Experiment(), argv) == ["ex.py", "-u", *argv[1:]]
    assert launch.launch(Experiment(), ["ex.py", "save_logits", "-u", "with", "a=1"]).count("-u") == 1


def test_a_failed_rank_of_several_ends_at_once_with_code_1(monkeypatch, ended):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(SystemExit):
        launch.launch(Experiment(SystemExit(1)), ["ex.py", "with", "a=1"])  # sacred printed the error, then exit(1)
    with pytest.raises(SystemExit):
        launch.launch(Experiment(KeyboardInterrupt()), ["ex.py"])
    assert ended == [1, 1]


def test_a_single_process_exits_through_the_interpreter(monkeypatch, ended):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(SystemExit) as stop:
        launch.launch(Experiment(SystemExit(1)), ["ex.py", "-u"])
    assert stop.value.code == 1 and ended == []


def test_a_preempted_run_says_how_to_continue_and_exits_with_its_code(monkeypatch, ended, capsys):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("DDP", raising=False)
    preempted = RunPreempted("SIGTERM", 2, 5, 17, "runs/audioset/3/checkpoints/last.ckpt", "runs/audioset/3")
    with pytest.raises(SystemExit):
        launch.launch(Experiment(preempted), ["ex_audioset.py", "-u", "with", "demo", "resume=old"])
    assert ended == [PREEMPTED_EXIT_CODE]
    said = capsys.readouterr().err
    assert "pre-empted by SIGTERM at epoch 2, after 5 batches of it (step 17)" in said
    assert "python ex_audioset.py -u with demo resume=runs/audioset/3" in said and "resume=old" not in said
