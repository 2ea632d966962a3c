"""Write the resolved config of every experiment, alone and with each named config, to one JSON file, or
compare two such files: the check that a refactoring changed no key, default or named config.

    python scripts/dump_configs.py dump before.json
    python scripts/dump_configs.py compare before.json after.json    # exit 1 and the differences, if any
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

EXPERIMENTS = ("ex_audioset", "ex_openmic", "ex_esc50", "ex_fsd50k", "ex_custom")
VOLATILE_KEYS = ("cmd", "process_id", "seed", "slurm_job_id", "saque_cmd", "saque_id")


def resolved_configs() -> dict:
    """{"<experiment> [<named config>]": resolved config without the keys that differ from run to run}."""
    sys.path.insert(0, os.getcwd())
    configs = {}
    for module_name in EXPERIMENTS:
        ex = importlib.import_module(module_name).ex
        for named in [None, *sorted(ex.named_configs)]:
            run = ex._create_run(command_name="print_config", named_configs=[named] if named else [])
            config = {key: value for key, value in run.config.items() if key not in VOLATILE_KEYS}
            configs[f"{module_name} {named or '(defaults)'}"] = json.loads(json.dumps(config, default=repr))
    return configs


def differences(before, after, path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        lines = []
        for key in sorted(set(before) | set(after), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in after:
                lines.append(f"{where}: removed (was {before[key]!r})")
            elif key not in before:
                lines.append(f"{where}: added ({after[key]!r})")
            else:
                lines += differences(before[key], after[key], where)
        return lines
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dump").add_argument("out")
    compare = commands.add_parser("compare")
    compare.add_argument("before")
    compare.add_argument("after")
    args = parser.parse_args(argv)
    if args.command == "dump":
        configs = resolved_configs()
        with open(args.out, "w", encoding="utf-8") as file:
            json.dump(configs, file, indent=1, sort_keys=True)
        print(f"{len(configs)} resolved configs written to {args.out}")
        return 0
    with open(args.before, encoding="utf-8") as file:
        before = json.load(file)
    with open(args.after, encoding="utf-8") as file:
        after = json.load(file)
    lines = differences(before, after)
    print("\n".join(lines) if lines else f"all {len(before)} resolved configs are equal")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
