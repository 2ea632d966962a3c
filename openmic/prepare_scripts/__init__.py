"""Command-line preparation scripts; run from the repository root with `python -m`."""
