"""Sound event detection: the frame task's loss and mixup, and PSDS / F1 as the field's libraries compute them."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.data.events import frames_to_events
from helpers.data.frames import FrameLayout
from helpers.sed import FrameDetection, detection_metrics, events_from_scores, score_dataframes

CLASSES = ["dog", "cat"]
FRAME = 0.04


def truth_frames():
    """Four 4 s clips (100 frames): a dog 0.4-1.2 s in each, a cat 2.0-3.0 s in the last two."""
    truth = np.zeros((4, 100, 2), dtype=bool)
    truth[:, 10:30, 0] = True
    truth[2:, 50:75, 1] = True
    return truth


# --- metrics ------------------------------------------------------------------------------------------------
def test_perfect_scores_reach_one_on_every_metric():
    truth = truth_frames()
    results = detection_metrics(truth.astype(np.float32), truth, FRAME, CLASSES)
    assert results == pytest.approx({"psds1": 1.0, "psds2": 1.0, "event_f1": 1.0, "segment_f1": 1.0})


def test_scores_that_ignore_time_score_low_psds1():
    truth = truth_frames()
    flat = np.broadcast_to(truth.any(axis=1, keepdims=True), truth.shape).astype(np.float32)  # clip labels only
    results = detection_metrics(flat, truth, FRAME, CLASSES)
    assert results["psds1"] < 0.05 and results["event_f1"] == 0.0


def test_event_f1_equals_sed_eval_on_the_same_detections():
    """Detections shifted by 0.12 s (inside the 200 ms collars) and by 0.4 s (outside) for half the events:
    our collar-based F1 equals sed_eval's EventBasedMetrics (macro F over classes)."""
    import sed_eval

    truth = truth_frames()
    detected = np.zeros_like(truth)
    detected[:, 13:33, 0] = True                    # dog +0.12 s: hits
    detected[2, 50:75, 1] = True                    # cat exact
    detected[3, 60:85, 1] = True                    # cat +0.4 s: a miss and a false alarm
    ours = detection_metrics(detected.astype(np.float32), truth, FRAME, CLASSES, median_filter=0.0)["event_f1"]

    metric = sed_eval.sound_event.EventBasedMetrics(event_label_list=CLASSES, t_collar=0.2, percentage_of_length=0.2)
    for clip in range(len(truth)):
        def listed(active):
            return [{"event_onset": onset, "event_offset": offset, "event_label": label, "file": f"clip{clip}"}
                    for onset, offset, label in frames_to_events(active, FRAME, CLASSES)]
        metric.evaluate(reference_event_list=listed(truth[clip]), estimated_event_list=listed(detected[clip]))
    theirs = metric.results_class_wise_average_metrics()["f_measure"]["f_measure"]
    assert ours == pytest.approx(theirs)
    assert 0.5 < ours < 1.0


def test_psds1_equals_sed_scores_eval_called_directly():
    from sed_scores_eval import intersection_based

    truth = truth_frames()
    scores = truth * np.array([0.9, 0.5, 0.7, 0.8])[:, None, None]
    scores[1, 60:80, 0] = 0.65  # a false alarm that outscores a true event
    scores = scores.astype(np.float32)
    ours = detection_metrics(scores, truth, FRAME, CLASSES, median_filter=0.0)["psds1"]
    ids = [f"clip_{index:06d}" for index in range(len(scores))]
    ground_truth = {clip: frames_to_events(active, FRAME, CLASSES) for clip, active in zip(ids, truth)}
    theirs = intersection_based.psds(score_dataframes(scores, FRAME, CLASSES, ids), ground_truth,
                                     {clip: 4.0 for clip in ids}, dtc_threshold=0.7, gtc_threshold=0.7,
                                     alpha_st=1.0, max_efpr=100.0)[0]
    assert ours == pytest.approx(theirs) and 0.0 < ours < 1.0


def test_events_of_one_clip_come_from_thresholded_frames_with_their_peak():
    scores = np.zeros((100, 2), dtype=np.float32)
    scores[10:30, 0] = 0.9
    scores[20, 0] = 0.95
    assert events_from_scores(scores, FRAME, CLASSES) == [(pytest.approx(0.4), pytest.approx(1.2), "dog",
                                                           pytest.approx(0.95))]


# --- the task -----------------------------------------------------------------------------------------------
def make_task(weak_loss_weight=0.5):
    return FrameDetection(FrameLayout(classes=2, frames=5), weak_loss_weight=weak_loss_weight, class_names=CLASSES)


def test_network_outputs_are_packed_like_the_targets_and_a_wrong_frame_count_is_named():
    task = make_task()
    frames, clip = torch.randn(3, 5, 2), torch.randn(3, 2)
    packed = task.logits((frames, clip))
    assert packed.shape == (3, 2 + 10) and torch.equal(packed[:, :2], clip)
    with pytest.raises(ValueError, match=r"\(7, 2\).*models.net.frames"):
        task.logits((torch.randn(3, 7, 2), clip))


def test_strong_clips_learn_from_frames_weak_clips_from_their_clip_labels():
    task, layout = make_task(0.5), FrameLayout(classes=2, frames=5)
    frames = np.zeros((5, 2), np.float32)
    frames[1:3, 0] = 1
    targets = torch.from_numpy(np.stack([layout.pack(True, frames.max(0), frames),
                                         layout.pack(False, np.array([0.0, 1.0]), np.zeros((5, 2), np.float32))]))
    logits = torch.randn(2, 12)
    loss = task.per_clip_loss(logits, *task.split(targets))
    expected_strong = F.binary_cross_entropy_with_logits(logits[0, 2:].reshape(5, 2), torch.from_numpy(frames))
    expected_weak = 0.5 * F.binary_cross_entropy_with_logits(logits[1, :2], torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(loss, torch.stack([expected_strong, expected_weak]))


def test_spectrogram_mixup_mixes_frames_and_keeps_strong_only_for_two_strong_clips():
    task, layout = make_task(), FrameLayout(classes=2, frames=5)
    frames = np.ones((5, 2), np.float32)
    labels = torch.from_numpy(np.stack([layout.pack(True, np.ones(2), frames),
                                        layout.pack(False, np.zeros(2), np.zeros((5, 2), np.float32)),
                                        layout.pack(True, np.zeros(2), np.zeros((5, 2), np.float32))]))
    mixed, _ = task.mix(labels, None, torch.tensor([1, 0, 0]), torch.tensor([0.7, 0.7, 0.7]))
    assert mixed[:, 0].tolist() == [0.0, 0.0, 1.0]
    assert mixed[2, 3:].tolist() == pytest.approx([0.3] * 10)
