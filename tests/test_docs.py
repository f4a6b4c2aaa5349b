"""The user guide's code blocks run as pasted; metric names are not e-mail links."""

import os
import re
import sys
import types
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "doc"
# getting_started, every page of the user guide's toctree and the pages they include.
PAGES = ["getting_started", "hubness", "hubness_baselines", "invgc", "calibration",
         "alignment", "metrics", "model_selection", "serving", "scaling", "arrays",
         "extending"]
BLOCK = re.compile(r"^\.\. code-block:: python\n((?:[ \t]*\n|[ \t]+.*\n)+)", re.M)


def python_blocks(page):
    text = (DOC / f"{page}.rst").read_text()
    blocks = []
    for body in BLOCK.findall(text):
        lines = body.splitlines()
        indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
        blocks.append("\n".join(line[indent:] for line in lines).strip() + "\n")
    return blocks


def test_user_guide_toctree_is_covered():
    toctree = (DOC / "user_guide.rst").read_text()
    listed = re.findall(r"^   (\w+)$", toctree, flags=re.M)
    assert set(listed) <= set(PAGES), set(listed) - set(PAGES)
    # Python shown as a literal block ("::") would escape this test.
    for page in PAGES:
        text = (DOC / f"{page}.rst").read_text()
        for literal in re.findall(r"::\n\n((?:[ \t]+.*\n|\n)+)", text):
            assert not re.search(r"^\s*(from \w|import \w)", literal, re.M), (page, literal[:80])


@pytest.mark.parametrize("page", PAGES)
def test_code_blocks_run_as_pasted(page, tmp_path, monkeypatch):
    """A page's blocks, pasted in order into one fresh session, run."""
    from skxmr import _registry

    blocks = python_blocks(page)
    if not blocks:
        pytest.skip(f"{page}.rst has no Python code block")
    if any("SCIPY_ARRAY_API" in b for b in blocks):
        pytest.importorskip("torch")
        if os.environ.get("SCIPY_ARRAY_API") != "1" and "scipy" in sys.modules:
            pytest.skip(f"{page}.rst sets SCIPY_ARRAY_API before scipy is imported; "
                        "run it in a fresh interpreter")
    # A GPU variant shown beside a CPU block runs only where there is a GPU.
    blocks = [b for b in blocks if 'device="cuda"' not in b or _cuda_available()]
    monkeypatch.chdir(tmp_path)  # blocks may write files (best.joblib)
    registry = dict(_registry._METHODS)
    # A module of its own as __main__, as a pasted script has: classes defined
    # on a page pickle (the estimator checks pickle them).
    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    namespace = main.__dict__
    try:
        for i, block in enumerate(blocks):
            exec(compile(block, f"doc/{page}.rst[block {i}]", "exec"), namespace)
    finally:
        _registry._METHODS.clear()
        _registry._METHODS.update(registry)


def _cuda_available():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def test_metric_names_are_not_mailto_links():
    from docutils.core import publish_doctree
    from docutils import nodes

    sys.path.insert(0, str(DOC))
    try:
        from no_mailto import NoMailto
    finally:
        sys.path.remove(str(DOC))
    text = "R@1, R@10 and skew@10 of MeanSim@10 (see https://example.org)."
    tree = publish_doctree(text)
    refs = [r.get("refuri", "") for r in tree.findall(nodes.reference)]
    assert any(r.startswith("mailto:") for r in refs)  # what docutils does on its own
    NoMailto(tree).apply()
    refs = [r.get("refuri", "") for r in tree.findall(nodes.reference)]
    assert not any(r.startswith("mailto:") for r in refs)
    assert "https://example.org" in refs  # other links are kept
    assert tree.astext().startswith("R@1, R@10 and skew@10 of MeanSim@10")
