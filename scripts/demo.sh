#!/usr/bin/env bash
# The README's main command: trains a tiny PaSST on a generated demo dataset on CPU in a few minutes and
# prints its mAP. Extra arguments go to ex_audioset.py after `with demo` (e.g. trainer.max_epochs=4).
# The run (config, metrics, logs, checkpoints, pictures) is recorded in runs/audioset/<id>/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$repo_root"
source "$repo_root/scripts/demo_data.sh"
exec python ex_audioset.py with demo "$@"
