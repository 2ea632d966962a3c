"""README's config tables, made from the key declarations (helpers/common_config.py and each experiment's
DatasetSpec): print them, or check or rewrite the part of README.md between the config-table markers.

    python scripts/config_table.py               # print
    python scripts/config_table.py --check       # exit 1 when README.md's tables are not these
    python scripts/config_table.py --write       # rewrite README.md's tables
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from helpers.common_config import COMMON_KEYS, DATASET_KEYS, LOADER_KEYS  # noqa: E402
from helpers.config_keys import Derived, markdown_table  # noqa: E402

EXPERIMENTS = ("ex_audioset", "ex_openmic", "ex_esc50", "ex_fsd50k", "ex_custom")
BEGIN, END = "<!-- config tables: scripts/config_table.py --write -->", "<!-- end of config tables -->"
LOADER_DEFAULTS = {key.name: key.default for key in LOADER_KEYS.keys}


def _flat(tree, prefix=""):
    for name, value in tree.items():
        if isinstance(value, dict) and value and not prefix.startswith("datasets.") or (
                isinstance(value, dict) and prefix == "datasets."):
            yield from _flat(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def _shown(value) -> str:
    return value.text if isinstance(value, Derived) else repr(value)


def differences(spec) -> str:
    """What the experiment's defaults change, as `key=value` items."""
    items = []
    for tree, prefix in ((spec.dataset_overrides, "basedataset."), (spec.overrides, "")):
        for name, value in _flat(tree, prefix):
            if name.startswith("datasets.") and name.count(".") == 2:
                loader, key = name.rsplit(".", 1)
                if LOADER_DEFAULTS.get(key, object()) == value:
                    continue
            items.append(f"`{name}={_shown(value)}`")
    return ", ".join(items)


def tables() -> str:
    parts = ["Top level and `models.*`, `trainer.*`, `kd.*` (every experiment):", "",
             markdown_table(COMMON_KEYS), "", "`basedataset.*` (every experiment):", "",
             markdown_table(DATASET_KEYS, "basedataset."), "",
             "`datasets.<loader>.*` (each loader: `training`, and `test` or `valid`/`eval`):", "",
             markdown_table(LOADER_KEYS, "datasets.<loader>."), ""]
    for module in EXPERIMENTS:
        spec = importlib.import_module(module).SPEC
        parts += [f"`{module}.py` ({spec.name}) changes {differences(spec)}; its own keys:", ""]
        own = [(spec.dataset_key_table, "basedataset.", [key.name for key in spec.dataset_keys]),
               (spec.key_table, "", [key.name for key in spec.keys])]
        rows = [markdown_table(table, prefix, names).split("\n") for table, prefix, names in own if names]
        parts += [rows[0][0], rows[0][1], *(row for table in rows for row in table[2:]), ""]
    return "\n".join(parts).rstrip() + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--write", action="store_true")
    parser.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    args = parser.parse_args(argv)
    made = tables()
    if not (args.check or args.write):
        print(made, end="")
        return 0
    with open(args.readme, encoding="utf-8") as file:
        readme = file.read()
    if BEGIN not in readme or END not in readme:
        print(f"{args.readme} lacks the markers {BEGIN!r} and {END!r}", file=sys.stderr)
        return 1
    head, rest = readme.split(BEGIN, 1)
    present, tail = rest.split(END, 1)
    if args.check:
        if present.strip() != made.strip():
            print(f"{args.readme}'s config tables differ from the key declarations: run {__file__} --write",
                  file=sys.stderr)
            return 1
        return 0
    with open(args.readme, "w", encoding="utf-8") as file:
        file.write(f"{head}{BEGIN}\n{made}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
