"""Every Python example of torchsparsegradutils 0.2.7's README runs on torch_api after the import
is changed.

The README is read from the installed wheel's metadata (its long description, the `test` extra
installs it), so the test needs no copy of it. The examples run in order in one namespace (the
README's later snippets use names its earlier ones defined). Two edits besides the import, each
checked to apply: the README leaves ``create_sparse_triangular_matrix()`` to the reader (here a
diagonal CSR matrix, both triangular and SPD, as its triangular and CG solves need), and the
encoder example's ``(4, 64, 64, 64)`` volume becomes ``(4, 8, 8, 8)`` (the README-size build is
``benchmarks/encoder.py``'s ``readme`` case). One fix of the README itself: its
``linear_cg, tol=1e-6`` fails in the original as well (``tol`` is not a keyword of
``linear_cg``; ``tolerance`` is). The last snippet is prose about
parameterisations with undefined names (``unit_triangular_matrix``), supplied here too.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import re
import warnings

import pytest
import torch

import torch_api

ORIGINAL = "torchsparsegradutils"
SMALL = {"(4, 64, 64, 64)": "(4, 8, 8, 8)", "4 * 64 * 64 * 64": "4 * 8 * 8 * 8"}
# linear_cg has no ``tol`` keyword in either library (the README line raises TypeError in the
# original too): its name is ``tolerance``
FIXES = {"solve=linear_cg, tol=1e-6": "solve=linear_cg, tolerance=1e-6"}


def readme_examples() -> list[str]:
    """The README's ```python blocks, from the installed wheel's metadata."""
    text = importlib.metadata.metadata(ORIGINAL).get_payload()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def migrate(code: str) -> str:
    """The example as a torch_api user writes it: the import renamed, the size reduced."""
    code = re.sub(rf"\b{ORIGINAL}\b", "torch_api", code)
    for big, small in {**SMALL, **FIXES}.items():
        code = code.replace(big, small)
    return code


def _diagonal_csr() -> torch.Tensor:
    n = 50
    d = torch.linspace(1.0, 3.0, n)
    return torch.sparse_csr_tensor(torch.arange(n + 1), torch.arange(n), d, (n, n))


def _unit_lower(n: int = 1000, batch: int = 2) -> torch.Tensor:
    return torch_api.utils.rand_sparse_tri(
        (batch, n, n), 5000, torch.sparse_csr, upper=False, strict=True
    )


EXAMPLES = readme_examples()


def test_the_readme_has_its_examples():
    assert len(EXAMPLES) == 9
    joined = "\n".join(EXAMPLES)
    assert "create_sparse_triangular_matrix()" in joined
    assert all(big in joined for big in {**SMALL, **FIXES})


def test_every_readme_example_runs():
    torch.manual_seed(0)
    namespace = {
        "create_sparse_triangular_matrix": _diagonal_csr,
        "unit_triangular_matrix": _unit_lower(),
    }
    out = io.StringIO()
    for i, code in enumerate(EXAMPLES):
        migrated = migrate(code)
        assert ORIGINAL not in migrated
        with warnings.catch_warnings(), contextlib.redirect_stdout(out):
            warnings.simplefilter("ignore", UserWarning)  # torch's beta-state warnings
            exec(compile(migrated, f"<README example {i}>", "exec"), namespace)
        if "x3" in namespace and "solves" not in namespace:  # the solver example: its results
            namespace["solves"] = [namespace[k] for k in ("A", "b", "x1", "x2", "x3")]
    printed = out.getvalue()
    assert "Mean test passed: True" in printed
    assert "Wrong mean test passed: False" in printed
    assert "Using LDL^T parameterization: True" in printed
    # the README's solves computed the solution of its (diagonal) system
    A, b, *solutions = namespace["solves"]
    for x in solutions:
        torch.testing.assert_close(A.to_dense() @ x, b, atol=1e-4, rtol=1e-4)


def test_readme_encoder_factor_is_refused_at_first_use():
    """The README builds a SparseMultivariateNormal on the encoder's full (both triangles, no
    diagonal) matrix: building succeeds under default validation, as in the original; using it
    raises, since it is not a Cholesky factor (the original would sample from garbage)."""
    enc = torch_api.encoders.PairwiseEncoder(2.0, (2, 4, 4, 4), layout=torch.sparse_csr)
    S = enc(torch.randn(len(enc.offsets), 2, 4, 4, 4))
    Distribution = torch.distributions.Distribution
    default = Distribution._validate_args  # torch's global default (True unless turned off)
    Distribution.set_default_validate_args(True)
    try:
        dist = torch_api.distributions.SparseMultivariateNormal(torch.zeros(128), scale_tril=S)
        with pytest.raises(ValueError, match="scale_tril: expected a factor satisfying"):
            dist.rsample()
    finally:
        Distribution.set_default_validate_args(default)
    with pytest.raises(ValueError, match="parameter scale_tril .* SparseLowerTriangular"):
        torch_api.distributions.SparseMultivariateNormal(
            torch.zeros(128), scale_tril=S, validate_args=True
        )
