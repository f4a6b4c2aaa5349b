"""The wheel and the sdist carry both licence files, and the sdist its tests."""

import sys
import tarfile
import zipfile
from pathlib import Path

dist = Path(sys.argv[1])
wheel = zipfile.ZipFile(next(dist.glob("*.whl"))).namelist()
sdist = tarfile.open(next(dist.glob("*.tar.gz"))).getnames()
missing = [
    *(f"wheel: {n}" for n in ("LICENSE", "skxmr/datasets/data/LICENSE",
                             "skxmr/datasets/data/features_clip.npy")
      if not any(p.endswith(n) and (".dist-info/licenses/" in p or n.startswith("skxmr"))
                 for p in wheel)),
    *(f"sdist: {n}" for n in ("LICENSE", "conftest.py", "tests/test_common.py",
                             "skxmr/datasets/data/LICENSE")
      if not any(p.split("/", 1)[-1] == n for p in sdist)),
]
if missing:
    sys.exit("missing from the distributions: " + ", ".join(missing))
print("wheel and sdist carry LICENSE, the data notice and (sdist) the tests")
