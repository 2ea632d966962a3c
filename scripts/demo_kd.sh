#!/usr/bin/env bash
# Knowledge distillation on the demo dataset (CPU, a few minutes): trains a teacher (the demo config), stores
# its logits on the training files with save_logits, then distils a student of half the depth from them (90%
# teacher, EfficientAT's weighting) and prints both results. Extra arguments go to both training runs.
# Everything is recorded in runs/demo_kd/: teacher/<id>/ (with the logits in teacher/<id>/logits/), student/<id>/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$repo_root"
source "$repo_root/scripts/demo_data.sh"
work=runs/demo_kd
mkdir -p "$work"
echo "[demo-kd] 1/3 training the teacher (passt_tiny, 4 blocks)" >&2
python ex_audioset.py -F "$work/teacher" with demo seed=3 "$@"
teacher_run=$(ls -td "$work"/teacher/[0-9]* | head -1)
echo "[demo-kd] 2/3 storing the teacher's logits on the training files" >&2
python ex_audioset.py save_logits with demo models.net.checkpoint="$teacher_run/checkpoints/last.ckpt" \
    out="$teacher_run/logits/"
echo "[demo-kd] 3/3 distilling a 2-block student from them" >&2
python ex_audioset.py -F "$work/student" with demo kd_efficientat kd.teacher_logits="$teacher_run/logits/" \
    models.net.cut_depth=2 seed=3 "$@"
student_run=$(ls -td "$work"/student/[0-9]* | head -1)
python - "$teacher_run" "$student_run" <<'PY'
import json, sys
for role, run in zip(("teacher", "student"), sys.argv[1:]):
    result = json.load(open(f"{run}/run.json"))["result"]
    print(f"{role}: mAP {result['ap']:.4f} (best {result['best_ap']:.4f}, SWA {result.get('swa_ap', float('nan')):.4f})  {run}")
PY
