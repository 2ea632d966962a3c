"""``python -m passt_hear``: see ``passt_hear.cli``."""
import sys

from passt_hear.cli import main

sys.exit(main())
