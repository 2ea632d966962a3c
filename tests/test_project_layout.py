"""The project's house rules: layers import only downwards, environment.yml carries requirements.txt's pins."""
import ast
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATASET_FOLDERS = ("audioset", "openmic", "esc50", "fsd50k", "custom")
EXPERIMENTS = ("ex_audioset", "ex_openmic", "ex_esc50", "ex_fsd50k", "ex_custom", "config_updates")

# layer: (files, top-level modules it must never import) -- see ARCHITECTURE.md
LAYERS = {
    "models": (["models"], {"sacred", "pytorch_lightning", "lightning", "h5py", "av", "helpers", "passt_hear",
                            *DATASET_FOLDERS, *EXPERIMENTS}),
    "audio data core": (["helpers/data"], {"models", "sacred", "pytorch_lightning", "lightning", "passt_hear",
                                           *DATASET_FOLDERS, *EXPERIMENTS}),
    "datasets": (list(DATASET_FOLDERS), {"models", "pytorch_lightning", "lightning", "passt_hear", *EXPERIMENTS}),
    "training": (["helpers"], {"passt_hear", *DATASET_FOLDERS, *EXPERIMENTS}),
    "inference": (["passt_hear"], {"sacred", "pytorch_lightning", "lightning", *DATASET_FOLDERS, *EXPERIMENTS}),
}


def python_files(folder):
    path = ROOT / folder
    return sorted(p for p in path.rglob("*.py")) if path.is_dir() else []


def imported_top_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_point_down_the_layers(layer):
    folders, forbidden = LAYERS[layer]
    offences = []
    for folder in folders:
        for path in python_files(folder):
            if layer == "training" and "data" in path.relative_to(ROOT / "helpers").parts[:1]:
                continue
            bad = imported_top_modules(path) & forbidden
            if layer == "datasets":
                own = path.relative_to(ROOT).parts[0]
                bad |= imported_top_modules(path) & (set(DATASET_FOLDERS) - {own})
            if bad:
                offences.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offences == []


def test_nothing_imports_an_experiment_script():
    offences = [f"{p.relative_to(ROOT)}" for p in ROOT.rglob("*.py")
                if ".venv" not in p.parts and p.stem not in EXPERIMENTS and "tests" not in p.parts
                and imported_top_modules(p) & (set(EXPERIMENTS) - {"config_updates"})]
    assert offences == []


def requirement_lines(text):
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_environment_yml_pins_the_same_packages_as_requirements_txt():
    requirements = requirement_lines((ROOT / "requirements.txt").read_text())
    environment = (ROOT / "environment.yml").read_text()
    pip_section = [line.strip()[2:] for line in environment.split("- pip:", 1)[1].splitlines()
                   if line.strip().startswith("- ")]
    assert pip_section == requirements
    assert "name: ba3l" in environment and "python=3.11" in environment


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/test.sh" in ci
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


@pytest.mark.parametrize("script", sorted(ROOT.glob("ex_*.py")), ids=lambda path: path.name)
def test_an_experiment_script_is_a_short_declaration_of_its_dataset(script):
    text = script.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 100, f"{script.name}: config, spec, launch should read in under 100 lines"
    assert "DatasetSpec(" in text and "build_experiment(SPEC)" in text
