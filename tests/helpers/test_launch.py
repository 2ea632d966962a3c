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


def test_ddp_processes_share_one_seed_drawn_by_the_launcher(monkeypatch):
    from helpers.launch import with_shared_seed
    monkeypatch.delenv("NUM_NODES", raising=False)
    argv = with_shared_seed(["ex_audioset.py", "with", "demo"])
    assert argv[:3] == ["ex_audioset.py", "with", "demo"] and argv[3].startswith("seed=") and len(argv) == 4
    assert with_shared_seed(["ex_audioset.py", "evaluate_only"])[2:3] == ["with"]
    assert with_shared_seed(["ex_audioset.py", "with", "seed=4"]) == ["ex_audioset.py", "with", "seed=4"]
    monkeypatch.setenv("NUM_NODES", "2")
    import pytest
    with pytest.raises(SystemExit, match="give the same seed=N on every node"):
        with_shared_seed(["ex_audioset.py", "with", "demo"])
