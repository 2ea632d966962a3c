"""``python -m passt_hear tag``: generated files in several formats, labels, JSON, frames, plots, failures."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers.data.audio import encode_audio
from helpers.data.labels import read_label_file
from models.passt import get_model
from passt_hear.cli import build_parser, load_model, main
from passt_hear.tagging import AUDIOSET_LABEL_FILE, load_labels

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOOSTED = 2  # "Female speech, woman speaking": a name with a comma


def tone(seconds, rate, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    left = 0.4 * np.sin(2 * np.pi * 440 * t)
    return left if channels == 1 else np.stack((left, 0.2 * np.sin(2 * np.pi * 660 * t)))


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    """wav, flac, mp3, a stereo file, a 44.1 kHz file and a corrupt file."""
    directory = tmp_path_factory.mktemp("audio")
    files = {"mono.wav": (tone(2.0, 32000), 32000, "wav"), "mono.flac": (tone(1.5, 32000), 32000, "flac"),
             "mono.mp3": (tone(2.5, 32000), 32000, "mp3"), "stereo.wav": (tone(2.0, 32000, 2), 32000, "wav"),
             "rate44k.wav": (tone(3.0, 44100), 44100, "wav")}
    for name, (waveform, rate, container) in files.items():
        (directory / name).write_bytes(encode_audio(waveform, rate, container))
    (directory / "corrupt.mp3").write_bytes(b"ID3 this is not an mp3 stream" * 10)
    (directory / "notes.txt").write_text("not audio, ignored when a folder is searched")
    return directory


@pytest.fixture(scope="module")
def boosted_checkpoint(tmp_path_factory):
    """passt_tiny whose head strongly prefers class BOOSTED, so the top label is known."""
    torch.manual_seed(0)
    state_dict = get_model("passt_tiny", pretrained=False).state_dict()
    state_dict["head.1.bias"][BOOSTED] = 8.0
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save(state_dict, path)
    return str(path)


def tag(capsys, *args):
    status = main(["tag", "--arch", "passt_tiny", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


class TestLabelFile:
    def test_shipped_audioset_labels_keep_quoted_names_with_commas(self):
        labels = read_label_file(AUDIOSET_LABEL_FILE)
        assert len(labels) == 527
        assert labels[1].display_name == "Male speech, man speaking" and labels[1].mid == "/m/05zppz"

    def test_count_must_match_the_model(self):
        with pytest.raises(ValueError, match="has 527 labels but the model has 20 classes"):
            load_labels(None, 20)


class TestTag:
    def test_every_readable_format_is_tagged_and_the_corrupt_file_reported(self, capsys, caplog, audio_dir,
                                                                           boosted_checkpoint):
        status, out, _ = tag(capsys, str(audio_dir), "--checkpoint", boosted_checkpoint, "--topk", "3")
        assert status == 1
        for name, seconds in [("mono.wav", 2.0), ("mono.flac", 1.5), ("stereo.wav", 2.0), ("rate44k.wav", 3.0)]:
            assert f"{audio_dir / name} ({seconds:.2f} s)" in out
        assert f"{audio_dir / 'mono.mp3'} (2." in out  # the encoder adds a little padding
        assert out.count("Female speech, woman speaking") == 5
        assert "corrupt.mp3" not in out and "notes.txt" not in out + caplog.text
        assert f"skipped {audio_dir / 'corrupt.mp3'}: cannot decode audio" in caplog.text
        assert "1 of 6 files could not be tagged" in caplog.text

    def test_json_lists_top_labels_most_probable_first(self, capsys, audio_dir, boosted_checkpoint):
        status, out, _ = tag(capsys, str(audio_dir / "rate44k.wav"), str(audio_dir / "stereo.wav"), "--json",
                             "--checkpoint", boosted_checkpoint, "--topk", "4")
        assert status == 0
        results = json.loads(out)
        assert [r["file"] for r in results] == [str(audio_dir / "rate44k.wav"), str(audio_dir / "stereo.wav")]
        assert results[0]["duration"] == pytest.approx(3.0, abs=1e-3)
        labels = results[0]["labels"]
        assert len(labels) == 4 and "frames" not in results[0]
        assert labels[0] == {"index": BOOSTED, "mid": "/m/02zsn", "name": "Female speech, woman speaking",
                             "probability": pytest.approx(labels[0]["probability"])}
        assert labels[0]["probability"] > 0.99
        probabilities = [label["probability"] for label in labels]
        assert probabilities == sorted(probabilities, reverse=True)

    def test_json_reports_the_failed_file(self, capsys, audio_dir, boosted_checkpoint):
        status, out, _ = tag(capsys, str(audio_dir / "corrupt.mp3"), str(audio_dir / "missing.wav"), "--json",
                             "--checkpoint", boosted_checkpoint)
        assert status == 1
        errors = [r["error"] for r in json.loads(out)]
        assert "corrupt.mp3" in errors[0] and "file does not exist" in errors[1]

    def test_frames_give_probabilities_over_time(self, capsys, audio_dir, boosted_checkpoint):
        status, out, _ = tag(capsys, str(audio_dir / "mono.wav"), "--json", "--frames", "--frame-window", "0.5",
                             "--frame-hop", "0.25", "--checkpoint", boosted_checkpoint, "--topk", "2")
        frames = json.loads(out)[0]["frames"]
        assert status == 0 and frames["window"] == 0.5
        assert frames["times"] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
        assert list(frames["probabilities"]) == ["Female speech, woman speaking",
                                                 json.loads(out)[0]["labels"][1]["name"]]
        assert all(len(values) == 9 for values in frames["probabilities"].values())

    def test_frames_as_text(self, capsys, audio_dir, boosted_checkpoint):
        status, out, _ = tag(capsys, str(audio_dir / "mono.flac"), "--frames", "--checkpoint", boosted_checkpoint)
        assert status == 0
        assert "frames (window 1 s, centred at the time shown):" in out
        assert "    1.50 s  Female speech, woman speaking 1.00 | " in out

    def test_plot_writes_a_png(self, capsys, audio_dir, boosted_checkpoint, tmp_path):
        picture = tmp_path / "tags.png"
        status, _, _ = tag(capsys, str(audio_dir / "stereo.wav"), "--plot", str(picture),
                           "--checkpoint", boosted_checkpoint)
        assert status == 0
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000

    def test_fine_tuned_head_with_its_label_file(self, capsys, audio_dir, tmp_path, make_tiny_checkpoint):
        checkpoint = make_tiny_checkpoint(tmp_path / "five.ckpt", n_classes=5, lightning=True)
        label_file = tmp_path / "five.csv"
        label_file.write_text('index,mid,display_name\n0,/x/a,"Strings, bowed"\n1,/x/b,Piano\n'
                              '2,/x/c,"Drums, kit"\n3,/x/d,Voice\n4,/x/e,"Brass, low"\n')
        status, out, _ = tag(capsys, str(audio_dir / "mono.wav"), "--checkpoint", checkpoint, "--labels",
                             str(label_file), "--json", "--topk", "10")
        names = {label["name"] for label in json.loads(out)[0]["labels"]}
        assert status == 0 and names == {"Strings, bowed", "Piano", "Drums, kit", "Voice", "Brass, low"}

    def test_label_file_of_the_wrong_size_is_a_usage_error(self, capsys, audio_dir, tmp_path, make_tiny_checkpoint):
        checkpoint = make_tiny_checkpoint(tmp_path / "five.pt", n_classes=5)
        with pytest.raises(SystemExit) as exit_info:
            tag(capsys, str(audio_dir / "mono.wav"), "--checkpoint", checkpoint)
        assert exit_info.value.code == 2
        assert "has 527 labels but the model has 5 classes" in capsys.readouterr().err

    def test_checkpoint_that_does_not_fit_the_arch_is_a_usage_error(self, capsys, audio_dir, tmp_path):
        path = tmp_path / "mini.pt"
        torch.save(get_model("passt_mini", pretrained=False).state_dict(), path)
        with pytest.raises(SystemExit) as exit_info:
            tag(capsys, str(audio_dir / "mono.wav"), "--checkpoint", str(path))
        assert exit_info.value.code == 2
        assert f"checkpoint {path} does not fit the model" in capsys.readouterr().err


def test_the_module_runs_as_a_command_and_exits_1_when_a_file_fails(audio_dir, boosted_checkpoint):
    completed = subprocess.run(
        [sys.executable, "-m", "passt_hear", "tag", str(audio_dir / "mono.wav"), str(audio_dir / "corrupt.mp3"),
         "--arch", "passt_tiny", "--checkpoint", boosted_checkpoint, "--topk", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 1, completed.stderr
    assert completed.stdout.splitlines()[1].endswith("Female speech, woman speaking")
    assert "skipped" in completed.stderr and "corrupt.mp3" in completed.stderr


@pytest.mark.parametrize("option, windowing, window", [((), "end_aligned", 1005 * 320),
                                                       (("--windowing", "centred"), "centred", 10 * 32000)])
def test_long_files_are_windowed_the_tag_commands_own_way_unless_centred_is_asked_for(boosted_checkpoint, option,
                                                                                     windowing, window):
    parser = build_parser()
    args = parser.parse_args(["tag", "long.wav", "--arch", "passt_tiny", "--checkpoint", boosted_checkpoint, *option])
    model = load_model(args, parser)
    assert (model.windowing, model.window_samples) == (windowing, window)  # longest the net takes, or 10 s
