"""ex_custom.py on strong labels, in-process on CPU: clips with known events prepared with `--events` train a
tiny frame PaSST from scratch, scored by PSDS1 / F1 well above what the best window tagger could reach, with
its scores written for rescoring; the config switches to the frame model by itself."""
import contextlib
import json

import numpy as np
import pytest

from custom.event_demo import make_event_demo
from custom.prepare import prepare
from helpers.config_checks import ConfigError
from helpers.data import DataOptions
from helpers.data.frames import HDF5EventDataset
from helpers.sed import detection_metrics
from passt_hear.cli import main as passt_hear_main
from tests.experiment_runs import resolved_config

SECONDS = 2.0


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def strong_data(tmp_path_factory):
    """150 clips of 2 s with 0-4 events of 3 classes; 60% train, 20% valid, 20% eval."""
    root = tmp_path_factory.mktemp("sed")
    tsv = make_event_demo(root / "raw", clips=150, n_classes=3, clip_length=SECONDS)
    prepare(root / "raw" / "audio", root / "data", fractions=(0.6, 0.2, 0.2), workers=1, events_path=tsv)
    return root


def updates(root, epochs, **extra):
    return {"basedataset.base_dir": f"{root / 'data'}/", "basedataset.clip_length": SECONDS, "seed": 2,
            "basedataset.random_crop": False, "basedataset.gain_augment": 0, "basedataset.roll_conf": {"shift_range": 800},
            "models.net.arch": "fpasst_tiny", "models.net.pretrained": False, "models.net.fstride": 16,
            "models.net.tstride": 16, "models.net.input_tdim": 198, "models.net.s_patchout_f": 0,
            "models.mel.freqm": 0, "models.mel.timem": 0, "use_mixup": False, "swa": False, "lr": 3e-3,
            "warm_up_len": 1, "ramp_down_start": epochs - 6, "ramp_down_len": 6, "last_lr_value": 0.05,
            "datasets.training.batch_size": 8, "datasets.training.num_workers": 0,
            **{f"datasets.{split}.{key}": value for split in ("valid", "eval")
               for key, value in (("batch_size", 30), ("num_workers", 0))},
            "trainer.max_epochs": epochs, "trainer.accelerator": "cpu", "trainer.precision": 32,
            "trainer.enable_progress_bar": False, **extra}


def run(root, command=None, **config_updates):
    import ex_custom
    with contextlib.chdir(root):
        return ex_custom.ex.run(command, config_updates=config_updates,
                                options={"--loglevel": "ERROR", "--file_storage": "runs"}).result


def best_window_tagger_psds1(root) -> float:
    """PSDS1 of an oracle that knows each 1 s window's true labels (`tag --events`' default windows, every 0.5 s):
    the most a clip model's window events can reach."""
    dataset = HDF5EventDataset(root / "data" / "valid_mp3.hdf", 3,
                               DataOptions(clip_length=SECONDS, frame_seconds=0.04).for_evaluation(), training=False)
    truth = np.stack([dataset.layout.unpack(dataset[index][2])[2] for index in range(len(dataset))]) > 0.5
    scores = np.zeros(truth.shape, dtype=np.float32)
    for start in np.arange(0.0, SECONDS - 0.99, 0.5):
        first, last = int(start / 0.04), int((start + 1.0) / 0.04)
        window = truth[:, first:last].any(axis=1)  # the window's clip labels
        centre = slice(max(first + 6, 0) if start else 0, last - 6 if start + 1.0 < SECONDS else last)
        scores[:, centre] = np.maximum(scores[:, centre], window[:, None, :])  # each window stands for its centre
    return detection_metrics(scores, truth, 0.04, ["a", "b", "c"])["psds1"]


def event_clip(root):
    """A training clip with exactly one event, and that event (onset, offset, class name)."""
    rows = [line.split("\t") for line in (root / "raw" / "events.tsv").read_text().splitlines()[1:]]
    by_file = {}
    for name, onset, offset, label in rows:
        by_file.setdefault(name, []).append((float(onset or 0), float(offset or 0), label))
    name = next(name for name, events in sorted(by_file.items()) if len(events) == 1 and events[0][2]
                and events[0][1] - events[0][0] > 0.6)
    return root / "raw" / "audio" / name, by_file[name]


def test_strong_labels_train_a_frame_model_well_above_the_best_window_tagger(strong_data, capsys):
    config = resolved_config(__import__("ex_custom").ex, **updates(strong_data, 2))
    net = config["models"]["net"]
    assert config["basedataset"]["strong"] is True and config["basedataset"]["frame_seconds"] == 0.04
    assert (net["frame_head"], net["frames"], net["s_patchout_t"], config["eval_windowing"]) == ("linear", 50, 0, False)
    baseline = best_window_tagger_psds1(strong_data)
    result = run(strong_data, **updates(strong_data, 30))
    assert result["valid_val.clips"] == 30 and result["eval_val.clips"] == 30
    assert result["best_valid_psds1"] >= baseline + 0.2, (result, baseline)
    assert result["eval_psds1"] >= baseline + 0.1 and result["eval_event_f1"] > 0.3
    scores = strong_data / result["run_dir"] / "scores" / "eval"
    assert len(list(scores.glob("*.tsv"))) == 30 + 1  # a score file per clip and the ground truth
    assert (strong_data / result["eval_frame_plot"]).is_file()  # frame probabilities over the true events
    # the checkpoint tags by itself (no --arch), its events from the model's own frames
    clip, [truth] = event_clip(strong_data)
    capsys.readouterr()
    assert passt_hear_main(["tag", str(clip), "--checkpoint", str(strong_data / result["best_checkpoint"]), "--json",
                            "--events", "--labels", str(strong_data / "data" / "class_labels_indices.csv")]) == 0
    [tags] = json.loads(capsys.readouterr().out)
    found = [event for event in tags["events"] if event["label"] == truth[2]]
    assert len(found) >= 1 and abs(found[0]["onset"] - truth[0]) < 0.2 and abs(found[0]["offset"] - truth[1]) < 0.25


def test_a_frame_config_that_cannot_work_is_refused(strong_data):
    with pytest.raises(ConfigError, match="eval_clip_length: strong labels are scored on clip_length windows"):
        run(strong_data, **updates(strong_data, 1), **{"basedataset.eval_clip_length": 1.0})
    with pytest.raises(ConfigError, match="s_patchout_t/u_patchout: a frame-level model keeps every time column"):
        run(strong_data, **updates(strong_data, 1), **{"models.net.s_patchout_t": 2})
    with pytest.raises(ConfigError, match="eval_windowing: a frame-level model"):
        run(strong_data, **updates(strong_data, 1), eval_windowing=True)
