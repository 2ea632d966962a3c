"""save_logits (helpers.logits, the writer in helpers.data.teacher) through ex_audioset.py on a small generated
dataset with a planted passt_tiny checkpoint: the file holds the logits evaluation computes, undecodable clips
are missing (never zeros), a SIGKILLed run continues, DDP=2 writes the same file, a file of another source,
class count or teacher is refused before any work. Each experiment registers the command."""
import contextlib
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from audioset.prepare_scripts.make_demo_dataset import make_demo_dataset
from helpers.config_checks import ConfigError
from helpers.data import DataOptions, PackedBitsTargets, read_targets
from helpers.data.teacher import (LOGITS_KIND, LogitsRowWriter, SourceIdentity, TeacherTargets, check_logits_file,
                                  create_logits_file, names_digest)
from helpers.metrics import mean_average_precision
from tests.test_ex_audioset import CLASSES, ROOT, SECONDS, demo_updates, run_script

TRAIN_CLIPS = 40
CHUNK = 4  # rows per write in the kill and DDP tests: 10 chunks for the training file


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("logits_demo")
    make_demo_dataset(out, n_train=TRAIN_CLIPS, n_eval=12, n_unbalanced=6, n_classes=CLASSES, clip_length=SECONDS)
    return str(out)


@pytest.fixture(scope="module")
def teacher_checkpoint(tmp_path_factory):
    """A release-format state_dict of a freshly initialised passt_tiny: every run loads the same weights."""
    from models.passt import get_model
    torch.manual_seed(3)
    net = get_model("passt_tiny", pretrained=False, n_classes=CLASSES, fstride=16, tstride=16,
                    input_tdim=100 * SECONDS - 2)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    torch.save(net.state_dict(), path)
    return str(path)


def updates(demo_dir, teacher_checkpoint, **extra):
    return {**demo_updates(demo_dir), "models.net.checkpoint": teacher_checkpoint,
            "datasets.test.batch_size": CHUNK, **extra}


def run_in_process(command, config_updates, cwd):
    import ex_audioset
    with contextlib.chdir(cwd):
        return ex_audioset.ex.run(command, named_configs=["demo"], config_updates=config_updates,
                                  options={"--loglevel": "ERROR"})


def source(demo_dir, name):
    return os.path.join(demo_dir, "mp3", name)


def read(path):
    with h5py.File(path, "r") as file:
        return {key: file[key][:] for key in file} | {"attrs": dict(file.attrs)}


@pytest.fixture(scope="module")
def single_process_file(demo_dir, teacher_checkpoint, tmp_path_factory):
    """The training file's logits by one uninterrupted in-process run."""
    work = tmp_path_factory.mktemp("single")
    run_in_process("save_logits", updates(demo_dir, teacher_checkpoint, out="teacher/", split="balanced_train_hdf5"),
                   work)
    return str(work / "teacher" / "balanced_train_segments_mp3.logits.hdf")


def direct_logits(config, hdf5_file):
    """Logits of each clip of `hdf5_file` as evaluation computes them: mel frontend + net in eval mode, one clip
    at a time (None where a clip does not decode)."""
    import audioset.dataset as audioset
    from helpers.networks import build_network
    from models.preprocess import AugmentMelSTFT
    net = build_network(**config["models"]["net"]).eval()
    mel = AugmentMelSTFT(**config["models"]["mel"]).eval()
    dataset = audioset.evaluation_set(hdf5_file, DataOptions(clip_length=SECONDS), CLASSES)
    rows = []
    with torch.inference_mode():
        for index in range(len(dataset)):
            item = dataset[index]
            rows.append(None if item is None else net(mel(torch.from_numpy(item[0])[None]))[0][0].numpy())
    return rows


def test_round_trip_holds_the_logits_evaluation_computes(demo_dir, teacher_checkpoint, tmp_path):
    config_updates = updates(demo_dir, teacher_checkpoint, out="eval.logits.hdf", split="eval_hdf5")
    run = run_in_process("save_logits", config_updates, tmp_path)
    out, eval_file = str(tmp_path / "eval.logits.hdf"), source(demo_dir, "eval_segments_mp3.hdf")
    result = run.result["eval.logits.hdf"]
    assert (result["source"], result["rows"], result["missing"], result["computed"]) == (eval_file, 12, 0, 12)
    assert check_logits_file(out, eval_file, CLASSES) == {"rows": 12, "missing": 0}
    stored = read(out)
    assert stored["logits"].dtype == np.float16 and stored["logits"].shape == (12, CLASSES)
    assert stored["written"].all() and not stored["missing"].any()
    with h5py.File(eval_file, "r") as file:
        assert list(stored["audio_name"]) == list(file["audio_name"][:])
    attrs = stored["attrs"]
    assert attrs["kind"] == LOGITS_KIND and attrs["classes"] == CLASSES
    assert attrs["source_path"] == eval_file and attrs["source_rows"] == 12
    assert attrs["source_size"] == os.path.getsize(eval_file)
    assert attrs["source_names_sha256"] == names_digest(eval_file)
    assert f'"checkpoint": "{teacher_checkpoint}"' in attrs["teacher"] and '"arch": "passt_tiny"' in attrs["teacher"]
    expected = np.stack(direct_logits(run.config, eval_file))
    np.testing.assert_allclose(stored["logits"].astype(np.float32), expected, rtol=2e-3, atol=2e-3)
    # evaluate_only scores the same logits
    evaluated = run_in_process("evaluate_only", updates(demo_dir, teacher_checkpoint), tmp_path).result
    targets = read_targets(eval_file, PackedBitsTargets(CLASSES))
    scores = 1 / (1 + np.exp(-stored["logits"].astype(np.float64)))
    assert mean_average_precision(scores, targets) == pytest.approx(evaluated["ap"], abs=1e-3)


def test_an_undecodable_clip_is_recorded_missing_never_as_zeros(demo_dir, teacher_checkpoint, tmp_path):
    broken = tmp_path / "broken"
    (broken / "mp3").mkdir(parents=True)
    shutil.copy(source(demo_dir, "eval_segments_mp3.hdf"), broken / "mp3")
    with h5py.File(broken / "mp3" / "eval_segments_mp3.hdf", "r+") as file:
        file["mp3"][3] = np.frombuffer(b"this is not an mp3 file", dtype=np.uint8)
    eval_file = str(broken / "mp3" / "eval_segments_mp3.hdf")
    run = run_in_process("save_logits", updates(demo_dir, teacher_checkpoint, out="eval.hdf", split="eval_hdf5",
                                                **{"basedataset.base_dir": str(broken) + "/"}), tmp_path)
    assert run.result["eval.hdf"]["missing"] == 1
    stored = read(tmp_path / "eval.hdf")
    assert stored["written"].all() and np.flatnonzero(stored["missing"]).tolist() == [3]
    assert np.isnan(stored["logits"][3]).all()  # no value a reader could take for a teacher row
    assert np.isfinite(np.delete(stored["logits"], 3, axis=0)).all()
    expected = direct_logits(run.config, eval_file)
    assert expected[3] is None
    np.testing.assert_allclose(np.delete(stored["logits"], 3, axis=0).astype(np.float32),
                               np.stack([row for row in expected if row is not None]), rtol=2e-3, atol=2e-3)
    assert check_logits_file(tmp_path / "eval.hdf", eval_file, CLASSES) == {"rows": 12, "missing": 1}
    teacher = TeacherTargets(tmp_path / "eval.hdf")
    assert not teacher(3).any() and teacher(2)[-1] == 1.0  # row 3: no teacher target, flag 0


KILLED_RUN = """
import os, signal, sys
import numpy as np
from helpers.data import teacher
original, calls = teacher.LogitsRowWriter.write, [0]
def write(self, rows, logits, missing):
    calls[0] += 1
    if calls[0] > {chunks}:  # half a write: this chunk's logits are on disk, its written flags not
        self._put(np.full((len(rows), self.classes), 7, np.float16).tobytes(),
                  self._offsets["logits"] + int(min(rows)) * self._row_bytes)
        os.kill(os.getpid(), signal.SIGKILL)
    original(self, rows, logits, missing)
teacher.LogitsRowWriter.write = write
import ex_audioset
ex_audioset.experiment.launch(ex_audioset.ex, ["ex_audioset.py", *sys.argv[1:]])
"""


def test_a_killed_run_continues_and_ends_with_the_uninterrupted_file(demo_dir, teacher_checkpoint, single_process_file,
                                                                      tmp_path):
    config_updates = updates(demo_dir, teacher_checkpoint, out="teacher/", split="balanced_train_hdf5",
                             chunk_rows=CHUNK)
    script = tmp_path / "killed_run.py"
    script.write_text(KILLED_RUN.format(chunks=3))
    process = subprocess.run([sys.executable, str(script), "save_logits", "-u", "with", "demo",
                              *[f"{key}={value}" for key, value in config_updates.items()]], cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}, capture_output=True,
                             text=True, timeout=300)
    assert process.returncode == -9, process.stderr[-3000:]
    out = tmp_path / "teacher" / "balanced_train_segments_mp3.logits.hdf"
    killed = read(out)  # readable after SIGKILL: HDF5's structures are never written after creation
    assert killed["written"].sum() == 3 * CHUNK and killed["written"][:3 * CHUNK].all()
    with pytest.raises(ValueError, match="incomplete: 28 of 40 rows were never written"):
        check_logits_file(out, source(demo_dir, "balanced_train_segments_mp3.hdf"), CLASSES)
    resumed = run_in_process("save_logits", config_updates, tmp_path).result[str(os.path.join("teacher", out.name))]
    assert resumed["computed"] == TRAIN_CLIPS - 3 * CHUNK and resumed["rows"] == TRAIN_CLIPS
    assert_same_file(out, single_process_file)


def assert_same_file(path, reference):
    ours, theirs = read(path), read(reference)
    assert ours["written"].all() and (ours["missing"] == theirs["missing"]).all()
    assert (ours["audio_name"] == theirs["audio_name"]).all() and ours["attrs"] == theirs["attrs"]
    np.testing.assert_allclose(ours["logits"].astype(np.float32), theirs["logits"].astype(np.float32),
                               rtol=2e-3, atol=2e-3)


def test_ddp_two_processes_write_the_single_process_file(demo_dir, teacher_checkpoint, single_process_file, tmp_path):
    config_updates = updates(demo_dir, teacher_checkpoint, out="ddp/", split="basedataset.balanced_train_hdf5",
                             chunk_rows=CHUNK)
    process = run_script(["save_logits", "-u", "with", "demo",
                          *[f"{key}={value}" for key, value in config_updates.items()]], cwd=tmp_path,
                         env_extra={"DDP": "2"})
    assert "2 processes" in process.stdout
    assert not [name for name in os.listdir(tmp_path / "ddp") if not name.endswith(".logits.hdf")]
    assert_same_file(tmp_path / "ddp" / "balanced_train_segments_mp3.logits.hdf", single_process_file)


def test_a_file_of_another_source_class_count_or_teacher_is_refused_before_any_work(
        demo_dir, teacher_checkpoint, single_process_file, tmp_path, monkeypatch):
    import helpers.experiment

    def no_network(*args, **kwargs):
        raise AssertionError("the network was built before the output file was checked")

    monkeypatch.setattr(helpers.experiment, "build_module", no_network)
    train_file = source(demo_dir, "balanced_train_segments_mp3.hdf")
    other_classes = tmp_path / "classes.hdf"
    create_logits_file(other_classes, SourceIdentity.of(train_file), CLASSES + 1, "{}")
    not_logits = tmp_path / "not_logits.hdf"
    shutil.copy(source(demo_dir, "eval_segments_mp3.hdf"), not_logits)
    cases = [(single_process_file, "eval_hdf5", {}, "was computed from another source"),
             (str(other_classes), "balanced_train_hdf5", {}, "has logits of 9 classes, the network's head has 8"),
             (single_process_file, "balanced_train_hdf5", {"models.net.checkpoint_weights": "swa"},
              "holds logits of another teacher"),
             (str(not_logits), "balanced_train_hdf5", {}, "is not a teacher logits file")]
    for out, split, extra, message in cases:
        before = os.stat(out).st_mtime_ns
        with pytest.raises(ConfigError, match=message) as error:
            run_in_process("save_logits", updates(demo_dir, teacher_checkpoint, out=out, split=split, **extra),
                           tmp_path)
        assert repr(out) in str(error.value) and os.stat(out).st_mtime_ns == before
    with pytest.raises(ConfigError, match="split: 'test_hdf5'; allowed: balanced_train_hdf5, unbalanced_train_hdf5"):
        run_in_process("save_logits", updates(demo_dir, teacher_checkpoint, out="x/", split="test_hdf5"), tmp_path)


def test_a_folder_without_split_gets_every_training_file_as_distillation_reads_them(demo_dir, teacher_checkpoint,
                                                                                    tmp_path):
    from helpers.distillation import teacher_files
    run_in_process("save_logits", updates(demo_dir, teacher_checkpoint, out="all/"), tmp_path)
    training_files = [source(demo_dir, name) for name in ("balanced_train_segments_mp3.hdf",
                                                          "unbalanced_train_segments_mp3.hdf")]
    written = [os.path.join(tmp_path, "all", name) for name in ("balanced_train_segments_mp3.logits.hdf",
                                                                 "unbalanced_train_segments_mp3.logits.hdf")]
    assert sorted(os.listdir(tmp_path / "all")) == [os.path.basename(path) for path in written]
    assert teacher_files({"kd": {"teacher_logits": str(tmp_path / "all")}}, training_files) == written
    assert [check_logits_file(path, data, CLASSES)["rows"] for path, data in zip(written, training_files)] == [40, 6]
    balanced = run_in_process("save_logits", updates(demo_dir, teacher_checkpoint, out="balanced/",
                                                     **{"datasets.training.dataset": "balanced"}), tmp_path)
    assert list(balanced.result) == [os.path.join("balanced", "balanced_train_segments_mp3.logits.hdf")]
    with pytest.raises(ConfigError, match="name the split to compute"):  # one file, two training files
        run_in_process("save_logits", updates(demo_dir, teacher_checkpoint, out="one.hdf"), tmp_path)


def test_the_row_writer_puts_rows_in_any_order_and_missing_rows_as_nan(demo_dir, tmp_path):
    path = tmp_path / "rows.hdf"
    create_logits_file(path, SourceIdentity.of(source(demo_dir, "eval_segments_mp3.hdf")), 3, "{}")
    assert os.stat(path).st_blocks * 512 < os.path.getsize(path) + 4096  # logits allocated, not filled
    with LogitsRowWriter(path) as writer:
        writer.write([5, 2, 3, 9], np.arange(12).reshape(4, 3), [False, False, True, False])
    stored = read(path)
    assert np.flatnonzero(stored["written"]).tolist() == [2, 3, 5, 9]
    assert np.flatnonzero(stored["missing"]).tolist() == [3]
    assert stored["logits"][5].tolist() == [0, 1, 2] and stored["logits"][2].tolist() == [3, 4, 5]
    assert np.isnan(stored["logits"][3]).all() and stored["logits"][9].tolist() == [9, 10, 11]
    with pytest.raises(IndexError):
        LogitsRowWriter(path).write([12], np.zeros((1, 3)), [False])


@pytest.mark.parametrize("script, splits", [
    ("ex_audioset", ("balanced_train_hdf5", "unbalanced_train_hdf5", "eval_hdf5")),
    ("ex_openmic", ("openmic_train_hdf5", "openmic_test_hdf5")), ("ex_esc50", ("esc50_hdf5",)),
    ("ex_fsd50k", ("balanced_train_hdf5", "valid_hdf5", "eval_hdf5")),
    ("ex_custom", ("train_hdf5", "valid_hdf5", "eval_hdf5"))])
def test_every_experiment_has_save_logits_over_its_files(script, splits):
    import importlib

    from tests.experiment_runs import resolved_config
    module = importlib.import_module(script)
    assert "save_logits" in module.ex.commands
    config = resolved_config(module.ex)
    assert all(isinstance(config["basedataset"][split], str) for split in splits)
    assert "out" not in config and "split" not in config  # the command's options stay out of training configs
    with pytest.raises(ConfigError, match="split: 'bogus'; allowed: " + ", ".join(splits) + "$"):
        unprepared = {"models.net.n_classes": 3} if script == "ex_custom" else {}  # no dataset.json to read it from
        module.ex.run("save_logits", config_updates={"out": "x/", "split": "bogus", **unprepared},
                      options={"--loglevel": "ERROR"})


def test_custom_data_logits_are_evaluations_windowed_whole_clip_logits(tmp_path):
    """ex_custom evaluates whole clips (1-2.5 s) on inference's windows: save_logits gives those logits."""
    import ex_custom
    from custom.prepare import prepare
    from tests.custom.clips import class_folders
    from tests.experiment_runs import tiny_training_updates
    class_folders(tmp_path / "audio", 3, seconds=(1.0, 2.5))
    prepare(tmp_path / "audio", tmp_path / "data", fractions=(0.6, 0.4, 0.0), workers=1)
    config_updates = tiny_training_updates(str(tmp_path / "data"), 1, {
        "models.net.s_patchout_t": 1, "datasets.valid.num_workers": 0, "datasets.eval.num_workers": 0})
    with contextlib.chdir(tmp_path):
        run = ex_custom.ex.run("save_logits", config_updates={**config_updates, "out": "valid.hdf",
                                                              "split": "valid_hdf5"}, options={"--loglevel": "ERROR"})
        evaluated = ex_custom.ex.run("evaluate_only", config_updates=config_updates,
                                     options={"--loglevel": "ERROR"}).result
    valid = os.path.join(str(tmp_path / "data"), "valid_mp3.hdf")
    assert run.config["eval_windowing"] and check_logits_file(tmp_path / "valid.hdf", valid, 3)["missing"] == 0
    logits = read(tmp_path / "valid.hdf")["logits"].astype(np.float32)
    targets = read_targets(valid, PackedBitsTargets(3))
    assert (logits.argmax(1) == targets.argmax(1)).mean() == pytest.approx(evaluated["valid_acc"], abs=1e-6)
    from helpers.networks import build_network
    from models.preprocess import AugmentMelSTFT
    from models.windowing import windowed_logits
    torch.manual_seed(run.config["seed"])  # the seeded random initialisation save_logits used
    net = build_network(**run.config["models"]["net"]).eval()
    mel = AugmentMelSTFT(**run.config["models"]["mel"]).eval()
    dataset = ex_custom.custom.evaluation_set(valid, 3, DataOptions(clip_length=None))
    with torch.inference_mode():
        expected = [windowed_logits(net, mel, torch.from_numpy(dataset[i][0])[None])[0].numpy()
                    for i in range(len(dataset))]
    np.testing.assert_allclose(logits, np.stack(expected), rtol=2e-3, atol=2e-3)
