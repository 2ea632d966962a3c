"""helpers.procedures: the closing line and the clip sets it names."""
from helpers.data import DataOptions
from helpers.procedures import final_line


def test_the_closing_line_gives_each_validation_set_with_its_swa_and_best_figures():
    result = {"valid_ap": 0.41, "valid_swa_ap": 0.43, "best_valid_ap": 0.45, "eval_ap": 0.39, "eval_swa_ap": 0.4}
    assert final_line(result, "ap", ["valid_", "eval_"]) == ("final valid mAP: 0.4100  SWA mAP: 0.4300  best mAP: "
                                                             "0.4500   final eval mAP: 0.3900  SWA mAP: 0.4000")
    assert final_line({"acc": 0.5, "best_acc": 0.75}, "acc") == "final accuracy: 0.5000  best accuracy: 0.7500"


def test_the_closing_line_says_which_clips_each_set_was_scored_on():
    result = {"ap": 0.47, "eval_clips": 20371, "eval_fingerprint": "3fa9c2d1e0b7"}
    assert final_line(result, "ap") == "final mAP: 0.4700  [20371 clips, fingerprint 3fa9c2d1e0b7]"
    subset = {"valid_ap": 0.4, "eval_ap": 0.5, "eval_clips": 90, "eval_fingerprint": "0123456789ab",
              "eval_subset_missing": 3}
    assert final_line(subset, "ap", ["valid_", "eval_"]) == (
        "final valid mAP: 0.4000   final eval mAP: 0.5000  [90 clips, fingerprint 0123456789ab, "
        "3 eval_subset clips missing]")


def test_record_clip_sets_puts_count_fingerprint_and_missing_subset_clips_in_the_run_info(tmp_path):
    import types

    import numpy as np

    from helpers.data import PackedBitsTargets, encode_mp3, make_evaluation_set, restrict_to_ids, write_hdf5_dataset
    from helpers.data.clip_ids import fingerprint
    from helpers.loaders import record_clip_sets
    from tests.helpers.data.clips import SR, tone

    path = tmp_path / "eval.hdf"
    write_hdf5_dataset(path, ["Yaaaaaaaaaa0.mp3", "Ybbbbbbbbbb1.mp3"], [encode_mp3(tone(440, 0.2), SR)] * 2,
                       np.eye(2), PackedBitsTargets(2))
    (tmp_path / "ids.txt").write_text("bbbbbbbbbb1\nmissing0001\n")
    subset = restrict_to_ids(make_evaluation_set(path, 2, DataOptions(clip_length=0.2)), tmp_path / "ids.txt")
    run = types.SimpleNamespace(info={})
    loaders = {"valid_": types.SimpleNamespace(dataset=make_evaluation_set(path, 2, DataOptions())),
               "eval_": types.SimpleNamespace(dataset=subset)}
    figures = record_clip_sets(run, loaders)
    assert figures == {"valid_clips": 2, "valid_fingerprint": fingerprint(np.array([b"aaaaaaaaaa0", b"bbbbbbbbbb1"])),
                       "eval_clips": 1, "eval_fingerprint": fingerprint(np.array([b"bbbbbbbbbb1"])),
                       "eval_subset_missing": 1}
    assert run.info == {**figures, "eval_subset": str(tmp_path / "ids.txt"), "eval_subset_missing_clips": ["missing0001"]}
    assert record_clip_sets(run, {"": types.SimpleNamespace(dataset=subset)})["eval_fingerprint"] == figures[
        "eval_fingerprint"]  # the unprefixed set is called eval_
