"""Hypothesis property tests of the core invariants (issue 7), for both frontends where they exist.

- The gradient of ``sparse_mm`` with respect to ``A`` is the dense gradient ``G B^T`` masked to
  A's pattern (and has A's layout and nnz).
- Solving then multiplying returns the right-hand side (triangular and generic solves).
- A transposed solve equals the solve with the explicitly transposed matrix (and the backward
  pass of a generic solve is a solve with the explicit transpose).
- The PairwiseEncoder's matrix equals a slow reference built entry by entry from its contract
  (tests/references.py:pairwise_dense).

Matrices are float64, small (at most 6 x 6, batches of 2) and well conditioned (dominant
diagonals), so the tolerances are those of direct float64 arithmetic (iterative solvers run to
1e-12). JAX cases compile once per shape, so they draw fewer examples.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torch_api as T
from tests.references import pairwise_dense
from torch_api.encoders import PairwiseEncoder
from torch_api.utils import BICGSTABSettings, MINRESSettings, bicgstab

TORCH = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JAX = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
F64 = torch.float64
TOL = {"rtol": 1e-9, "atol": 1e-10}

dims = st.integers(1, 6)
seeds = st.integers(0, 2**31 - 1)
layouts = st.sampled_from(["coo", "csr"])
batches = st.sampled_from([None, 2])


# ------------------------------------------------------------------------------ builders
def pattern(rng: np.random.Generator, shape, density: float) -> np.ndarray:
    """Random float64 values on a random pattern (at least one stored entry per matrix)."""
    values = rng.standard_normal(shape)
    mask = rng.random(shape) < density
    mask.reshape(-1, *shape[-2:])[:, 0, 0] = True
    return values * mask, mask


def triangular(rng, n: int, batch, upper: bool, unit: bool, density: float) -> np.ndarray:
    """A well-conditioned triangular matrix; strictly triangular when ``unit``."""
    shape = (n, n) if batch is None else (batch, n, n)
    M = rng.standard_normal(shape) * (rng.random(shape) < density)
    M = np.triu(M, 1) if upper else np.tril(M, -1)
    if not unit:
        M = M + np.eye(n) * (np.abs(M).sum(-1, keepdims=True) + 1.0 + rng.random((*shape[:-1], 1)))
    return M


def fixed_pattern(rng, shape, nnz: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Random values at exactly ``nnz`` random positions (of ``allowed``): JAX compiles once per
    number of stored entries, so the JAX tests keep it fixed for a shape."""
    pos = np.flatnonzero(np.ones(shape, bool) if allowed is None else allowed)
    M = np.zeros(shape)
    signs = rng.choice([-1.0, 1.0], nnz)
    M.flat[rng.choice(pos, size=nnz, replace=False)] = rng.uniform(0.5, 1.5, nnz) * signs
    return M


def with_dominant_diagonal(M: np.ndarray) -> np.ndarray:
    return M + np.diag(np.abs(M).sum(0) + np.abs(M).sum(1) + 1.0)


def dominant(rng, n: int, density: float, symmetric: bool) -> np.ndarray:
    M = rng.standard_normal((n, n)) * (rng.random((n, n)) < density)
    if symmetric:
        M = M + M.T
    np.fill_diagonal(M, 0.0)
    return M + np.diag(np.abs(M).sum(0) + np.abs(M).sum(1) + 1.0)


def to_torch(M: np.ndarray, layout: str) -> torch.Tensor:
    D = torch.from_numpy(M)
    if layout == "coo":
        return D.to_sparse_coo().coalesce()
    if D.dim() == 3:  # batched CSR needs one nnz per batch item: store explicit zeros
        counts = (D != 0).sum((-2, -1))
        if len(set(counts.tolist())) > 1:
            return None
    return D.to_sparse_csr()


def to_jax(M: np.ndarray, layout: str):
    import jax.numpy as jnp
    from jax.experimental.sparse import BCOO, BCSR

    rows, cols = np.nonzero(M)
    data = jnp.asarray(M[rows, cols])
    if layout == "coo":
        return BCOO((data, jnp.asarray(np.stack([rows, cols], 1))), shape=M.shape)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=M.shape[0]))])
    return BCSR((data, jnp.asarray(cols), jnp.asarray(indptr)), shape=M.shape)


def jax_available() -> bool:
    try:
        import jax_api  # noqa: F401
    except ImportError:
        return False
    return True


jax_only = pytest.mark.skipif(not jax_available(), reason="jax_api needs the jax extra")


# ---------------------------------------------------------------------- sparse_mm gradient
@TORCH
@given(n=dims, m=dims, p=dims, batch=batches, layout=layouts, seed=seeds,
       density=st.floats(0.1, 1.0))
def test_torch_sparse_mm_grad_is_masked_dense_grad(n, m, p, batch, layout, seed, density):
    rng = np.random.default_rng(seed)
    shape = (n, m) if batch is None else (batch, n, m)
    M, mask = pattern(rng, shape, density)
    A = to_torch(M, layout)
    if A is None:  # unequal nnz per batch item cannot be a batched CSR tensor
        A = to_torch(M, "coo")
    A.requires_grad_()
    B = torch.from_numpy(rng.standard_normal((*shape[:-2], m, p))).requires_grad_()
    G = torch.from_numpy(rng.standard_normal((*shape[:-2], n, p)))
    (T.sparse_mm(A, B) * G).sum().backward()
    dense_grad = (G @ B.detach().mT) * torch.from_numpy(M != 0)
    assert A.grad.layout == A.layout and A.grad._nnz() == A._nnz()
    torch.testing.assert_close(A.grad.to_dense(), dense_grad, **TOL)
    torch.testing.assert_close(B.grad, torch.from_numpy(M).mT @ G, **TOL)


jax_dims = st.sampled_from([3, 5])


@jax_only
@JAX
@given(n=jax_dims, m=jax_dims, layout=layouts, seed=seeds)
def test_jax_sparse_mm_grad_is_masked_dense_grad(n, m, layout, seed):
    import jax
    import jax.numpy as jnp

    import jax_api as J

    rng = np.random.default_rng(seed)
    p = 2
    M = fixed_pattern(rng, (n, m), n * m // 2)
    with jax.enable_x64(True):
        A = to_jax(M, layout)
        B = jnp.asarray(rng.standard_normal((m, p)))
        G = rng.standard_normal((n, p))

        def loss(data):
            parts = (A.indices,) if layout == "coo" else (A.indices, A.indptr)
            return (J.sparse_mm(type(A)((data, *parts), shape=A.shape), B) * G).sum()

        grad = np.asarray(jax.grad(loss)(A.data))
    rows, cols = np.nonzero(M)
    np.testing.assert_allclose(grad, (G @ np.asarray(B).T)[rows, cols], **TOL)


# ---------------------------------------------------------------- solve, then multiply
@TORCH
@given(n=dims, k=st.integers(1, 3), batch=batches, layout=layouts, upper=st.booleans(),
       unit=st.booleans(), seed=seeds)
def test_torch_triangular_solve_then_multiply(n, k, batch, layout, upper, unit, seed):
    rng = np.random.default_rng(seed)
    M = triangular(rng, n, batch, upper, unit, 0.5)
    A = to_torch(M, layout)
    if A is None:  # unequal nnz per batch item cannot be a batched CSR tensor
        A = to_torch(M, "coo")
    B = torch.from_numpy(rng.standard_normal((*M.shape[:-1], k)))
    X = T.sparse_triangular_solve(A, B, upper=upper, unitriangular=unit)
    full = torch.from_numpy(M + (np.eye(n) if unit else 0.0))
    torch.testing.assert_close(full @ X, B, **TOL)


@TORCH
@given(n=dims, k=st.integers(1, 3), layout=layouts, seed=seeds, symmetric=st.booleans())
def test_torch_generic_solve_then_multiply(n, k, layout, seed, symmetric):
    rng = np.random.default_rng(seed)
    M = dominant(rng, n, 0.5, symmetric)
    A = to_torch(M, layout)
    B = torch.from_numpy(rng.standard_normal((n, k)))
    if symmetric:  # default MINRES
        X = T.sparse_generic_solve(A, B, settings=MINRESSettings(minres_tolerance=1e-13))
    else:
        X = T.sparse_generic_solve(A, B, solve=bicgstab,
                                   settings=BICGSTABSettings(abstol=1e-14, reltol=1e-13))
    torch.testing.assert_close(torch.from_numpy(M) @ X, B, rtol=1e-8, atol=1e-9)


def jax_triangular(rng, n: int, upper: bool, unit: bool) -> np.ndarray:
    strict = np.triu(np.ones((n, n), bool), 1) if upper else np.tril(np.ones((n, n), bool), -1)
    M = fixed_pattern(rng, (n, n), n * (n - 1) // 4, strict)
    return M if unit else with_dominant_diagonal(M)


@jax_only
@JAX
@given(n=jax_dims, layout=layouts, upper=st.booleans(), seed=seeds)
def test_jax_triangular_solve_then_multiply(n, layout, upper, seed):
    import jax
    import jax.numpy as jnp

    import jax_api as J

    rng = np.random.default_rng(seed)
    L = jax_triangular(rng, n, upper, False)
    b = rng.standard_normal((n, 2))
    with jax.enable_x64(True):
        X = J.sparse_triangular_solve(to_jax(L, layout), jnp.asarray(b), upper=upper)
    np.testing.assert_allclose(L @ np.asarray(X), b, **TOL)


@jax_only
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layout=layouts, seed=seeds)
def test_jax_generic_solve_then_multiply(layout, seed):
    """One size (each compiles an iterative solver): a random symmetric pattern, MINRES."""
    import jax
    import jax.numpy as jnp

    import jax_api as J

    rng = np.random.default_rng(seed)
    n = 4
    half = fixed_pattern(rng, (n, n), 3, np.tril(np.ones((n, n), bool), -1))
    S = with_dominant_diagonal(half + half.T)
    b = rng.standard_normal((n, 2))
    with jax.enable_x64(True):
        Y = J.sparse_generic_solve(to_jax(S, layout), jnp.asarray(b), tol=1e-13)
    np.testing.assert_allclose(S @ np.asarray(Y), b, rtol=1e-8, atol=1e-9)


# ------------------------------------------------------ transposed solves, explicit transposes
@TORCH
@given(n=dims, batch=batches, layout=layouts, upper=st.booleans(), unit=st.booleans(), seed=seeds)
def test_torch_transposed_solve_matches_explicit_transpose(n, batch, layout, upper, unit, seed):
    rng = np.random.default_rng(seed)
    M = triangular(rng, n, batch, upper, unit, 0.6)
    A, At = to_torch(M, layout), to_torch(np.swapaxes(M, -1, -2).copy(), layout)
    if A is None or At is None:
        A, At = to_torch(M, "coo"), to_torch(np.swapaxes(M, -1, -2).copy(), "coo")
    B = torch.from_numpy(rng.standard_normal((*M.shape[:-1], 2)))
    X = T.sparse_triangular_solve(A, B, upper=upper, unitriangular=unit, transpose=True)
    Y = T.sparse_triangular_solve(At, B, upper=not upper, unitriangular=unit)
    torch.testing.assert_close(X, Y, **TOL)


@TORCH
@given(n=dims, layout=layouts, seed=seeds)
def test_torch_generic_solve_backward_is_a_solve_with_the_explicit_transpose(n, layout, seed):
    """``B.grad = A^{-T} G``: the backward pass solves with ``A^T``, not with ``A``."""
    rng = np.random.default_rng(seed)
    M = dominant(rng, n, 0.6, symmetric=False)
    A = to_torch(M, layout)
    B = torch.from_numpy(rng.standard_normal((n, 2))).requires_grad_()
    G = torch.from_numpy(rng.standard_normal((n, 2)))
    opts = {"solve": bicgstab, "settings": BICGSTABSettings(abstol=1e-14, reltol=1e-13)}
    (T.sparse_generic_solve(A, B, **opts) * G).sum().backward()
    expected = T.sparse_generic_solve(to_torch(M.T.copy(), layout), G, **opts)
    torch.testing.assert_close(B.grad, expected, rtol=1e-8, atol=1e-9)


@jax_only
@JAX
@given(n=jax_dims, layout=layouts, upper=st.booleans(), unit=st.booleans(), seed=seeds)
def test_jax_transposed_solve_matches_explicit_transpose(n, layout, upper, unit, seed):
    import jax
    import jax.numpy as jnp

    import jax_api as J

    rng = np.random.default_rng(seed)
    M = jax_triangular(rng, n, upper, unit)
    b = rng.standard_normal((n, 2))
    with jax.enable_x64(True):
        X = J.sparse_triangular_solve(to_jax(M, layout), jnp.asarray(b), upper=upper,
                                      unitriangular=unit, transpose=True)
        Y = J.sparse_triangular_solve(to_jax(M.T.copy(), layout), jnp.asarray(b),
                                      upper=not upper, unitriangular=unit)
    np.testing.assert_allclose(np.asarray(X), np.asarray(Y), **TOL)


# --------------------------------------------------------------------- PairwiseEncoder
@st.composite
def encoder_cases(draw):
    C = draw(st.integers(1, 2))
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    relation = draw(st.sampled_from(["indep", "intra", "inter"] if C > 1 else ["indep"]))
    return {
        "radius": draw(st.sampled_from([1, 1.5, 2])),
        "volume_shape": (C, *spatial),
        "diag": draw(st.booleans()),
        "upper": draw(st.sampled_from([None, True, False])),
        "channel_voxel_relation": relation,
    }


def encoder_values(rng, case, n_offsets: int, batch) -> np.ndarray:
    shape = (n_offsets, *case["volume_shape"])
    return rng.standard_normal(shape if batch is None else (batch, *shape))


def encoder_reference(case, offsets, values: np.ndarray, batch) -> torch.Tensor:
    items = [values] if batch is None else list(values)
    dense = [torch.from_numpy(pairwise_dense(v, case["volume_shape"], offsets)) for v in items]
    return dense[0] if batch is None else torch.stack(dense)


@TORCH
@given(case=encoder_cases(), layout=layouts, batch=batches, seed=seeds)
def test_torch_pairwise_encoder_matches_entry_by_entry_reference(case, layout, batch, seed):
    torch_layout = torch.sparse_coo if layout == "coo" else torch.sparse_csr
    enc = PairwiseEncoder(**case, layout=torch_layout)
    values = encoder_values(np.random.default_rng(seed), case, len(enc.offsets), batch)
    out = enc(torch.from_numpy(values))
    assert out.layout == torch_layout
    want = encoder_reference(case, enc.offsets, values, batch)
    torch.testing.assert_close(out.to_dense(), want, rtol=0, atol=0)


def jax_encoder_available() -> bool:
    if not jax_available():
        return False
    import jax_api

    return hasattr(jax_api, "PairwiseEncoder")


@pytest.mark.skipif(not jax_encoder_available(), reason="jax_api needs the jax extra")
@JAX
@given(case=encoder_cases(), batch=batches, seed=seeds)
def test_jax_pairwise_encoder_matches_entry_by_entry_reference(case, batch, seed):
    """The same contract: identical offsets, and the same matrix entry by entry."""
    import jax
    import jax.numpy as jnp

    import jax_api as J

    enc = J.PairwiseEncoder(**case)
    offsets = [tuple(int(x) for x in o) for o in enc.offsets]
    assert offsets == PairwiseEncoder(**case).offsets
    values = encoder_values(np.random.default_rng(seed), case, len(offsets), batch)
    with jax.enable_x64(True):
        got = torch.from_numpy(np.array(enc(jnp.asarray(values)).todense()))
    torch.testing.assert_close(got, encoder_reference(case, offsets, values, batch), rtol=0, atol=0)
