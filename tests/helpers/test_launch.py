"""helpers.launch: DDP=N under torchrun."""
from helpers.launch import ddp_trainer_defaults


def test_ddp_defaults_from_torchrun_environment(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert ddp_trainer_defaults() == {"devices": 2, "num_nodes": 2, "strategy": "ddp"}
