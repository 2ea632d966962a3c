#!/usr/bin/env bash
# Runs the test suite on CPU, creating .venv first if needed. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$repo_root"
exec python -m pytest tests "$@"
