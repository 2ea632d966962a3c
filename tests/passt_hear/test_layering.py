"""passt_hear sits on models/ and the audio decoding helper only (the inference layer of the architecture)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORBIDDEN = ("pytorch_lightning", "lightning", "sacred", "audioset", "openmic", "esc50", "fsd50k", "ex_audioset")


def test_importing_every_passt_hear_module_pulls_in_no_training_or_dataset_code():
    code = ("import sys, pkgutil, importlib, passt_hear\n"
            "for info in pkgutil.iter_modules(passt_hear.__path__):\n"
            "    if info.name != '__main__':\n"
            "        importlib.import_module('passt_hear.' + info.name)\n"
            f"print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))\n")
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"
