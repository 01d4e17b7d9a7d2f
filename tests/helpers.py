"""Reference helpers shared by the test suite (dense references, sparse builders, comparisons)."""

from __future__ import annotations

import torch

# The one tolerance table of the suite: (rtol, atol) per kind of operation and dtype. "exact":
# products, direct and triangular solves, reductions (rounding only); "iterative": iterative
# solvers run to their default tolerances (and gradients through them).
TOLERANCES = {
    "exact": {"float64": (1e-10, 1e-10), "float32": (1e-4, 1e-5)},
    "iterative": {"float64": (1e-8, 1e-9), "float32": (2e-3, 2e-4)},
}


def tol(dtype, kind: str = "exact") -> dict:
    """``{"rtol", "atol"}`` for a torch, NumPy or JAX ``dtype`` and an operation ``kind`` of
    :data:`TOLERANCES`. Example: ``torch.testing.assert_close(x, y, **tol(x.dtype))``."""
    name = str(dtype).rsplit(".", 1)[-1] if isinstance(dtype, torch.dtype) else _np_name(dtype)
    rtol, atol = TOLERANCES[kind]["float64" if name == "float64" else "float32"]
    return {"rtol": rtol, "atol": atol}


def _np_name(dtype) -> str:
    import numpy as np

    return np.dtype(dtype).name


def random_dense(shape, density=0.3, dtype=torch.float64, seed=0, nnz_per_batch_equal=True):
    """A dense tensor with a random sparsity pattern (equal nnz per batch item when batched,
    as torch's batched CSR requires)."""
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
    if len(shape) == 3 and nnz_per_batch_equal:
        n, m = shape[-2:]
        k = max(1, int(density * n * m))
        mask = torch.zeros(shape, dtype=torch.bool)
        for b in range(shape[0]):
            idx = torch.randperm(n * m, generator=g)[:k]
            mask[b].view(-1)[idx] = True
    else:
        mask = torch.rand(*shape, generator=g) < density
    return values * mask


def to_sparse(D: torch.Tensor, layout, index_dtype=torch.int64) -> torch.Tensor:
    """``D`` as a COO or CSR tensor (CSR with the requested index dtype)."""
    if layout == torch.sparse_coo:
        return D.to_sparse_coo().coalesce()
    S = D.to_sparse_csr()
    return torch.sparse_csr_tensor(
        S.crow_indices().to(index_dtype), S.col_indices().to(index_dtype), S.values(), S.shape
    )


def pattern_mask(A: torch.Tensor) -> torch.Tensor:
    """Dense boolean mask of A's stored entries (including stored zeros)."""
    ones = A.detach().clone()
    if ones.layout == torch.sparse_coo:
        ones = torch.sparse_coo_tensor(ones._indices(), torch.ones_like(ones._values()), ones.shape)
    else:
        ones = torch.sparse_csr_tensor(
            ones.crow_indices(), ones.col_indices(), torch.ones_like(ones.values()), ones.shape
        )
    return ones.to_dense() != 0


def _index_parts(A: torch.Tensor) -> list[torch.Tensor]:
    if A.layout == torch.sparse_coo:
        return [A._indices()]
    return [A.crow_indices(), A.col_indices()]


def check_sparse_grads(grad, A, dense_grad, **kw):
    """The gradient of a sparse input: ``grad`` has ``A``'s layout, shape, nnz and indices, and
    equals the dense gradient ``dense_grad`` on ``A``'s pattern (zero elsewhere).

    Torch: ``grad`` is ``A.grad``. JAX: ``grad`` is the gradient for ``A.data`` (an array) or a
    BCOO/BCSR holding it (then its indices must be A's); padding entries must get zero.
    Example: ``check_sparse_grads(A.grad, A, D.grad)``.
    """
    import numpy as np

    if isinstance(grad, torch.Tensor):
        assert grad.layout == A.layout, (grad.layout, A.layout)
        assert grad.shape == A.shape, (grad.shape, A.shape)
        assert grad._nnz() == A._nnz(), (grad._nnz(), A._nnz())
        for g, a in zip(_index_parts(grad), _index_parts(A.detach()), strict=True):
            assert torch.equal(g, a), "the gradient's indices differ from the input's"
        want = torch.as_tensor(np.asarray(dense_of(dense_grad)), dtype=grad.dtype)
        torch.testing.assert_close(grad.to_dense(), want * pattern_mask(A), **kw)
        return
    if hasattr(grad, "n_batch"):  # a BCOO/BCSR gradient: same indices as A
        assert type(grad) is type(A) and grad.shape == A.shape, (type(grad), grad.shape)
        np.testing.assert_array_equal(np.asarray(grad.indices), np.asarray(A.indices))
        if hasattr(A, "indptr"):
            np.testing.assert_array_equal(np.asarray(grad.indptr), np.asarray(A.indptr))
        grad = grad.data
    kw = kw or tol(A.dtype)
    mask = dense_of(jax_with_data(A, np.ones(A.data.shape, np.float64) * ~jax_padding_mask(A)))
    got = jax_sparse_grad_dense(A, grad)
    np.testing.assert_allclose(got, np.asarray(dense_of(dense_grad)) * (mask != 0), **kw)


assert_sparse_grad = check_sparse_grads  # the name the older tests use


def check_against_dense(op, dense_op, *args, seed: int = 0, G=None, **kw):
    """Run ``op(*args)`` on torch inputs (sparse ones anywhere) and ``dense_op`` on their dense
    equivalents; compare the values and, for every input with ``requires_grad``, the gradient of
    ``sum(G * out)`` (sparse inputs through :func:`check_sparse_grads`); ``G`` is random (from
    ``seed``) unless given. With no input requiring a gradient the result must not require one.
    ``kw``: the tolerances (default :func:`tol` of the result's dtype). Returns ``op``'s result.
    Example: ``check_against_dense(sparse_mm, torch.matmul, A.requires_grad_(), B)``.
    """
    dense = [(a.detach().to_dense() if a.layout != torch.strided else a.detach().clone())
             .requires_grad_(a.requires_grad) for a in args]
    out, ref = op(*args), dense_op(*dense)
    kw = kw or tol(ref.dtype)
    torch.testing.assert_close(out, ref.detach(), **kw)
    if not any(a.requires_grad for a in args):
        assert not out.requires_grad, "a result without differentiable inputs requires grad"
        return out
    if G is None:
        g = torch.Generator().manual_seed(seed)
        G = torch.randn(ref.shape, generator=g, dtype=torch.float64).to(ref.dtype)
    (out * G).sum().backward()
    (ref * G).sum().backward()
    for a, d in zip(args, dense, strict=True):
        if not a.requires_grad:
            assert a.grad is None
        elif a.layout != torch.strided:
            check_sparse_grads(a.grad, a, d.grad, **kw)
        else:
            torch.testing.assert_close(a.grad, d.grad, **kw)
    return out


def with_values(S: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The sparse COO (coalesced) or CSR ``S``'s pattern holding ``values``, differentiable in
    ``values`` (for gradcheck over the stored values). Example: ``with_values(S, 2 * S.values())``.
    """
    if S.layout == torch.sparse_coo:
        return torch.sparse_coo_tensor(S.indices(), values, S.shape, is_coalesced=True)
    return torch.sparse_csr_tensor(S.crow_indices(), S.col_indices(), values, S.shape)


def gradcheck_in_values(op, S: torch.Tensor, B: torch.Tensor) -> bool:
    """``torch.autograd.gradcheck`` of ``op(A, B)`` in the stored values of the sparse ``S`` (A:
    S's pattern holding them, :func:`with_values`) and in the dense ``B`` (float64).
    Example: ``assert gradcheck_in_values(sparse_mm, S, torch.randn(5, 2, dtype=torch.float64))``.
    """
    f = lambda values, B_: op(with_values(S, values), B_)
    leaves = (S.values().detach().clone().requires_grad_(), B.detach().clone().requires_grad_())
    return torch.autograd.gradcheck(f, leaves)


def check_operand_errors(op, D: torch.Tensor, B: torch.Tensor, rows_match: str | None = None):
    """The argument checks every ``op(A, B)`` of torch_api with a sparse ``A`` and a dense ``B``
    (a vector or a block) makes: for the float64 dense matrix ``D`` (its CSR is a valid A) and a
    valid ``B``, a TypeError naming A for a non-tensor, dense or CSC A and naming B for a sparse
    B; a ValueError for an integer A, and naming B for B with a row too few (the message matching
    ``rows_match``, default ``"B: expected {D.shape[-1]} rows"``), float32 or of rank 3.
    Example: ``check_operand_errors(sparse_mm, D, torch.ones(D.shape[-1], 2, dtype=D.dtype))``.
    """
    import pytest

    A = to_sparse(D, torch.sparse_csr)
    for bad_type in (D.tolist(), D.numpy()):
        with pytest.raises(TypeError, match="A: expected a torch.Tensor"):
            op(bad_type, B)
    for got, bad_layout in (("a dense", D), ("a sparse CSC", D.to_sparse_csc())):
        with pytest.raises(TypeError, match=f"A: expected a sparse COO or sparse CSR .*got {got}"):
            op(bad_layout, B)
    with pytest.raises(ValueError, match="A: expected float32 or float64"):
        op(to_sparse(D.to(torch.int64), torch.sparse_coo), B)
    with pytest.raises(TypeError, match="B: expected a dense"):
        op(A, B.to_sparse())
    with pytest.raises(ValueError, match=rows_match or f"B: expected {D.shape[-1]} rows"):
        op(A, B[:-1])
    with pytest.raises(ValueError, match="B: expected dtype torch.float64"):
        op(A, B.float())
    with pytest.raises(ValueError, match="B: expected a 1 or 2-D tensor"):
        op(A, B.reshape(1, 1, -1) if B.dim() == 1 else B[None])


def check_logsumexp_argument_errors(logsumexp, bidir_logsumexp, A, bad_layout: str,
                                    layout_match: str = "output_layout: expected one of"):
    """The ``dim``, ``output_layout`` and ``keepdim`` errors both frontends' log-sum-exp make, for
    a valid 2-D sparse ``A`` of either framework: ``dim`` out of range, repeated, empty or not an
    int (ValueError / TypeError naming dim); an unknown ``output_layout`` (``bad_layout``, the
    message matching ``layout_match``); ``keepdim=True`` with ``output_layout="padded"``.
    Example: ``check_logsumexp_argument_errors(sparse_logsumexp, sparse_bidir_logsumexp, A, "x")``.
    """
    import pytest

    for dim, error, match in (
        (2, ValueError, r"dim: expected dimensions in \[-2, 1\], got 2"),
        ((0, -2), ValueError, "dim: expected each dimension at most once"),
        ((1, -1), ValueError, "dim: expected each dimension at most once"),
        ((), TypeError, "dim: expected an int or a non-empty sequence"),
        ("rows", TypeError, "dim: expected an int or a non-empty sequence"),
    ):
        with pytest.raises(error, match=match):
            logsumexp(A, dim)
    with pytest.raises(ValueError, match=layout_match):
        bidir_logsumexp(A, output_layout=bad_layout)
    with pytest.raises(ValueError, match="keepdim: expected keepdim=True only with"):
        bidir_logsumexp(A, keepdim=True, output_layout="padded")


def solve_matrix(n: int, kind: str = "general", dtype=torch.float64, seed: int = 0, density=0.3):
    """A dense, well-conditioned ``(n, n)`` test matrix with a random sparse pattern.

    ``kind``: ``"general"`` (non-symmetric, diagonally dominant), ``"spd"`` (symmetric positive
    definite), ``"lower"`` / ``"upper"`` (triangular with a dominant diagonal).
    """
    R = random_dense((n, n), density=density, seed=seed)
    if kind == "spd":
        R = 0.5 * (R + R.T)
    elif kind == "lower":
        R = torch.tril(R, -1)
    elif kind == "upper":
        R = torch.triu(R, 1)
    elif kind != "general":
        raise ValueError(f"kind: unknown {kind!r}")
    R.fill_diagonal_(0.0)
    R += torch.diag(R.abs().sum(1) + R.abs().sum(0) + 1.0)
    return R.to(dtype)


def dense_solve_reference(D: torch.Tensor, B: torch.Tensor, G: torch.Tensor):
    """``X = D^{-1} B`` and the dense-autograd gradients ``(dD, dB)`` of ``sum(G * X)``."""
    D = D.detach().clone().requires_grad_()
    B = B.detach().clone().requires_grad_()
    X = torch.linalg.solve(D, B)
    (X * G).sum().backward()
    return X.detach(), D.grad, B.grad


# ------------------------------------------------------------------------ fresh interpreters
def run_python(code: str, env: dict | None = None, timeout: float = 600):
    """Run ``python -c code`` in a fresh interpreter in the repository root, with the repository
    first on ``PYTHONPATH`` and ``env`` (default: this process's environment) otherwise; returns
    the ``subprocess.CompletedProcess`` (text stdout and stderr captured).
    Example: ``assert run_python("import torch_api").returncode == 0``.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                          text=True, timeout=timeout)


# The cross-framework builders live in tests/framework_helpers.py; importable from here too.
from tests.framework_helpers import (  # noqa: E402, F401
    JAX_KINDS_2D,
    JAX_KINDS_3D,
    aligned_numpy,
    data_ptr,
    dense_of,
    jax_padding_mask,
    jax_sparse,
    jax_sparse_grad_dense,
    jax_with_data,
    make_sparse,
    sparse_parts,
)
