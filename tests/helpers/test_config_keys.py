"""helpers.config_keys: a key is declared once, and its default, its checks, print_config's comment, README's
table row and the suggestion for a typo all come from that declaration."""
import subprocess
import sys

import pytest
from sacred import Experiment

from helpers.config_keys import (Check, Derived, Key, KeyTable, Number, OneOf, SacredDefaults, key_problems,
                                 markdown_table, nearest_keys)

TABLE = KeyTable((
    Key("base_dir", "data/", "where the files are"),
    Key("eval_hdf5", Derived(lambda config: config["base_dir"] + "eval.hdf", 'base_dir + "eval.hdf"'), "eval file"),
    Key("lr", 1e-3, "learning rate", Number(gt=0), training=True),
    Key("mode", "a", "a mode", OneOf("a", "b")),
    Key("swa", True, "averaging"),
    Key("swa_freq", 5, "epochs between updates", Number(ge=1, integer=True), when=lambda config: config["swa"],
        when_text=" when swa"),
    Key("net.depth", 12, "blocks"),
    Key("net.name", "tiny", "name", Check(lambda name: None if name.islower() else "must be lower case", "lower")),
))


def resolved(table, **updates):
    ex = Experiment("keys")
    ex.configurations.append(SacredDefaults(table))
    ex.main(lambda: None)
    return ex._create_run(config_updates=updates).config


def test_defaults_overrides_and_derived_values_resolve_as_sacred_scopes_did():
    config = resolved(TABLE)
    assert (config["eval_hdf5"], config["net"], config["lr"]) == ("data/eval.hdf", {"depth": 12, "name": "tiny"}, 1e-3)
    assert resolved(TABLE, base_dir="elsewhere/")["eval_hdf5"] == "elsewhere/eval.hdf"  # derived from the user's value
    assert resolved(TABLE, eval_hdf5="mine.hdf")["eval_hdf5"] == "mine.hdf"  # the user's value stays
    changed = TABLE.extended([Key("fold", 1, "the test fold")], {"lr": 1e-5, "net": {"depth": 7}})
    config = resolved(changed, **{"net.name": "small"})
    assert (config["lr"], config["net"], config["fold"]) == (1e-5, {"depth": 7, "name": "small"}, 1)


def test_print_config_shows_each_keys_meaning():
    summary = SacredDefaults(TABLE)()
    assert summary.docs["eval_hdf5"] == "eval file" and summary.docs["net.depth"] == "blocks"


def test_a_key_declared_twice_or_an_override_of_no_key_is_refused():
    with pytest.raises(ValueError, match="declared twice: lr"):
        KeyTable((Key("lr", 1), Key("lr", 2)))
    with pytest.raises(ValueError, match="override of 'net.width': no such key"):
        TABLE.extended(overrides={"net": {"width": 3}})


def test_checks_name_the_key_and_what_is_allowed():
    config = {"lr": 0, "mode": "c", "swa": True, "swa_freq": 0, "net": {"name": "Tiny"}}
    assert key_problems(TABLE, config, training=True) == [
        "lr: must be a number > 0, got 0", "mode: 'c'; allowed: a, b",
        "swa_freq: must be an integer >= 1 when swa, got 0", "net.name: must be lower case"]
    assert key_problems(TABLE, {**config, "swa": False}, training=False, prefix="x.") == [
        "x.mode: 'c'; allowed: a, b", "x.net.name: must be lower case"]  # lr: training only; swa_freq: only with swa
    assert OneOf("auto", True, False).problem(1) == "1; allowed: auto, True, False"  # 1 is not True


def test_readme_rows_come_from_the_declarations():
    rows = markdown_table(TABLE, "basedataset.", ["eval_hdf5", "lr"]).splitlines()
    assert rows[2] == '| `basedataset.eval_hdf5` | `base_dir + "eval.hdf"` |  | eval file |'
    assert rows[3] == "| `basedataset.lr` | `0.001` | a number > 0 | learning rate (training only) |"


def test_a_misspelt_key_gets_the_nearest_valid_names():
    valid = ["lr", "basedataset.gain_augment", "basedataset.ir_augment", "models.net.s_patchout_t"]
    assert nearest_keys("lrr", valid)[0] == "lr"
    assert nearest_keys("basedataset.gain_augmnt", valid)[0] == "basedataset.gain_augment"
    assert nearest_keys("models.net.s_patchout_time", valid) == ["models.net.s_patchout_t"]


def test_the_command_line_refuses_a_typo_before_any_work_and_suggests_the_key():
    result = subprocess.run([sys.executable, "ex_openmic.py", "print_config", "with", "lrr=1",
                             "basedataset.gain_augmnt=3"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "lrr: not a config key; did you mean lr?" in result.stderr + result.stdout
    assert "basedataset.gain_augmnt: not a config key; did you mean basedataset.gain_augment" in (
        result.stderr + result.stdout)


def test_readme_config_tables_are_the_declarations():
    result = subprocess.run([sys.executable, "scripts/config_table.py", "--check"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
