"""``python -m tuner``: the same entry point as the ``tuner`` console script."""

import sys

from tuner.cli import main

sys.exit(main())
