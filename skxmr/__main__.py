"""``python -m skxmr benchmark``: see :mod:`skxmr.benchmark` and :mod:`skxmr.benchmark._cli`."""

import sys

from .benchmark._cli import main

if __name__ == "__main__":
    sys.exit(main())
