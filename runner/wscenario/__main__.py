"""``python -m wscenario``."""

import sys

from wscenario.cli import main

sys.exit(main())
