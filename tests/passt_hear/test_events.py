"""Events from frame probabilities: the median filter, thresholds per class, onsets and offsets of a known
probability track; and ``python -m passt_hear tag --events`` on a generated file with a known tone burst."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers.data.audio import decode_audio, encode_audio
from helpers.data.labels import Label, write_label_file
from models.passt import get_model
from models.preprocess import AugmentMelSTFT
from passt_hear.cli import main
from passt_hear.events import (Event, active_runs, class_thresholds, find_events, median_filter,
                               read_threshold_file, write_events)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LABELS = [Label(0, "/x/buzz", "buzz"), Label(1, "/x/tone", "tone burst"), Label(2, "/x/rain", "rain, light")]
BURST = (3.0, 5.0)  # seconds of the tone in the generated file
RATE = 16000  # the file's rate: tagging resamples it to 32 kHz


class TestTrack:
    """A 10 s track, frames centred every 0.5 s (a frame stands for +-0.25 s)."""

    times = np.arange(21) * 0.5

    def track(self):
        probabilities = np.full((21, 3), 0.1)
        probabilities[4:9, 0] = [0.6, 0.9, 0.3, 0.8, 0.7]  # 2.0-4.0 s, with a dip at 3.0 s
        probabilities[14, 1] = 0.8  # one frame at 7.0 s
        probabilities[18:, 2] = 0.95  # 9.0 s to the end
        probabilities[0, 2] = 0.97  # the first frame
        return probabilities

    def events(self, thresholds=0.5, median_frames=1):
        return find_events(self.times, self.track(), class_thresholds(LABELS, thresholds), LABELS, 0.5, 10.0,
                           median_frames, "track.wav")

    def test_each_run_above_threshold_is_an_event_of_half_a_hop_either_side(self):
        assert [(e.label, e.onset, e.offset, e.confidence) for e in self.events()] == [
            ("rain, light", 0.0, 0.25, 0.97), ("buzz", 1.75, 2.75, 0.9), ("buzz", 3.25, 4.25, 0.8),
            ("tone burst", 6.75, 7.25, 0.8), ("rain, light", 8.75, 10.0, 0.95)]
        assert self.events()[1] == Event("track.wav", 1.75, 2.75, 0, "/x/buzz", "buzz", 0.9)

    def test_the_median_filter_bridges_dips_and_removes_single_frames_but_the_mirrored_ends(self):
        assert [(e.label, e.onset, e.offset, e.confidence) for e in self.events(median_frames=3)] == [
            ("rain, light", 0.0, 0.25, 0.97), ("buzz", 1.75, 4.25, 0.9), ("rain, light", 8.75, 10.0, 0.95)]
        assert [e.label for e in self.events(median_frames=5)] == ["buzz", "rain, light"]

    def test_thresholds_per_class(self):
        thresholds = class_thresholds(LABELS, 0.5, [("tone burst", 0.85), ("/x/buzz", 0.75), ("2", 0.99)])
        np.testing.assert_allclose(thresholds, [0.75, 0.85, 0.99])
        found = find_events(self.times, self.track(), thresholds, LABELS, 0.5, 10.0)
        assert [(e.label, e.onset, e.offset) for e in found] == [("buzz", 2.25, 2.75), ("buzz", 3.25, 3.75)]

    def test_median_filter_and_runs(self):
        x = np.array([0, 1, 0, 0, 1, 1, 1, 0], dtype=float)[:, None]
        np.testing.assert_array_equal(median_filter(x, 3)[:, 0], [0, 0, 0, 0, 1, 1, 1, 0])
        np.testing.assert_array_equal(median_filter(x, 1), x)
        assert active_runs(np.array([True, True, False, True])) == [(0, 1), (3, 3)]
        assert active_runs(np.zeros(4, bool)) == []
        with pytest.raises(ValueError, match="odd number of frames"):
            median_filter(x, 2)

    def test_bad_thresholds_name_the_class_or_value(self):
        with pytest.raises(ValueError, match=r"no class 'dog'"):
            class_thresholds(LABELS, 0.5, [("dog", 0.3)])
        with pytest.raises(ValueError, match=r"threshold 1.5 for 'buzz' must lie in \[0, 1\]"):
            class_thresholds(LABELS, 0.5, [("buzz", 1.5)])

    def test_threshold_file_and_event_files(self, tmp_path):
        path = tmp_path / "thresholds.csv"
        path.write_text('label,threshold\n"rain, light",0.2\nbuzz,0.7\n', encoding="utf-8")
        assert read_threshold_file(str(path)) == [("rain, light", 0.2), ("buzz", 0.7)]
        path.write_text("buzz;0.7\n", encoding="utf-8")
        with pytest.raises(ValueError, match="line 1: expected label,threshold"):
            read_threshold_file(str(path))
        events = self.events()
        write_events(str(tmp_path / "e.json"), events)
        write_events(str(tmp_path / "e.csv"), events)
        assert [Event(**e) for e in json.loads((tmp_path / "e.json").read_text())] == events
        with open(tmp_path / "e.csv", newline="") as file:
            rows = list(csv.DictReader(file))
        assert rows[1] == {"file": "track.wav", "onset": "1.75", "offset": "2.75", "index": "0", "mid": "/x/buzz",
                           "label": "buzz", "confidence": "0.9"}


def burst_file(seconds=8.0, seed=0):
    """Faint noise with a 1 kHz tone from BURST[0] to BURST[1] s, at RATE."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    waveform = 0.003 * rng.standard_normal(len(t))
    inside = (t >= BURST[0]) & (t < BURST[1])
    waveform[inside] += 0.4 * np.sin(2 * np.pi * 1000 * t[inside])
    return waveform


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A training checkpoint (network and SWA copy, as ex_custom writes) of passt_tiny whose head fires
    'tone burst' for 1 s of the tone and not for 1 s of the background, and the label file."""
    directory = tmp_path_factory.mktemp("planted")
    (directory / "burst.flac").write_bytes(encode_audio(burst_file(), RATE, "flac"))
    decoded = torch.from_numpy(decode_audio(directory / "burst.flac", 32000))  # as tagging decodes it
    windows = torch.stack([decoded[16000:48000], decoded[112000:144000]])  # 0.5-1.5 s and 3.5-4.5 s
    torch.manual_seed(0)
    net = get_model("passt_tiny", pretrained=False, n_classes=3).eval()
    with torch.no_grad():
        background, tone = net.head[0](net(AugmentMelSTFT().eval()(windows)[:, None])[1])
        direction = tone - background
        scale = 16.0 / direction.dot(direction)
        head = net.head[1]
        head.weight.zero_()
        head.bias.fill_(-8.0)
        head.weight[1] = scale * direction
        head.bias[1] = -scale * direction.dot((tone + background) / 2)
    state_dict = net.state_dict()
    checkpoint = {"state_dict": {**{"net." + k: v for k, v in state_dict.items()},
                                 **{"swa.net." + k: torch.zeros_like(v) for k, v in state_dict.items()},
                                 "swa.n_averaged": torch.tensor(1)}, "epoch": 3}
    torch.save(checkpoint, directory / "best.ckpt")
    write_label_file(directory / "labels.csv", LABELS)
    return directory


def tag(capsys, planted, *args):
    status = main(["tag", str(planted / "burst.flac"), "--arch", "passt_tiny", "--checkpoint",
                   str(planted / "best.ckpt"), "--labels", str(planted / "labels.csv"), "--frame-hop", "0.25", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


class TestTagEvents:
    def test_the_tone_burst_is_one_event_with_its_onset_and_offset(self, capsys, planted, tmp_path):
        status, out, _ = tag(capsys, planted, "--events", "--json", "--median-filter", "0.75",
                             "--events-out", str(tmp_path / "events.csv"))
        assert status == 0
        [result] = json.loads(out)
        [event] = result["events"]
        assert event["label"] == "tone burst" and event["mid"] == "/x/tone" and event["file"].endswith("burst.flac")
        assert abs(event["onset"] - BURST[0]) <= 0.4 and abs(event["offset"] - BURST[1]) <= 0.4
        assert event["confidence"] > 0.99
        with open(tmp_path / "events.csv", newline="") as file:
            assert [row["label"] for row in csv.DictReader(file)] == ["tone burst"]

    def test_text_output_lists_the_events_after_the_labels(self, capsys, planted):
        status, out, _ = tag(capsys, planted, "--events", "--topk", "1")
        lines = out.splitlines()
        assert status == 0 and lines[1].endswith("tone burst")
        assert lines[2] == "  events (onset - offset s, confidence, label):"
        assert lines[3].endswith("tone burst") and len(lines) == 4

    def test_a_class_threshold_above_its_probability_leaves_no_event(self, capsys, planted):
        status, out, _ = tag(capsys, planted, "--events", "--class-threshold", "tone burst=1.0")
        assert status == 0 and out.splitlines()[-1] == "  events: none"

    def test_an_unknown_class_is_a_usage_error(self, capsys, planted):
        with pytest.raises(SystemExit) as exit_info:
            tag(capsys, planted, "--events", "--class-threshold", "dog=0.3")
        assert exit_info.value.code == 2 and "no class 'dog'" in capsys.readouterr().err

    def test_the_command_line_writes_json_events(self, planted, tmp_path):
        out = tmp_path / "events.json"
        completed = subprocess.run(
            [sys.executable, "-m", "passt_hear", "tag", str(planted / "burst.flac"), "--arch", "passt_tiny",
             "--checkpoint", str(planted / "best.ckpt"), "--labels", str(planted / "labels.csv"), "--frame-hop",
             "0.25", "--events-out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert completed.returncode == 0, completed.stderr
        assert [event["label"] for event in json.loads(out.read_text())] == ["tone burst"]
