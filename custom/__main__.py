"""``python -m custom prepare …`` and ``python -m custom report …``: see ``custom.prepare``, ``custom.report``."""
import sys

from custom.prepare import main

sys.exit(main())
