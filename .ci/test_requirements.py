"""Requirement lists for CI's extra jobs, read from pyproject.toml (one source).

``--minimums``: the runtime dependencies pinned to their declared minimums
(``numpy>=1.23.5`` becomes ``numpy==1.23.5``), one a line.
``--without NAME``: the test extra without NAME, one a line.
"""

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]


def name(req):
    return re.split(r"[\[<>=!~ ;]", req, maxsplit=1)[0].lower()


if sys.argv[1] == "--minimums":
    for req in project["dependencies"]:
        low = re.search(r">=\s*([\w.]+)", req)
        if not low:
            sys.exit(f"{req}: no declared minimum")
        print(f"{name(req)}=={low.group(1)}")
elif sys.argv[1] == "--without":
    for req in project["optional-dependencies"]["test"]:
        if name(req) != sys.argv[2].lower():
            print(req)
else:
    sys.exit(__doc__)
