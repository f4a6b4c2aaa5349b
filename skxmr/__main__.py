"""``python -m skxmr benchmark``: see :mod:`skxmr.benchmark` and :mod:`skxmr._cli`."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
