"""`python -m custom prepare`: a folder of audio files (one sub-folder per class, or a CSV) becomes train/valid/eval
HDF5-mp3 files, a label file and dataset.json; odd names, nesting, any rate and channel count, broken files
reported and skipped, clear errors, a seeded stratified split, and a resumed run after SIGKILL."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from custom.dataset import INFO_FILE, LABEL_FILE, SPLIT_FILES, evaluation_set, label_space, read_info
from helpers.data import DataOptions
from custom.prepare import Clip, main, prepare, stratified_split
from helpers.data import PackedBitsTargets, decode_audio, encode_audio, read_label_file, read_targets
from helpers.data.hdf5 import read_audio_names
from tests.custom.clips import CLASSES, class_folders, multi_label_csv

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(capsys, *args):
    status = main(["prepare", *map(str, args), "--workers", "1"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def split_names(out):
    return {split: read_audio_names(out / file) for split, file in SPLIT_FILES.items() if (out / file).is_file()}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three class folders of 5 clips (wav 16 kHz, flac 44.1 kHz, mp3, ogg 48 kHz; stereo; a nested
    'take two/'; names with spaces and accents), a corrupt file, a file outside any class folder."""
    root = tmp_path_factory.mktemp("folder") / "audio"
    names = class_folders(root, 5, seconds=(0.5, 1.2))
    (root / "engine" / "broken clip.wav").write_bytes(b"RIFF\x00\x00 not really a wav file" * 8)
    (root / "readme.wav").write_bytes(encode_audio(np.zeros(800), 16000, "wav"))
    (root / "knocking" / "notes.txt").write_text("not audio")
    return root, names


class TestFolderPerClass:
    @pytest.fixture(scope="class")
    def prepared(self, folder, tmp_path_factory):
        out = tmp_path_factory.mktemp("prepared")
        status = main(["prepare", str(folder[0]), "--out", str(out), "--split", "0.6,0.2,0.2", "--workers", "2"])
        return out, status

    def test_every_readable_file_is_a_clip_of_its_folders_class(self, folder, prepared):
        out, status = prepared
        names = split_names(out)
        assert status == 0 and sum(map(len, names.values())) == 15
        assert sorted(sum(names.values(), [])) == sorted(sum(folder[1].values(), []))
        assert "birdsong/take two/clip 00 é.wav" in sum(names.values(), [])
        assert [label.display_name for label in read_label_file(out / LABEL_FILE)] == sorted(CLASSES)
        for split, file in SPLIT_FILES.items():
            targets = read_targets(out / file, PackedBitsTargets(3))
            assert (targets.sum(axis=1) == 1).all()
            expected = [sorted(CLASSES).index(name.split("/")[0]) for name in names[split]]
            assert targets.argmax(axis=1).tolist() == expected

    def test_a_stratified_split_and_the_dataset_description(self, prepared):
        out, _ = prepared
        assert {split: len(names) for split, names in split_names(out).items()} == {"train": 9, "valid": 3, "eval": 3}
        for names in split_names(out).values():
            if len(names) == 3:
                assert sorted(name.split("/")[0] for name in names) == sorted(CLASSES)  # one of each class
        info = read_info(out)
        assert info["classes"] == sorted(CLASSES) and info["multi_label"] is False and info["channels"] == 1
        assert info["splits"] == {"train": 9, "valid": 3, "eval": 3} and info["skipped"] == 2
        assert label_space(out) == (3, False) and label_space(out / "nothing") == (None, None)

    def test_any_rate_and_channel_count_is_stored_as_32_khz_mono_mp3(self, folder, prepared):
        out, _ = prepared
        with h5py.File(out / SPLIT_FILES["train"]) as file:
            for name, data in zip(file["audio_name"][:], file["mp3"][:]):
                source = decode_audio(folder[0] / name.decode(), 32000)
                decoded = decode_audio(data, 32000, channels=None)
                assert decoded.shape[0] == 1 and abs(decoded.shape[1] - len(source)) < 2400  # encoder padding

    def test_broken_and_loose_files_are_skipped_by_name_and_summarised(self, folder, capsys, tmp_path):
        status, out, err = run(capsys, folder[0], "--out", tmp_path)
        assert status == 0
        assert "skipped 2 files" in out
        assert "  engine/broken clip.wav: cannot decode audio" in out
        assert "  readme.wav: not inside a class folder" in out
        assert "3 classes, single-label (cross-entropy, accuracy); train 11, valid 2, eval 2 clips" in out
        skipped = (tmp_path / "skipped.tsv").read_text(encoding="utf-8").splitlines()
        assert [line.split("\t")[0] for line in skipped] == ["engine/broken clip.wav", "readme.wav"]

    def test_stereo_stays_stereo_with_channels_2(self, folder, tmp_path):
        prepare(folder[0], tmp_path, channels=2, workers=1)
        evaluation = evaluation_set(str(tmp_path / SPLIT_FILES["train"]), 3, DataOptions(clip_length=None, channels=2))
        with h5py.File(tmp_path / SPLIT_FILES["train"]) as file:
            stored = {name.decode(): decode_audio(data, channels=None).shape[0]
                      for name, data in zip(file["audio_name"][:], file["mp3"][:])}
        assert stored["birdsong/clip 01 é.flac"] == 2 and stored["birdsong/take two/clip 00 é.wav"] == 1
        waveform, name, _ = evaluation[0]
        assert waveform.shape[0] == 2  # mono clips are repeated into both channels
        with pytest.raises(ValueError, match="converted with .*'channels': 2.*not .*'channels': 1"):
            prepare(folder[0], tmp_path, channels=1, workers=1)


class TestCSV:
    def test_given_splits_and_multiple_labels_make_a_multi_label_dataset(self, tmp_path, capsys):
        csv_path = multi_label_csv(tmp_path, 12, splits=lambda i: ("train", "train", "val", "test")[i % 4],
                                   seconds=(0.4, 0.8))
        with open(csv_path, "a", encoding="utf-8") as file:
            file.write("missing.wav,engine,train\n")
        status, out, _ = run(capsys, tmp_path / "audio", "--out", tmp_path / "out", "--csv", csv_path)
        assert status == 0 and "multi-label (BCE, mAP)" in out and "  missing.wav: file does not exist" in out
        rows = [line.split(",") for line in csv_path.read_text(encoding="utf-8").splitlines()[1:-1]]
        expected = {"train": [], "valid": [], "eval": []}
        for name, _, split in rows:
            expected[{"train": "train", "val": "valid", "test": "eval"}[split]].append(name)
        assert split_names(tmp_path / "out") == {split: sorted(names) for split, names in expected.items()}
        labels_of = {name: labels.split(";") for name, labels, _ in rows}
        targets = read_targets(tmp_path / "out" / SPLIT_FILES["train"], PackedBitsTargets(3))
        for name, target in zip(split_names(tmp_path / "out")["train"], targets):
            assert [CLASSES[i] for i in np.flatnonzero(target)] == sorted(labels_of[name])
        assert read_info(tmp_path / "out")["multi_label"] is True

    def test_without_a_header_or_split_column_a_stratified_split_is_drawn(self, folder, tmp_path, capsys):
        names = folder[1]
        rows = [f'"{name}",{cls}' for cls in CLASSES for name in names[cls]]
        (tmp_path / "labels.csv").write_text("\ufeff" + "\n".join(rows) + "\n", encoding="utf-8")  # with a BOM
        status, out, _ = run(capsys, folder[0], "--out", tmp_path / "out", "--csv", tmp_path / "labels.csv",
                             "--split", "0.8,0.2,0")
        assert status == 0 and "train 12, valid 3 clips" in out and "skipped" not in out
        assert not (tmp_path / "out" / SPLIT_FILES["eval"]).exists()

    @pytest.mark.parametrize("body, message", [
        ("filename,labels\na.wav\n", "line 2: expected filename,labels[,split], found 1 columns"),
        ("filename,labels,split\na.wav,dog,training set\n", "line 2: split 'training set'; allowed: train, valid"),
        ("filename,labels\na.wav,dog\n./a.wav,cat\n", "line 3: 'a.wav' is listed twice (first on line 2)"),
        ("filename,labels,split\na.wav,dog,train\nb.wav,dog,\n", "lines [2] give a split but lines [3] do not"),
        ("filename,labels\n../outside.wav,dog\n", "line 2: filename '../outside.wav' must be a path inside"),
        ("filename,label\n", "line 1: header must be filename,labels[,split]"),
    ])
    def test_malformed_csvs_are_errors_naming_the_line(self, tmp_path, capsys, body, message):
        (tmp_path / "audio").mkdir()
        (tmp_path / "labels.csv").write_text(body, encoding="utf-8")
        status, _, err = run(capsys, tmp_path / "audio", "--out", tmp_path / "out", "--csv", tmp_path / "labels.csv")
        assert status == 2 and message in err and str(tmp_path / "labels.csv") in err


class TestErrors:
    def test_an_empty_folder_says_so(self, tmp_path, capsys):
        (tmp_path / "empty" / "dog").mkdir(parents=True)
        status, _, err = run(capsys, tmp_path / "empty", "--out", tmp_path / "out")
        assert status == 2 and err.startswith(f"error: no audio files below '{tmp_path / 'empty'}'")
        assert not (tmp_path / "out").exists()

    def test_a_missing_folder_and_bad_options(self, tmp_path, capsys):
        assert run(capsys, tmp_path / "nowhere", "--out", tmp_path / "out")[2].startswith("error: source folder")
        assert "train,valid,eval fractions summing to 1" in run(capsys, tmp_path, "--out", tmp_path, "--split",
                                                                 "0.9,0.2,0")[2]

    def test_too_few_clips_for_a_split(self, tmp_path, capsys):
        for index in range(2):
            (tmp_path / "audio" / "dog").mkdir(parents=True, exist_ok=True)
            (tmp_path / "audio" / "dog" / f"{index}.wav").write_bytes(encode_audio(np.zeros(3200), 16000, "wav"))
        status, _, err = run(capsys, tmp_path / "audio", "--out", tmp_path / "out")
        assert status == 2 and "the valid split would be empty (2 clips at fraction 0.1)" in err


class TestStratifiedSplit:
    clips = ([Clip(f"a{i:02d}", ("a",)) for i in range(30)] + [Clip(f"b{i:02d}", ("b",)) for i in range(20)]
             + [Clip(f"c{i:02d}", ("c",)) for i in range(10)])

    def counts(self, splits):
        return {split: {label: sum(clip.labels[0] == label for clip in members) for label in "abc"}
                for split, members in splits.items()}

    def test_each_class_gives_its_share_to_every_split(self):
        assert self.counts(stratified_split(self.clips, (0.8, 0.1, 0.1), seed=0)) == {
            "train": {"a": 24, "b": 16, "c": 8}, "valid": {"a": 3, "b": 2, "c": 1}, "eval": {"a": 3, "b": 2, "c": 1}}

    def test_remainders_go_to_the_largest_fractions_and_the_totals_round(self):
        clips = self.clips[:7] + self.clips[30:35] + self.clips[50:53]  # 7, 5, 3 clips
        counts = self.counts(stratified_split(clips, (0.6, 0.2, 0.2), seed=0))
        assert counts["eval"] == counts["valid"] == {"a": 1, "b": 1, "c": 1}  # 1.4, 1.0, 0.6 -> 3 in all
        assert counts["train"] == {"a": 5, "b": 3, "c": 1}

    def test_the_seed_chooses_the_members_not_the_counts(self):
        first, again, other = (stratified_split(self.clips, seed=seed) for seed in (0, 0, 1))
        assert first == again and first["eval"] != other["eval"]
        assert self.counts(first) == self.counts(other)

    def test_multi_label_clips_count_for_their_rarest_label(self):
        clips = [Clip(f"x{i}", ("common", "rare") if i < 10 else ("common",)) for i in range(40)]
        splits = stratified_split(clips, (0.6, 0.2, 0.2), seed=3)
        rare = [sum("rare" in clip.labels for clip in splits[split]) for split in ("train", "valid", "eval")]
        assert rare == [6, 2, 2]


def test_a_killed_run_resumes_to_the_same_output(tmp_path):
    """SIGKILL the real command line mid-conversion, rerun it: the output equals an uninterrupted run's."""
    class_folders(tmp_path / "audio", 5, seconds=(3.0, 5.0))
    command = [sys.executable, "-m", "custom", "prepare", str(tmp_path / "audio"), "--out", str(tmp_path / "out"),
               "--workers", "1"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(list((tmp_path / "out" / "mp3").rglob("*.mp3"))) < 3 and process.poll() is None:
        assert time.monotonic() < deadline, "the conversion did not start"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    converted = len(list((tmp_path / "out" / "mp3").rglob("*.mp3")))
    assert 3 <= converted < 15 and not (tmp_path / "out" / INFO_FILE).exists()
    resumed = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({converted} already done)" in resumed.stderr
    prepare(tmp_path / "audio", tmp_path / "fresh", workers=1)
    for name in [*SPLIT_FILES.values()]:
        with h5py.File(tmp_path / "out" / name) as got, h5py.File(tmp_path / "fresh" / name) as want:
            assert got["audio_name"][:].tolist() == want["audio_name"][:].tolist()
            assert all(bytes(a) == bytes(b) for a, b in zip(got["mp3"][:], want["mp3"][:]))
            np.testing.assert_array_equal(got["target"][:], want["target"][:])
    for name in (LABEL_FILE, INFO_FILE):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()
    leftovers = [path.name for path in (tmp_path / "out").rglob("*.partial-*")]
    assert all(name.endswith(f".partial-{process.pid}") for name in leftovers)  # only the write the kill cut off
    assert json.loads((tmp_path / "out" / INFO_FILE).read_text())["splits"] == {"train": 11, "valid": 2, "eval": 2}


def test_every_file_prepare_writes_appears_complete_by_a_rename(tmp_path, monkeypatch):
    """The mp3s, the HDF5 files, the label file, dataset.json and the reports are each written to a temporary
    file and renamed into place (helpers.data.atomic), none written in place."""
    class_folders(tmp_path / "audio", 2, seconds=(0.5, 0.6))
    renamed, real_replace = [], os.replace

    def replace(source, target):
        renamed.append(pathlib.Path(target).relative_to(tmp_path / "out").as_posix())
        real_replace(source, target)
    monkeypatch.setattr(os, "replace", replace)
    prepare(tmp_path / "audio", tmp_path / "out", fractions=(0.5, 0.5, 0), workers=1)
    written = sorted(path.relative_to(tmp_path / "out").as_posix() for path in (tmp_path / "out").rglob("*")
                     if path.is_file())
    assert sorted(renamed) == written
    assert {INFO_FILE, LABEL_FILE, SPLIT_FILES["train"], SPLIT_FILES["valid"], "skipped.tsv", "mp3/settings.json",
            "mp3/conversion_failures.tsv"} <= set(written)
    assert sum(name.endswith(".mp3") for name in written) == 2 * len(CLASSES)


class TestStrongLabels:
    """`--events`: a DCASE TSV of the clips' events becomes strong labels stored beside each split's audio."""

    @pytest.fixture(scope="class")
    def event_folder(self, tmp_path_factory):
        from custom.event_demo import make_event_demo

        root = tmp_path_factory.mktemp("events")
        tsv = make_event_demo(root, clips=30, n_classes=3, clip_length=2.0)
        with open(tsv, "a") as file:
            file.write("not_there.wav\t0.1\t0.5\tAM tone 5062 Hz\n")  # listed, but no such file
        return root, tsv

    def test_events_become_frame_targets_of_each_split(self, event_folder, tmp_path, capsys):
        from custom.dataset import training_set
        from helpers.data.events import read_events

        root, tsv = event_folder
        status, out, _ = run(capsys, root / "audio", "--out", tmp_path / "out", "--events", tsv, "--split", "0.6,0.2,0.2")
        assert status == 0 and "not_there.wav: file does not exist" in out
        info = read_info(tmp_path / "out")
        assert info["strong"] is True and info["multi_label"] is True and sum(info["splits"].values()) == 30
        table = read_events(tsv, "dcase", info["classes"])
        dataset = evaluation_set(os.fspath(tmp_path / "out" / SPLIT_FILES["train"]), len(info["classes"]),
                                 DataOptions(clip_length=2.0, frame_seconds=0.04))
        for index in range(len(dataset)):
            _, name, target = dataset[index]
            strong, _, frames = dataset.layout.unpack(target)
            expected = table.events[os.path.splitext(name)[0]]
            assert strong == 1 and frames.sum(axis=0).astype(bool).sum() == len({event[2] for event in expected})
            for onset, _, label in expected:
                assert frames[int(onset / 0.04 + 1e-6), label] == 1
        assert len(training_set(os.fspath(tmp_path / "out" / SPLIT_FILES["train"]), len(info["classes"]),
                                DataOptions(clip_length=2.0, frame_seconds=0.04))) == len(dataset)

    def test_a_bad_row_stops_with_its_line_or_is_counted_with_skip_bad_rows(self, event_folder, tmp_path, capsys):
        root, tsv = event_folder
        bad = tmp_path / "bad.tsv"
        bad.write_text(pathlib.Path(tsv).read_text() + "clip_0001.wav\t1.5\t1.2\tclicks 3114 Hz\n")
        line = len(bad.read_text().splitlines())
        status, _, err = run(capsys, root / "audio", "--out", tmp_path / "out", "--events", bad)
        assert status == 2 and f"line {line}: onset 1.5 must be >= 0 and before offset 1.2" in err
        status, _, _ = run(capsys, root / "audio", "--out", tmp_path / "out", "--events", bad, "--skip-bad-rows")
        assert status == 0 and read_info(tmp_path / "out")["bad_event_rows"] == 1
