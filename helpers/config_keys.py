"""Config keys declared once: each key's default, meaning and allowed values in one `Key`. From these
declarations come the sacred config (`SacredDefaults`, with `print_config`'s comments), the checks run
before any work (`key_problems`), README's config tables (`markdown_table`) and the nearest valid name for a
typo'd key (`nearest_keys`)."""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from sacred.config.config_summary import ConfigSummary
from sacred.config.utils import dogmatize, normalize_or_die, recursive_fill_in, undogmatize


_MISSING = object()


@dataclass(frozen=True)
class Derived:
    """A default computed from the config being resolved (`compute(config)`, config: a read-only view of
    the keys resolved so far, the user's values included), e.g. a file path under `base_dir`. `text` is
    how README shows it."""

    compute: Callable[[Mapping], Any]
    text: str


class Allowed:
    """The values a key allows: `problem(value)` says what is wrong (None: fine); `text` for README."""

    text = ""

    def problem(self, value) -> str | None:
        raise NotImplementedError


class OneOf(Allowed):
    def __init__(self, *choices, text: str | None = None):
        self.choices = choices
        self.text = text or " \\| ".join(f"`{choice!r}`" if isinstance(choice, str) else f"`{choice}`"
                                         for choice in choices)

    def problem(self, value):
        if any(value == choice and isinstance(value, bool) == isinstance(choice, bool) for choice in self.choices):
            return None
        return f"{value!r}; allowed: {', '.join(map(str, self.choices))}"


class Number(Allowed):
    """A number (`integer`: an int) with bounds; `none` also allows None. `what` names it in the message."""

    def __init__(self, *, gt=None, ge=None, le=None, integer: bool = False, none: bool = False,
                 what: str | None = None):
        self.gt, self.ge, self.le, self.integer, self.none = gt, ge, le, integer, none
        bounds = [f"> {gt}" if gt is not None else "", f">= {ge}" if ge is not None else "",
                  f"<= {le}" if le is not None else ""]
        noun = what or ("an integer" if integer else "a number")
        if ge is not None and le is not None:
            self.description = f"lie in [{ge}, {le}]"
        else:
            self.description = f"{'None or ' if none else ''}{noun} {' '.join(b for b in bounds if b)}".strip()
        self.text = self.description.removeprefix("lie in ")

    def problem(self, value):
        if value is None and self.none:
            return None
        kind_ok = isinstance(value, int) if self.integer else isinstance(value, (int, float))
        ok = kind_ok and not isinstance(value, bool) and (
            (self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
            and (self.le is None or value <= self.le))
        verb = "" if self.description.startswith("lie in") else "be "
        return None if ok else f"must {verb}{self.description}, got {value!r}"


class Check(Allowed):
    """Any check: `check(value)` -> the problem (without the key), or None."""

    def __init__(self, check: Callable[[Any], str | None], text: str):
        self.check, self.text = check, text

    def problem(self, value):
        return self.check(value)


@dataclass(frozen=True)
class Key:
    """One config key. `name`: its dotted path below its ingredient or experiment ("lr", "models.net.arch",
    "gain_augment"); `default`: a value or a `Derived`; `allowed`: what it may hold (None: anything);
    `training`: checked only by commands that train; `when(config)`: checked only when it holds
    (`when_text` is added to the message, e.g. " when swa")."""

    name: str
    default: Any
    doc: str = ""
    allowed: Allowed | None = None
    training: bool = False
    when: Callable[[Mapping], bool] | None = None
    when_text: str = ""


@dataclass(frozen=True)
class KeyTable:
    """The keys of one config scope (the experiment's top level or an ingredient), in declaration order;
    `overrides` replaces defaults (a nested dict: what differs for one dataset)."""

    keys: tuple[Key, ...]
    overrides: Mapping = field(default_factory=dict)

    def __post_init__(self):
        names = [key.name for key in self.keys]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"config keys declared twice: {', '.join(repeated)}")
        self._check_overrides(self.overrides)

    def __getitem__(self, name: str) -> Key:
        for key in self.keys:
            if key.name == name:
                return key
        raise KeyError(name)

    def names(self) -> list[str]:
        return [key.name for key in self.keys]

    def extended(self, keys: Iterable[Key] = (), overrides: Mapping | None = None) -> "KeyTable":
        """This table with more keys (a dataset's own) and more overrides (applied over the present ones)."""
        return KeyTable(self.keys + tuple(keys), deep_merged(self.overrides, overrides or {}))

    def _override(self, name: str):
        node = self.overrides
        for part in name.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return _MISSING
            node = node[part]
        return node

    def default_of(self, name: str):
        """The default `name` has in this table: its declaration, replaced by an override (merged into it when
        both are dicts); a `Derived` stays unevaluated unless overridden."""
        declared, override = self[name].default, self._override(name)
        if override is _MISSING:
            return declared
        if isinstance(declared, Mapping) and isinstance(override, Mapping):
            return deep_merged(declared, override)
        return override

    def resolved_default(self, name: str, config: Mapping):
        """`default_of(name)` with a `Derived` computed from `config` (and then overridden as above)."""
        declared, override = self[name].default, self._override(name)
        if isinstance(declared, Derived):
            declared = declared.compute(config)
        if isinstance(override, Derived):
            override = override.compute(config)
        if override is _MISSING:
            return copy.deepcopy(declared)
        if isinstance(declared, Mapping) and isinstance(override, Mapping):
            return deep_merged(declared, override)
        return copy.deepcopy(override)

    def _check_overrides(self, node: Mapping, path: str = "") -> None:
        names = set(self.names())
        for part, value in node.items():
            name = f"{path}{part}"
            if name in names:
                continue  # a declared key (a dict default takes the override merged in)
            if isinstance(value, Mapping) and any(other.startswith(name + ".") for other in names):
                self._check_overrides(value, name + ".")
            else:
                raise ValueError(f"override of {name!r}: no such key is declared")


def deep_merged(base: Mapping, changes: Mapping) -> dict:
    """`base` with `changes` applied: nested dicts are merged, everything else replaced."""
    merged = copy.deepcopy(dict(base))
    for name, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(name), Mapping):
            merged[name] = deep_merged(merged[name], value)
        else:
            merged[name] = copy.deepcopy(value)
    return merged


class _Lookup(Mapping):
    """What a `Derived` default sees: the config resolved so far, then sacred's presets and fallbacks."""

    def __init__(self, *layers: Mapping):
        self.layers = [layer for layer in layers if layer]

    def __getitem__(self, name):
        for layer in self.layers:
            if name in layer:
                return layer[name]
        raise KeyError(f"config key {name!r} is not resolved yet (declare it before the keys derived from it)")

    def __iter__(self):
        return iter(dict.fromkeys(name for layer in self.layers for name in layer))

    def __len__(self):
        return len(list(iter(self)))


def _set_path(tree: dict, path: str, value) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


class SacredDefaults:
    """A sacred configuration (what `ex.config` / `ingredient.config` hold) made from a `KeyTable`: the
    user's values stay, every other key gets its default (overrides first, `Derived` ones computed from the
    config so far), and `print_config` shows each key's meaning."""

    def __init__(self, table: KeyTable):
        self.table = table

    def __call__(self, fixed=None, preset=None, fallback=None):
        result = dogmatize(fixed or {})
        tops = list(dict.fromkeys(key.name.split(".")[0] for key in self.table.keys))
        for top in tops:
            value = _MISSING
            for key in self.table.keys:
                if key.name.split(".")[0] != top:
                    continue
                default = self.table.resolved_default(key.name, _Lookup(result, preset or {}, fallback or {}))
                if key.name == top:
                    value = default
                else:
                    value = {} if value is _MISSING else value
                    _set_path(value, key.name.split(".", 1)[1], default)
            result[top] = normalize_or_die(value) if isinstance(value, dict) else value
        recursive_fill_in(result, preset or {})
        summary = ConfigSummary(result.revelation(), result.modified, result.typechanges,
                                docs={key.name: key.doc for key in self.table.keys if key.doc})
        summary.update(undogmatize(result))
        return summary


def value_at(config: Mapping, name: str, missing=None):
    """The value of dotted key `name` in a config, or `missing`."""
    node = config
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return missing
        node = node[part]
    return node



def key_problems(table: KeyTable, config: Mapping, training: bool, prefix: str = "") -> list[str]:
    """'<prefix><key>: <problem>' for every declared key of `config` whose value is not allowed (a key the
    config lacks is skipped: sacred has filled every key a command reads)."""
    problems = []
    for key in table.keys:
        if key.allowed is None or (key.training and not training) or (key.when and not key.when(config)):
            continue
        value = value_at(config, key.name, _MISSING)
        if value is _MISSING:
            continue
        problem = key.allowed.problem(value)
        if problem:
            if key.when_text and problem.startswith("must") and ", got " in problem:
                problem = problem.replace(", got ", key.when_text + ", got ", 1)
            problems.append(f"{prefix}{key.name}: {problem}")
    return problems


def leaf_keys(config: Mapping, prefix: str = "") -> list[str]:
    """Every dotted key of a resolved config (dicts are walked, their leaves named)."""
    names = []
    for name, value in config.items():
        path = f"{prefix}{name}"
        names.append(path)
        if isinstance(value, Mapping):
            names += leaf_keys(value, path + ".")
    return names


def nearest_keys(name: str, valid: Sequence[str], count: int = 3) -> list[str]:
    """The valid keys closest to a misspelt `name`: first by the whole dotted path, then by its last part
    among the keys of the same parent."""
    close = difflib.get_close_matches(name, valid, n=count, cutoff=0.6)
    parent, _, leaf = name.rpartition(".")
    siblings = {key.rpartition(".")[2]: key for key in valid if key.rpartition(".")[0] == parent}
    close += [siblings[found] for found in difflib.get_close_matches(leaf, list(siblings), n=count, cutoff=0.6)]
    return list(dict.fromkeys(close))[:count]


def _default_text(default) -> str:
    if isinstance(default, Derived):
        return default.text
    if isinstance(default, dict):
        return "{" + ", ".join(f"{name}: {value!r}" for name, value in default.items()) + "}"
    return repr(default)


def markdown_table(table: KeyTable, prefix: str = "", names: Iterable[str] | None = None) -> str:
    """README's table of `table`'s keys (or of `names` only): key, default, allowed values, meaning."""
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for key in table.keys:
        if names is not None and key.name not in names:
            continue
        default = _default_text(table.default_of(key.name)).replace("|", "\\|")
        if len(default) > 60:
            default = default[:57] + "…"
        allowed = key.allowed.text if key.allowed else ""
        meaning = (key.doc + (" (training only)" if key.training and key.allowed else "")).replace("|", "\\|")
        rows.append(f"| `{prefix}{key.name}` | `{default}` | {allowed} | {meaning} |")
    return "\n".join(rows)
