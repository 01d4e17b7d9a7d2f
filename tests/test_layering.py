"""The dependency picture of ARCHITECTURE.md, checked.

- ``bridge.internal`` (the framework-neutral layer) imports no torch, JAX or CuPy.
- ``jax_api`` reaches torch_api only through its public entry points: its source names no
  private ``torch_api._*`` module (an ``ast`` scan), and importing ``jax_api`` and running its
  operations loads no ``torch_api._*`` module unless a public entry point that jax_api imports
  loaded it.
- The convergence classes are one pair, shared by both frontends.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_TORCH = {"torch_api", "torch_api.utils", "torch_api.encoders", "torch_api.distributions"}
FRAMEWORKS = ("torch", "jax", "jaxlib", "cupy", "equinox")


def _run(code: str) -> dict:
    """Run ``code`` in a fresh interpreter at the repository root; it prints one JSON object."""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _torch_api_imports(path: Path) -> set[str]:
    """Every ``torch_api`` module an import statement of ``path`` names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == "torch_api"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "torch_api":
                names.add(node.module)
                # ``from torch_api import _x`` names the private module ``torch_api._x``
                names |= {f"{node.module}.{a.name}" for a in node.names if a.name[0] == "_"}
    return names


def _is_private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split(".")[1:])


def test_ast_scan_finds_private_imports(tmp_path):
    """The scanner itself: it sees the three spellings of a private import."""
    src = tmp_path / "m.py"
    src.write_text(
        "import torch_api._pattern\nfrom torch_api._random import x\nfrom torch_api import _stats"
        "\nfrom torch_api.utils import rand_sparse\nfrom . import _local\n"
    )
    found = _torch_api_imports(src)
    assert {m for m in found if _is_private(m)} == {
        "torch_api._pattern", "torch_api._random", "torch_api._stats"
    }
    assert "torch_api.utils" in found


def test_jax_api_source_imports_no_private_torch_api_module():
    bad = {}
    for path in sorted((ROOT / "jax_api").rglob("*.py")):
        private = sorted(m for m in _torch_api_imports(path) if _is_private(m))
        if private:
            bad[str(path.relative_to(ROOT))] = private
    assert not bad, f"jax_api imports torch_api's private modules: {bad}"


def _public_entry_points() -> set[str]:
    found = set()
    for path in (ROOT / "jax_api").rglob("*.py"):
        found |= {m for m in _torch_api_imports(path) if m in PUBLIC_TORCH}
    return found


def test_importing_and_running_jax_api_loads_no_private_torch_api_module():
    pytest.importorskip("jax")
    loaded = _run(
        "import json, sys\n"
        "import jax, jax.numpy as jnp\n"
        "from jax.experimental.sparse import BCOO, BCSR\n"
        "import jax_api as J\n"
        "A = BCSR.fromdense(jnp.array([[2.0, 0.0, 0.0], [1.0, 3.0, 0.0], [0.0, 1.0, 4.0]]))\n"
        "B = jnp.ones((3, 2))\n"
        "J.sparse_mm(A, B).block_until_ready()\n"
        "J.sparse_triangular_solve(A, B, upper=False).block_until_ready()\n"
        "J.cg(A @ jnp.eye(3), B[:, 0])\n"
        "J.rand_sparse(jax.random.key(0), (4, 4), 5, 'csr')\n"
        "C = jnp.eye(2)[None]\n"
        "J.cov_nagao_test(C, C, 10)\n"
        "mods = sorted(m for m in sys.modules if m.split('.')[0] == 'torch_api')\n"
        "print(json.dumps(mods))\n"
    )
    private = [m for m in loaded if _is_private(m)]
    if private:  # allowed only as what a public entry point jax_api imports pulls in
        entries = _public_entry_points()
        assert entries, f"private torch_api modules loaded without a public entry: {private}"
        assert set(loaded) - set(private) <= entries | PUBLIC_TORCH


def test_convergence_classes_are_shared():
    pytest.importorskip("jax")
    import jax_api
    import torch_api.utils
    from bridge.internal import convergence
    from torch_api import _convergence

    assert jax_api.ConvergenceWarning is torch_api.utils.ConvergenceWarning
    assert jax_api.ConvergenceError is torch_api.utils.ConvergenceError
    assert _convergence.ConvergenceWarning is convergence.ConvergenceWarning
    assert {"ConvergenceWarning", "ConvergenceError"} <= set(jax_api.__all__)
    assert issubclass(jax_api.ConvergenceWarning, UserWarning)
    assert issubclass(jax_api.ConvergenceError, RuntimeError)


def test_bridge_internal_imports_no_framework():
    import bridge.internal

    names = sorted(m.name for m in pkgutil.iter_modules(bridge.internal.__path__))
    assert {"convergence", "messages", "options", "sampling", "stats", "indices"} <= set(names)
    code = (
        "import json, sys\n"
        f"for name in {names!r}:\n"
        "    __import__('bridge.internal.' + name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r})))\n"
    )
    assert _run(code) == []
