#!/usr/bin/env bash
# Sound event detection demo: generates clips with known events (custom/event_demo.py), prepares them with
# strong labels (`python -m custom prepare --events`), trains a tiny frame-level PaSST on CPU in a few minutes,
# prints PSDS1, PSDS2, event F1 and segment F1, and draws the eval clips' frame probabilities over the
# ground-truth events (runs/custom/<id>/plots/). Extra arguments go to ex_custom.py (e.g. trainer.max_epochs=5).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$repo_root"
data="${SED_DEMO_DIR:-sed_demo}"
[ -f "$data/events.tsv" ] || python -m custom.event_demo --out "$data"
[ -f "$data/prepared/dataset.json" ] || python -m custom prepare "$data/audio" --out "$data/prepared" \
    --events "$data/events.tsv" --split 0.7,0.15,0.15
exec python ${SED_DEMO_PYTHON_FLAGS:-} ex_custom.py with basedataset.base_dir="$data/prepared/" \
    basedataset.clip_length=5 basedataset.random_crop=False basedataset.roll_conf.shift_range=4000 \
    basedataset.gain_augment=0 \
    models.net.arch=fpasst_tiny models.net.pretrained=False models.net.fstride=16 models.net.tstride=16 \
    models.net.input_tdim=498 models.net.s_patchout_f=0 models.mel.freqm=0 models.mel.timem=0 \
    lr=3e-3 warm_up_len=2 ramp_down_start=15 ramp_down_len=10 last_lr_value=0.05 swa=False use_mixup=False \
    datasets.training.batch_size=16 datasets.training.num_workers=0 \
    datasets.valid.batch_size=36 datasets.valid.num_workers=0 datasets.eval.batch_size=36 datasets.eval.num_workers=0 \
    trainer.max_epochs=25 trainer.accelerator=cpu trainer.precision=32-true trainer.log_every_n_steps=5 "$@"
