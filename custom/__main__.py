"""``python -m custom prepare …``: see ``custom.prepare``."""
import sys

from custom.prepare import main

sys.exit(main())
