#!/usr/bin/env bash
# Sourced by the demo scripts after bootstrap.sh: generates the demo dataset in demo_data/ once.
if [ ! -f "$repo_root/demo_data/mp3/eval_segments_mp3.hdf" ]; then
    echo "[demo] generating the demo dataset in demo_data/ (about 20 s)" >&2
    (cd "$repo_root" && python -m audioset.prepare_scripts.make_demo_dataset --out demo_data)
fi
