"""Strong labels: reading DCASE and AudioSet strong TSVs, merging, storage beside the audio, frame encoding,
and frame targets that move and mix with their audio."""

import numpy as np
import pytest

from helpers.data import DataOptions
from helpers.data.augment import RollDataset
from helpers.data.events import (EventFileError, attach_events, frame_targets, frames_to_events, merge_overlapping,
                                 read_events, validate_events)
from helpers.data.datasets import make_training_set
from helpers.data.frames import FrameLayout, HDF5EventDataset
from tests.helpers.data.clips import SR, write_tone_hdf5


def write_tsv(path, header, rows):
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(map(str, row)) + "\n" for row in rows))
    return path


DCASE = ("filename", "onset", "offset", "event_label")


# --- frame encoding -----------------------------------------------------------------------------------------
def test_frames_cover_every_frame_an_event_overlaps():
    # 40 ms frames: onset 0.05 lies in frame 1, offset 0.13 in frame 3 -> frames 1, 2, 3
    targets = frame_targets([0.05], [0.13], [2], n_classes=3, n_frames=10, frame_seconds=0.04)
    assert targets.shape == (10, 3)
    assert np.flatnonzero(targets[:, 2]).tolist() == [1, 2, 3]
    assert targets[:, :2].sum() == 0


def test_frame_edges_are_exact_on_frame_boundaries():
    targets = frame_targets([0.08], [0.16], [0], n_classes=1, n_frames=10, frame_seconds=0.04)
    assert np.flatnonzero(targets[:, 0]).tolist() == [2, 3]  # [0.08, 0.16) is frames 2 and 3, not 4


def test_events_are_cut_at_the_clip_end_and_moved_by_a_crop():
    targets = frame_targets([0.3], [5.0], [0], n_classes=1, n_frames=10, frame_seconds=0.04)
    assert np.flatnonzero(targets[:, 0]).tolist() == [7, 8, 9]
    cropped = frame_targets([0.3], [0.38], [0], n_classes=1, n_frames=10, frame_seconds=0.04, start_seconds=0.2)
    assert np.flatnonzero(cropped[:, 0]).tolist() == [2, 3, 4]  # 0.1 .. 0.18 s of the crop
    before = frame_targets([0.0], [0.1], [0], n_classes=1, n_frames=10, frame_seconds=0.04, start_seconds=0.2)
    assert before.sum() == 0


def test_overlapping_and_touching_events_of_one_class_merge():
    merged = merge_overlapping([(0.0, 1.0, 0), (0.5, 2.0, 0), (2.0, 2.5, 0), (3.0, 4.0, 0), (0.2, 0.4, 1)])
    assert merged == [(0.0, 2.5, 0), (0.2, 0.4, 1), (3.0, 4.0, 0)]


def test_frame_runs_become_events_again():
    active = np.zeros((10, 2), dtype=bool)
    active[2:5, 0] = active[7:, 1] = True
    assert frames_to_events(active, 0.04, ["a", "b"]) == [(0.08, 0.2, "a"), (0.28, 0.4, "b")]


# --- reading ------------------------------------------------------------------------------------------------
def test_dcase_tsv_lists_clips_with_and_without_events(tmp_path):
    path = write_tsv(tmp_path / "events.tsv", DCASE, [("a.wav", 0.5, 1.0, "dog"), ("a.wav", 0.8, 1.5, "dog"),
                                                      ("b.wav", "", "", ""), ("c/d.wav", 0, 0.2, "cat")])
    table = read_events(path, "dcase")
    assert table.classes == ["cat", "dog"]
    assert table.events == {"a": [(0.5, 1.5, 1)], "b": [], "c/d": [(0.0, 0.2, 0)]}
    assert table.names == {"a": "a.wav", "b": "b.wav", "c/d": "c/d.wav"}


def test_audioset_strong_segment_ids_name_the_youtube_clip(tmp_path):
    header = ("segment_id", "start_time_seconds", "end_time_seconds", "label")
    path = write_tsv(tmp_path / "strong.tsv", header, [("--4gqARaEJE_0", 0.0, 2.5, "/m/09x0r"),
                                                       ("-0SdAVK79lg_30000", 1.2, 3.0, "/m/05zppz")])
    table = read_events(path, "audioset", ["/m/09x0r", "/m/05zppz"])
    assert table.events == {"--4gqARaEJE": [(0.0, 2.5, 0)], "-0SdAVK79lg": [(1.2, 3.0, 1)]}


@pytest.mark.parametrize("row, problem", [
    (("a.wav", 1.0, 1.0, "dog"), "before offset"),
    (("a.wav", -0.1, 1.0, "dog"), "before offset"),
    (("a.wav", 6.0, 7.0, "dog"), "past the end"),
    (("a.wav", 0.0, 1.0, "wolf"), "label 'wolf'"),
    (("a.wav", "x", 1.0, "dog"), "not numbers"),
])
def test_a_bad_row_is_an_error_naming_file_and_line_or_is_counted(tmp_path, row, problem):
    path = write_tsv(tmp_path / "events.tsv", DCASE, [("a.wav", 0.0, 0.5, "dog"), row])
    with pytest.raises(EventFileError, match=rf"events.tsv' line 3: .*{problem}"):
        read_events(path, "dcase", ["dog"], clip_seconds={"a": 5.0})
    table = read_events(path, "dcase", ["dog"], skip_bad_rows=True, clip_seconds={"a": 5.0})
    assert table.events == {"a": [(0.0, 0.5, 0)]}
    assert [(line, problem in reason) for _, line, reason in table.bad_rows] == [(3, True)]


def test_a_file_without_the_format_columns_is_refused(tmp_path):
    path = write_tsv(tmp_path / "events.tsv", ("filename", "start", "end"), [("a.wav", 0, 1)])
    with pytest.raises(EventFileError, match="lacks column"):
        read_events(path, "dcase")


# --- storage and datasets -----------------------------------------------------------------------------------
@pytest.fixture()
def strong_file(tmp_path):
    """Four 1 s tone clips clip0..clip3; clip0 and clip1 have strong labels, clip2 clip labels only, and
    the annotations also list a clip the file lacks."""
    path = tmp_path / "strong.hdf"
    write_tone_hdf5(path, n_clips=4, classes_num=3, seconds=1.0)
    tsv = write_tsv(tmp_path / "events.tsv", DCASE, [("clip0.mp3", 0.2, 0.4, "c1"), ("clip1.mp3", "", "", ""),
                                                     ("gone.mp3", 0.0, 0.5, "c0")])
    return path, read_events(tsv, "dcase", ["c0", "c1", "c2"])


def test_attach_stores_events_per_clip_and_names_missing_clips(strong_file):
    path, table = strong_file
    report = attach_events(path, table)
    assert (report.strong_rows, report.events, report.missing) == (2, 1, ["gone"])
    validate_events(path, 3)
    with pytest.raises(ValueError, match="3 classes, the config 5"):
        validate_events(path, 5)


def test_a_file_without_events_is_refused_with_the_remedy(tmp_path):
    path = tmp_path / "plain.hdf"
    write_tone_hdf5(path, n_clips=2, classes_num=3)
    with pytest.raises(ValueError, match="holds no strong labels.*--events"):
        HDF5EventDataset(path, 3, DataOptions(clip_length=1.0))


def test_event_dataset_targets_hold_frames_clip_labels_and_the_strong_flag(strong_file):
    path, table = strong_file
    attach_events(path, table)
    dataset = HDF5EventDataset(path, 3, DataOptions(clip_length=1.0, frame_seconds=0.04).for_evaluation(), training=False)
    layout = dataset.layout
    assert (layout.frames, layout.width) == (25, 1 + 3 + 25 * 3)
    strong, labels, frames = layout.unpack(np.stack([dataset[index][2] for index in range(3)]))
    assert strong.tolist() == [1, 1, 0]
    assert np.flatnonzero(frames[0, :, 1]).tolist() == [5, 6, 7, 8, 9] and frames[0].sum() == 5
    assert labels[0].tolist() == [0, 1, 0] and frames[1].sum() == 0 and labels[1].sum() == 0
    assert frames[2].sum() == 0 and labels[2].sum() >= 1  # clip labels from the stored target


def test_roll_moves_frame_targets_with_the_audio(strong_file):
    path, table = strong_file
    attach_events(path, table)
    dataset = HDF5EventDataset(path, 3, DataOptions(clip_length=1.0, frame_seconds=0.04).for_evaluation(), training=False)
    rolled = RollDataset(dataset, shift=int(0.12 * SR), roll_target=dataset.roll_target)
    waveform, _, target = rolled[0]
    original = dataset[0]
    np.testing.assert_array_equal(waveform, np.roll(original[0], int(0.12 * SR), axis=1))
    frames = dataset.layout.unpack(target)[2]
    assert np.flatnonzero(frames[:, 1]).tolist() == [8, 9, 10, 11, 12]  # 3 frames of 40 ms later


def test_waveform_mixup_mixes_frames_and_keeps_strong_only_when_both_are():
    layout = FrameLayout(classes=2, frames=3)
    strong = layout.pack(True, np.array([1.0, 0.0]), np.array([[1, 0], [1, 0], [0, 0]], dtype=np.float32))
    weak = layout.pack(False, np.array([0.0, 1.0]), np.zeros((3, 2), np.float32))
    mixed = layout.mix(strong, weak, 0.75)
    flag, labels, frames = layout.unpack(mixed)
    assert flag == 0 and labels.tolist() == [0.75, 0.25] and frames[:, 0].tolist() == [0.75, 0.75, 0.0]
    assert layout.unpack(layout.mix(strong, strong, 0.6))[0] == 1


def test_training_crops_move_the_events(strong_file):
    path, table = strong_file
    attach_events(path, table)
    options = DataOptions(clip_length=0.4, random_crop=True, roll=False, wavmix=0, seed=3, frame_seconds=0.04)
    dataset = make_training_set([path], 3, options)
    found = set()
    for epoch in range(6):
        dataset.set_epoch(epoch)
        frames = dataset.layout.unpack(dataset[0][2])[2][:, 1]
        found.add(tuple(np.flatnonzero(frames)))
    assert len(found) > 1  # the event sits elsewhere in each crop
    assert all(len(run) <= 6 for run in found)


def test_the_attach_command_stores_audioset_strong_labels_by_mid(tmp_path, capsys):
    from helpers.data.events import main
    from helpers.data.labels import write_label_file

    path = tmp_path / "eval.hdf"
    write_tone_hdf5(path, n_clips=2, classes_num=2)
    import h5py
    with h5py.File(path, "a") as file:  # AudioSet names: Y<YouTube id>.mp3
        file["audio_name"][:] = np.array([b"Y--4gqARaEJE.mp3", b"Y-0SdAVK79lg.mp3"])
    write_label_file(tmp_path / "labels.csv", [("/m/a", "A"), ("/m/b", "B")])
    tsv = write_tsv(tmp_path / "strong.tsv", ("segment_id", "start_time_seconds", "end_time_seconds", "label"),
                    [("--4gqARaEJE_0", 0.1, 0.5, "/m/b"), ("zzzzzzzzzzz_10000", 0.0, 1.0, "/m/a")])
    assert main(["attach", "--hdf5", str(path), "--events", str(tsv), "--labels", str(tmp_path / "labels.csv")]) == 0
    assert "2 annotated clips, 1 in none of the files (e.g. zzzzzzzzzzz)" in capsys.readouterr().out
    dataset = HDF5EventDataset(path, 2, DataOptions(clip_length=1.0, frame_seconds=0.04).for_evaluation(), training=False)
    strong, _, frames = dataset.layout.unpack(dataset[0][2])
    assert strong == 1 and np.flatnonzero(frames[:, 1]).tolist() == list(range(2, 13))
    assert dataset.layout.unpack(dataset[1][2])[0] == 0
