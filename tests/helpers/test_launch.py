"""helpers.launch: DDP=N under torchrun."""
from helpers.launch import ddp_trainer_defaults


def test_ddp_defaults_from_torchrun_environment(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert ddp_trainer_defaults() == {"devices": 2, "num_nodes": 2, "strategy": "ddp"}


def test_other_ranks_run_unobserved_once(monkeypatch):
    from helpers import launch

    class Experiment:
        path, observers = "x", []

        def run_commandline(self, argv):
            return argv

    monkeypatch.setenv("RANK", "1")
    argv = ["ex.py", "save_logits", "with", "a=1"]
    assert launch.launch(Experiment(), argv) == ["ex.py", "-u", *argv[1:]]
    assert launch.launch(Experiment(), ["ex.py", "save_logits", "-u", "with", "a=1"]).count("-u") == 1
