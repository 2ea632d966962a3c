"""Shared test setup: the repo root on sys.path, small thread counts, an isolated torch.hub cache."""
import logging
import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

torch.set_num_threads(2)


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    """An empty torch.hub directory for this test (release files are planted into its checkpoints/)."""
    directory = tmp_path / "hub"
    (directory / "checkpoints").mkdir(parents=True)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(directory))
    return directory


@pytest.fixture(autouse=True)
def root_log_level():
    """Each test starts from the same root log level: a sacred run sets it to its --loglevel, which would
    otherwise hide the warnings that a later test expects to capture."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.fixture
def one_thread():
    """One torch thread for the test (`pytestmark = pytest.mark.usefixtures("one_thread")`): a tiny model's
    steps are too small to share, and the test machine's cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
