"""README's ten-line example runs as written (on the bundled COCO embeddings)."""

import ast
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1
    assert len(blocks[0].strip().splitlines()) <= 10
    exec(compile(blocks[0], str(README), "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed] == ["CosineSimilarity", "SinkhornNormalizer"]
    cosine, sn = (ast.literal_eval(line.split(None, 1)[1]) for line in printed)
    assert cosine["R@1"] == 60.0  # this split's cosine baseline, hand-checked
    assert sn["R@1"] > cosine["R@1"] + 5
    # Rounded as printed: one decimal, no float noise such as 70.39999999999999.
    assert all(len(repr(v).split(".")[-1]) == 1 for v in {**cosine, **sn}.values())


def test_readme_has_exactly_the_two_setup_commands():
    commands = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    assert [c.strip() for c in commands] == [
        "python -m pip install . && python -m skxmr benchmark",
        'python -m pip install ".[test]" && python -m pytest',
    ]
