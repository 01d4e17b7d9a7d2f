"""The wheel: built from the sources, installed outside the checkout, imported from there.

The wheel is built from a copy of what it is made of (``pyproject.toml``, the README, the
licence and the three packages), so nothing in the checkout, its ``build/`` folder included, leaks
into it. It is installed with ``pip install --target`` into a temporary folder, and a subprocess
started elsewhere imports the packages with ``python -S`` (no ``.pth`` file runs, so an editable
install of the checkout cannot answer) and only that folder and the interpreter's own
site-packages (for torch and JAX) on its path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bridge", "torch_api", "jax_api")


def _project() -> dict:
    import tomllib  # (imported here: ruff's target version still predates it)

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


PROJECT = _project()

# run in the installed copy: where each package comes from, what it holds, and one operation each
PROBE = r"""
import importlib, importlib.metadata as md, json, pathlib, pkgutil, sys, warnings
warnings.simplefilter("ignore")
site = pathlib.Path(sys.argv[1]).resolve()
out = {"files": {}, "modules": {}, "typed": {}}
for name in ("bridge", "torch_api", "jax_api"):
    mod = importlib.import_module(name)
    out["files"][name] = str(pathlib.Path(mod.__file__).resolve())
    out["typed"][name] = (pathlib.Path(mod.__file__).parent / "py.typed").is_file()
    found = []
    for info in pkgutil.walk_packages(mod.__path__, name + "."):
        found.append(info.name)
        importlib.import_module(info.name)
    out["modules"][name] = sorted(found)
dist = md.distribution("sparsegradutils")
out["version"] = dist.version
out["requires_python"] = dist.metadata["Requires-Python"]
out["classifiers"] = dist.metadata.get_all("Classifier") or []
out["license"] = dist.metadata["License-Expression"]
out["dist_files"] = [str(f) for f in dist.files]
out["loaded_from_site"] = all(
    pathlib.Path(m.__file__).resolve().is_relative_to(site)
    for n, m in list(sys.modules.items())
    if n.split(".")[0] in ("bridge", "torch_api", "jax_api") and getattr(m, "__file__", None)
)

import torch, jax.numpy as jnp
from jax.experimental import sparse
import torch_api, jax_api, bridge
D = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
B = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
out["torch_mm"] = torch_api.sparse_mm(D.to_sparse_csr(), B).tolist()
out["jax_mm"] = jax_api.sparse_mm(sparse.BCOO.fromdense(jnp.asarray(D.numpy())),
                                  jnp.asarray(B.numpy())).tolist()
out["roundtrip"] = bridge.to_torch(bridge.to_jax(D)).tolist()
print(json.dumps(out))
"""


def _sources(dest: Path) -> Path:
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, dest / name)
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _checkout_modules(pkg: str) -> set[str]:
    """Every module and subpackage under ``pkg`` in the checkout, by dotted name."""
    names = set()
    for path in (ROOT / pkg).rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        if len(parts) > 1:
            names.add(".".join(parts))
    return names


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = _sources(tmp_path_factory.mktemp("src"))
    dist, site, elsewhere = tmp / "dist", tmp / "site", tmp / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-v", "-w",
                                  str(dist), str(src)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    # setuptools' deprecation notices about the project's metadata are errors here
    assert "deprecated" not in build.stdout + build.stderr, build.stdout + build.stderr
    wheels = list(dist.glob("sparsegradutils-*.whl"))
    assert len(wheels) == 1, wheels
    subprocess.run(pip + ["install", "--no-deps", "--no-index", "--target", str(site),
                          str(wheels[0])], check=True, capture_output=True, timeout=300)
    paths = sysconfig.get_paths()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JAX_"))}
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(site), paths["purelib"],
                                                       paths["platlib"]]))
    proc = subprocess.run([sys.executable, "-S", "-c", PROBE, str(site)], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return wheels[0], site, json.loads(proc.stdout.strip().splitlines()[-1])


def test_packages_import_from_the_installed_wheel_not_the_checkout(installed):
    wheel, site, out = installed
    assert wheel.name == f"sparsegradutils-{PROJECT['version']}-py3-none-any.whl"
    for pkg in PACKAGES:
        path = Path(out["files"][pkg])
        assert path == (site / pkg / "__init__.py").resolve(), path
        assert not path.is_relative_to(ROOT)
    assert out["loaded_from_site"]


def test_wheel_holds_every_module_and_the_package_data(installed):
    _, _, out = installed
    for pkg in PACKAGES:
        assert set(out["modules"][pkg]) == _checkout_modules(pkg), pkg
        assert out["typed"][pkg], f"{pkg}/py.typed missing from the wheel"
    files = set(out["dist_files"])
    assert {f"{pkg}/py.typed" for pkg in PACKAGES} <= files
    assert any(f.endswith("licenses/LICENSE") for f in files), sorted(files)


def test_wheel_metadata_is_the_projects(installed):
    _, _, out = installed
    assert out["version"] == PROJECT["version"]
    assert out["requires_python"] == PROJECT["requires-python"] == ">=3.11"
    assert set(PROJECT["classifiers"]) == set(out["classifiers"])
    assert out["license"] == PROJECT["license"] == "Apache-2.0"


def test_installed_operations_compute(installed):
    _, _, out = installed
    expected = [[2.0, 4.0], [10.0, 14.0]]  # [[2, 0], [1, 3]] @ [[1, 2], [3, 4]]
    assert out["torch_mm"] == expected
    assert out["jax_mm"] == expected
    assert out["roundtrip"] == [[2.0, 0.0], [1.0, 3.0]]


def test_licence_is_apache_2_in_full():
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n")
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    # the nine numbered sections of the terms
    titles = ("Definitions", "Grant of Copyright License", "Grant of Patent License",
              "Redistribution", "Submission of Contributions", "Trademarks",
              "Disclaimer of Warranty", "Limitation of Liability",
              "Accepting Warranty or Additional Liability")
    for n, title in enumerate(titles, start=1):
        assert f"{n}. {title}." in text, title
    assert PROJECT["license-files"] == ["LICENSE"]
