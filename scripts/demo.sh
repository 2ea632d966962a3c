#!/usr/bin/env bash
# The README's main command: trains a tiny PaSST on a generated demo dataset on CPU in a few minutes and
# prints its mAP. Extra arguments go to ex_audioset.py after `with demo` (e.g. trainer.max_epochs=4).
# The run (config, metrics, logs, checkpoints, pictures) is recorded in runs/audioset/<id>/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$repo_root"
if [ ! -f demo_data/mp3/eval_segments_mp3.hdf ]; then
    echo "[demo] generating the demo dataset in demo_data/ (about 20 s)" >&2
    python -m audioset.prepare_scripts.make_demo_dataset --out demo_data
fi
exec python ex_audioset.py with demo "$@"
