"""helpers.loaders: training epochs that depend on (seed, epoch) alone; file order without shuffle."""
from helpers.data import DataOptions
import torch

from helpers.data import make_training_set
from helpers.loaders import training_loader
from tests.helpers.data.clips import write_tone_hdf5


def test_training_loader_epochs_depend_only_on_seed_and_epoch(tmp_path):
    """Augmentation, roll, waveform mixup and order of an epoch are a function of (seed, epoch): the same
    with 0 or 2 workers, without the epochs before it (a resumed run), and different for another seed."""
    write_tone_hdf5(tmp_path / "clips.hdf", n_clips=6, classes_num=4, seconds=0.5)

    def epochs(seed, workers, which):
        dataset = make_training_set([tmp_path / "clips.hdf"], 4, DataOptions(sample_rate=16000, clip_length=0.5, gain_augment=6, roll=True, roll_conf={"shift_range": 800}, wavmix=True, seed=seed))
        loader = training_loader(dataset, batch_size=4, num_workers=workers, seed=seed)
        batches = {}
        for epoch in which:
            loader.sampler.set_epoch(epoch)  # what Lightning does before every epoch
            batches[epoch] = [batch[0] for batch in loader]
        return batches

    uninterrupted = epochs(seed=3, workers=2, which=[0, 1, 2])
    resumed = epochs(seed=3, workers=0, which=[2])
    for first, second in zip(uninterrupted[2], resumed[2]):
        assert torch.equal(first, second)
    assert not torch.equal(uninterrupted[1][0], uninterrupted[2][0])
    assert not torch.equal(epochs(seed=4, workers=0, which=[2])[2][0], resumed[2][0])
    torch.manual_seed(0)
    state = torch.get_rng_state()
    epochs(seed=3, workers=1, which=[0])
    assert torch.equal(torch.get_rng_state(), state)  # training's global generator is left alone


def test_without_shuffle_an_epoch_is_the_file_order_as_upstreams_openmic_and_esc50_loaders(tmp_path):
    write_tone_hdf5(tmp_path / "clips.hdf", n_clips=5, classes_num=4, seconds=0.25)
    dataset = make_training_set([tmp_path / "clips.hdf"], 4, DataOptions(sample_rate=16000, clip_length=0.25, gain_augment=0, roll=False, seed=0))
    ordered = training_loader(dataset, batch_size=5, num_workers=0, seed=0, shuffle=False)
    shuffled = training_loader(dataset, batch_size=5, num_workers=0, seed=0)
    for epoch in (0, 1):
        ordered.sampler.set_epoch(epoch)
        shuffled.sampler.set_epoch(epoch)
        assert list(next(iter(ordered))[1]) == [dataset[index][1] for index in range(5)]
    assert list(next(iter(shuffled))[1]) != list(next(iter(ordered))[1])


def test_an_epoch_continued_after_pre_emption_yields_exactly_the_batches_not_yet_trained(tmp_path):
    """resume_within_epoch(e, n): that epoch's iteration starts at its batch n (the same clips, augmented the
    same way, whatever the workers), the epoch keeps its length, and the next epoch is whole again."""
    write_tone_hdf5(tmp_path / "clips.hdf", n_clips=10, classes_num=4, seconds=0.25)
    dataset = make_training_set([tmp_path / "clips.hdf"], 4, DataOptions(sample_rate=16000, clip_length=0.25, gain_augment=6, roll=True, roll_conf={"shift_range": 400}, wavmix=True, seed=2))
    whole = training_loader(dataset, batch_size=3, num_workers=0, seed=2)
    whole.sampler.set_epoch(1)
    uninterrupted = list(whole)
    continued = training_loader(dataset, batch_size=3, num_workers=2, seed=2)
    continued.sampler.set_epoch(1)
    continued.resume_within_epoch(1, 2)
    rest = list(continued)
    assert len(continued) == len(uninterrupted) == 4 and len(rest) == 2
    for (waveforms, names, _), (expected, expected_names, _) in zip(rest, uninterrupted[2:]):
        assert list(names) == list(expected_names) and torch.equal(waveforms, expected)
    assert len(list(continued)) == 4  # only the one iteration was shortened
    continued.resume_within_epoch(0, 2)  # a position of another epoch leaves this one whole
    assert len(list(continued)) == 4


class ParentOfWorker(torch.utils.data.Dataset):
    """Each item: the parent process id of the process that loads it."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        import os
        return torch.tensor(os.getppid()), str(index), torch.zeros(1)


def test_workers_are_not_forked_from_the_training_process_unless_asked():
    """A worker forked from a rank that runs other threads (the process group's, sacred's heartbeat) can inherit
    a lock one of them held and never deliver a batch: by default workers come from a forkserver."""
    import os
    parents = {int(p) for batch in training_loader(ParentOfWorker(), batch_size=2, num_workers=2, seed=0)
               for p in batch[0]}
    assert os.getpid() not in parents and len(parents) == 1  # all forked by the one server
    forked = training_loader(ParentOfWorker(), batch_size=2, num_workers=1, seed=0, multiprocessing_context="fork")
    assert {int(p) for batch in forked for p in batch[0]} == {os.getpid()}  # upstream's (torch's default)


KILLED_OWNER = """
import os, sys, time, torch
from helpers.loaders import training_loader

class WorkerPid(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, index):
        return torch.tensor(os.getpid()), str(index), torch.zeros(1)

if __name__ == "__main__":
    loader = training_loader(WorkerPid(), batch_size=1, num_workers=2, seed=0)
    batches = iter(loader)
    pids = {int(next(batches)[0]) for _ in range(4)}
    print(" ".join(map(str, sorted(pids))), flush=True)
    time.sleep(600)
"""


def test_workers_end_when_the_training_process_is_killed(tmp_path):
    """Under a forkserver a worker's parent is the server, which lives as long as its workers: each worker
    watches the process that made its loader and ends when it is gone (SIGKILL, the OOM killer)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from helpers.process_tree import alive, descendants, kill_tree
    script = tmp_path / "owner.py"
    script.write_text(KILLED_OWNER)
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.dirname(
                                 os.path.abspath(__file__))))})
    try:
        workers = [int(pid) for pid in owner.stdout.readline().split()]
        tree = descendants(owner.pid)[1:]  # the forkserver (and its resource tracker) and the workers
        assert len(workers) == 2 and set(workers) <= set(tree)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in tree) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in tree if alive(pid)], "processes outlived the killed training process"
    finally:
        kill_tree(owner.pid)
        for pid in descendants(owner.pid):
            kill_tree(pid)
