"""helpers.experiment: named validation sets and the closing line."""
from helpers.experiment import final_line, named_loaders


def test_validation_sets_are_named_by_their_metric_prefix():
    assert named_loaders("loader") == {"": "loader"}
    assert named_loaders({"valid_": 1, "eval_": 2}) == {"valid_": 1, "eval_": 2}


def test_the_closing_line_gives_each_validation_set_with_its_swa_and_best_figures():
    result = {"valid_ap": 0.41, "valid_swa_ap": 0.43, "best_valid_ap": 0.45, "eval_ap": 0.39, "eval_swa_ap": 0.4}
    assert final_line(result, "ap", ["valid_", "eval_"]) == ("final valid mAP: 0.4100  SWA mAP: 0.4300  best mAP: "
                                                             "0.4500   final eval mAP: 0.3900  SWA mAP: 0.4000")
    assert final_line({"acc": 0.5, "best_acc": 0.75}, "acc") == "final accuracy: 0.5000  best accuracy: 0.7500"
