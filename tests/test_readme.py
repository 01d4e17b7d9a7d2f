"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = (Path(__file__).parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("source", BLOCKS, ids=lambda s: s.split("\n")[1][:40])
def test_readme_example_runs(source, capsys):
    if "jax" in source:
        pytest.importorskip("jax")
    exec(compile(source, "README.md", "exec"), {"__name__": "readme_example"})
