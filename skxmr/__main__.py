"""``python -m skxmr benchmark``: see :mod:`skxmr.benchmark`."""

import sys

from .benchmark import main

if __name__ == "__main__":
    sys.exit(main())
