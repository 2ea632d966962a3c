#!/usr/bin/env bash
# Creates or refreshes the project's virtual environment in .venv (idempotent).
# Sourced by scripts/demo.sh and scripts/test.sh; re-installs only when the requirements files changed.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
stamp="$venv/.requirements.sha256"
want="$(cat "$repo_root/requirements.txt" "$repo_root/requirements-nodeps.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    python_bin="$(command -v python3.11 || command -v python3)"
    echo "[bootstrap] setting up $venv with $("$python_bin" --version) (first run takes a few minutes)" >&2
    "$python_bin" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet -r "$repo_root/requirements.txt" 2>&1 \
        | grep -v '^WARNING: Location' >&2 || true
    "$venv/bin/python" -m pip install --quiet --no-deps --ignore-requires-python \
        -r "$repo_root/requirements-nodeps.txt" 2>&1 | grep -v '^WARNING: Location' >&2 || true
    "$venv/bin/python" -c "import torch, torchaudio, timm, pytorch_lightning, sacred, h5py, av, sed_scores_eval" \
        || { echo "[bootstrap] installing requirements.txt failed" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"
# sacred 0.8.7 imports pkg_resources, which warns on every start; nothing to act on (setuptools<81 is pinned).
export PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore:pkg_resources is deprecated:UserWarning"
