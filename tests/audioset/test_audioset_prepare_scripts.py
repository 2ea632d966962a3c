"""AudioSet preparation: convert clips of several formats to mp3, then pack them with a segment CSV."""

import numpy as np
import pytest

from audioset.prepare_scripts import convert_to_mp3, create_h5pymp3_dataset
from helpers.data import PackedBitsTargets, decode_audio, encode_audio, read_targets, validate_hdf5, write_label_file
from helpers.data.hdf5 import read_audio_names
from tests.helpers.data.clips import tone


@pytest.fixture
def downloads(tmp_path):
    source = tmp_path / "downloads"
    (source / "part00").mkdir(parents=True)
    (source / "Yaaa.wav").write_bytes(encode_audio(tone(300.0, 1.0), 32000, "wav"))
    (source / "Ybbb.flac").write_bytes(encode_audio(tone(400.0, 1.0, 16000), 16000, "flac"))
    (source / "Yccc.ogg").write_bytes(encode_audio(tone(500.0, 1.0, 48000), 48000, "ogg"))
    stereo = np.stack([tone(600.0, 1.0, 44100), tone(600.0, 1.0, 44100)])
    (source / "part00" / "Yddd.flac").write_bytes(encode_audio(stereo, 44100, "flac"))
    (source / "Yeee.mp3").write_bytes(encode_audio(tone(700.0, 1.0, 22050), 22050, "mp3"))
    (source / "Ybroken.wav").write_bytes(b"RIFF not really a wave file")
    return source


def test_convert_makes_32k_mono_mp3s_reports_failures_and_resumes(downloads, tmp_path, capsys):
    out = tmp_path / "mp3"
    convert_to_mp3.main(["--source", str(downloads), "--out", str(out), "--workers", "2"])
    assert "converted 5, already done 0, failed 1" in capsys.readouterr().out
    produced = sorted(path.relative_to(out).as_posix() for path in out.rglob("*.mp3"))
    assert produced == ["Yaaa.mp3", "Ybbb.mp3", "Yccc.mp3", "Yeee.mp3", "part00/Yddd.mp3"]
    import av
    with av.open(str(out / "part00" / "Yddd.mp3")) as container:
        stream = container.streams.audio[0]
        assert (stream.rate, stream.channels) == (32000, 1)
    assert abs(len(decode_audio(out / "Yccc.mp3")) - 32000) < 700
    report = (out / "conversion_failures.tsv").read_text().splitlines()
    assert len(report) == 1 and report[0].startswith(str(downloads / "Ybroken.wav"))
    convert_to_mp3.main(["--source", str(downloads), "--out", str(out), "--workers", "1"])
    assert "converted 0, already done 5, failed 1" in capsys.readouterr().out


SEGMENTS = '''# Segments csv created Sun Mar  5 10:54:31 2017
# num_ytids=4, num_segs=4, num_unique_labels=3, num_positive_labels=5
# YTID, start_seconds, end_seconds, positive_labels
aaa, 30.000, 40.000, "/m/a,/m/c"
bbb, 0.000, 10.000, "/m/b"
ddd, 5.000, 15.000, "/m/a,/m/b"
zzz, 1.000, 11.000, "/m/c"
'''


@pytest.fixture
def label_file(tmp_path):
    path = tmp_path / "labels.csv"
    write_label_file(path, [("/m/a", "Speech, male"), ("/m/b", "Dog"), ("/m/c", "Rain")])
    return path


def test_pack_segments_into_hdf5(downloads, tmp_path, label_file, capsys):
    mp3_dir = tmp_path / "mp3"
    convert_to_mp3.main(["--source", str(downloads), "--out", str(mp3_dir), "--workers", "1"])
    capsys.readouterr()
    segments = tmp_path / "balanced_train_segments.csv"
    segments.write_text(SEGMENTS)
    out = tmp_path / "hdf" / "mp3" / "balanced_train_segments_mp3.hdf"
    create_h5pymp3_dataset.main(["--mp3-dir", str(mp3_dir), "--segments", str(segments), "--labels",
                                 str(label_file), "--out", str(out)])
    printed = capsys.readouterr().out
    assert "wrote 3 clips" in printed and "1 segments had no mp3 file" in printed
    assert validate_hdf5(out, 3) == 3
    assert read_audio_names(out) == ["Yaaa.mp3", "Ybbb.mp3", "Yddd.mp3"]
    np.testing.assert_array_equal(read_targets(out, PackedBitsTargets(3)), [[1, 0, 1], [0, 1, 0], [1, 1, 0]])


def test_segments_reader_and_unknown_labels(tmp_path, label_file):
    segments = tmp_path / "segments.csv"
    segments.write_text(SEGMENTS)
    parsed = create_h5pymp3_dataset.read_segments_csv(segments)
    assert parsed[0] == ("aaa", 30.0, 40.0, ("/m/a", "/m/c")) and parsed[0].audio_name == "Yaaa.mp3"
    (tmp_path / "mp3").mkdir()
    segments.write_text('xyz, 0.0, 10.0, "/m/unknown"\n')
    with pytest.raises(ValueError, match="/m/unknown"):
        create_h5pymp3_dataset.create_hdf5_from_segments(segments, tmp_path / "mp3", tmp_path / "o.hdf", label_file)
    assert not (tmp_path / "o.hdf").exists()
    segments.write_text("xyz, 0.0\n")
    with pytest.raises(ValueError, match="line 1"):
        create_h5pymp3_dataset.read_segments_csv(segments)
