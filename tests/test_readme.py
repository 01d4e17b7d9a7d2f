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


# ------------------------------------------------------------------ what the README tells people
ROOT = Path(__file__).parents[1]
BASH = re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_install_commands_name_what_exists():
    # not on PyPI yet: no command installs the bare published name, and the README says so
    bare = re.compile(r"pip install (-\S+ )*['\"]?sparsegradutils(\[[^\]]*\])?['\"]?(\s|$)")
    for block in BASH:
        assert not bare.search(block), block
    assert "not published on PyPI yet" in README
    wheel = f"dist/sparsegradutils-{_pyproject()['version']}-py3-none-any.whl"
    assert "python -m build --wheel" in README and wheel in README


def test_python_version_agrees_with_requires_python():
    lowest = _pyproject()["requires-python"].removeprefix(">=")
    assert f"Python {lowest} or newer" in README
    stated = set(re.findall(r"Python (3\.\d+)", README))
    assert stated == {lowest}, stated  # no other (older) version promised anywhere


def test_both_commands_say_how_long_they_take():
    intro = README.split("## Try it", 1)[1].split("## Benchmarks", 1)[0]
    before_bench, after_bench = intro.split("python -m benchmarks\n```", 1)
    assert re.search(r"installs take about \d+ minutes", before_bench)
    assert re.search(r"quick suite takes about \d+ to \d+ minutes", before_bench)
    assert re.search(r"Run the tests \(about \d+ to \d+ minutes",
                     after_bench.split("<!-- test-command -->")[0])


def test_relative_links_resolve():
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README)
    assert {"docs/reliability.md", "docs/compatibility.md", "LICENSE"} <= set(targets)
    for target in targets:
        assert (ROOT / target).exists(), target


def test_bridge_and_migration_sections():
    assert any("bridge.to_jax" in b and "bridge.to_torch" in b for b in BLOCKS)
    assert any("from torch_api" in b and "torchsparsegradutils" in b for b in BLOCKS)
    assert "## Coming from torchsparsegradutils" in README
