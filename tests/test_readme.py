"""README's ten-line example runs as written (through the fetcher's cache)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1
    assert len(blocks[0].strip().splitlines()) <= 10
    exec(compile(blocks[0], str(README), "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert float(printed[0]) > 60.0  # SN beats cosine's 60.0 R@1 on this split
    assert "'R@1'" in printed[1]


def test_readme_has_exactly_the_two_setup_commands():
    commands = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    assert [c.strip() for c in commands] == [
        "python -m pip install . && python -m skxmr benchmark",
        'python -m pip install ".[test]" && python -m pytest',
    ]
