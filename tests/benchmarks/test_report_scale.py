"""The report benchmark's generated lists imply known figures, and the report finds exactly those."""
from benchmarks.report_scale import main


def test_report_benchmark_finds_the_generated_missing_extra_and_relabelled_clips(tmp_path, capsys):
    main(["--clips", "3000", "--eval-clips", "400", "--dir", str(tmp_path), "--audio-clips", "4"])
    output = capsys.readouterr().out
    assert "figures as generated: True" in output
    assert "eval: 398 of 400 listed clips present, 2 missing, 2 extra, 0 duplicated, 0 relabelled" in output
    assert "unbalanced_train: 2,970 of 3,000 listed clips present, 30 missing" in output
    assert "--audio: 4 clips of 10 s decoded" in output
