"""Adversarial memory layouts: every torch_api operation on right-hand sides and upstream
gradients that are not contiguous (transposed, column slices, a single column of a wider
matrix, stride-0 expansions, strided batch slices), checked against dense references for the
value and the gradients of A (at its pattern) and B.

MKL's CSR triangular solve with one right-hand side reads the first n contiguous elements
whatever the row stride; every such case here failed before torch_api copied those operands.
"""

from __future__ import annotations

import pytest
import torch

import torch_api as T
from tests.helpers import assert_sparse_grad, solve_matrix, to_sparse

F64 = torch.float64
N, P = 5, 3


def _rhs_forms(batch: int | None, n: int) -> dict:
    """Dense right-hand sides of n rows in awkward layouts (each a view, none contiguous)."""
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, dtype=F64, generator=g)
    if batch is None:
        return {
            "contiguous": r(n, P),
            "transposed": r(P, n).t(),
            "column slice": r(n, 2 * P)[:, 1 : P + 1],
            "single column": r(n, 4)[:, 2],
            "one-column slice": r(n, 4)[:, 2:3],
            "stride-0 expand": r(n, 1).expand(n, P),
            "expanded vector": r(1).expand(n),
            "strided rows": r(2 * n, P)[::2],
        }
    return {
        "contiguous": r(batch, n, P),
        "batch slice vector": r(batch, n, 4)[:, :, 0],
        "batch slice column": r(batch, n, 4)[:, :, 1:2],
        "transposed batch": r(batch, P, n).transpose(1, 2),
        "stride-0 batch": r(1, n, P).expand(batch, n, P),
    }


def _strided_grad(shape) -> torch.Tensor:
    """A non-contiguous upstream gradient of ``shape``: a transposed view (or a stride-2 slice
    of a vector)."""
    g = torch.Generator().manual_seed(5)
    if len(shape) == 1:
        return torch.randn(2 * shape[0], dtype=F64, generator=g)[::2]
    full = torch.randn(*shape[:-2], shape[-1], shape[-2], dtype=F64, generator=g)
    return full.transpose(-1, -2)


def _matrix(kind: str, batch: int | None, n: int = N) -> torch.Tensor:
    M = solve_matrix(n, kind, seed=1)
    # batch items share the pattern (torch's batched CSR needs equal nnz per item)
    return torch.stack([M * (1 + 0.5 * s) for s in range(batch)]) if batch else M


def _dense_solve(D, B, transpose=False):
    Dm = D.transpose(-1, -2) if transpose else D
    vec = B.dim() == D.dim() - 1
    X = torch.linalg.solve(Dm, B.unsqueeze(-1) if vec else B)
    return X.squeeze(-1) if vec else X


def _pinv_solve(M, R):
    return torch.linalg.pinv(M.to_dense()) @ R


def _exact_solve(M, R):
    return torch.linalg.solve(M.to_dense(), R)


# name -> (matrix kind, batched allowed, ours(A, B), dense reference(D, B))
OPS = {
    "sparse_mm": ("general", True, T.sparse_mm,
                  lambda D, B: (D @ (B.unsqueeze(-1) if B.dim() < D.dim() else B)).reshape(
                      D.shape[:-1] + B.shape[D.dim() - 1:])),
    "triangular lower": ("lower", True,
                         lambda A, B: T.sparse_triangular_solve(A, B, upper=False),
                         _dense_solve),
    "triangular upper transposed": (
        "upper", True, lambda A, B: T.sparse_triangular_solve(A, B, upper=True, transpose=True),
        lambda D, B: _dense_solve(D, B, transpose=True)),
    "triangular lower transposed": (
        "lower", True, lambda A, B: T.sparse_triangular_solve(A, B, upper=False, transpose=True),
        lambda D, B: _dense_solve(D, B, transpose=True)),
    "generic_solve": ("general", False,
                      lambda A, B: T.sparse_generic_solve(A, B, _exact_solve), _dense_solve),
    "generic_lstsq": ("general", False,
                      lambda A, B: T.sparse_generic_lstsq(A, B, _pinv_solve), _dense_solve),
    "solve_c4t spsolve": ("general", True, lambda A, B: T.sparse_solve_c4t(A, B),
                          _dense_solve),
}


def _check(op, layout, batch, form):
    kind, batched_ok, ours, ref = OPS[op]
    if batch is not None and not batched_ok:
        raise AssertionError(f"{op} takes a 2-D A only")
    D = _matrix(kind, batch)
    forms = _rhs_forms(batch, N)
    B0 = forms[form]
    A = to_sparse(D, layout).requires_grad_()
    # the leaf owns the storage; the operation sees the awkward view of it
    base = B0 if B0._base is None else B0._base
    B = base.clone().requires_grad_()
    B_in = B.as_strided(B0.shape, B0.stride(), B0.storage_offset())
    assert B_in.stride() == B0.stride()
    Y = ours(A, B_in)
    Dd = D.clone().requires_grad_()
    Bd = B_in.detach().clone().requires_grad_()
    Yd = ref(Dd, Bd)
    torch.testing.assert_close(Y, Yd)
    G = _strided_grad(tuple(Y.shape))
    Y.backward(G)
    Yd.backward(G.contiguous())
    grad_B = B.grad.as_strided(B0.shape, B0.stride(), B0.storage_offset())
    if B0._base is not None and 0 in B0.stride():  # an expansion: gradients of one element add
        torch.testing.assert_close(B.grad.sum(), Bd.grad.sum())
    else:
        torch.testing.assert_close(grad_B, Bd.grad)
    assert_sparse_grad(A.grad, A, Dd.grad)


UNBATCHED = list(_rhs_forms(None, N))
BATCHED = list(_rhs_forms(2, N))


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("form", UNBATCHED)
def test_unbatched_rhs_layouts(op, form, layout):
    _check(op, layout, None, form)


@pytest.mark.parametrize("op", [k for k, v in OPS.items() if v[1]])
@pytest.mark.parametrize("form", BATCHED)
def test_batched_rhs_layouts(op, form, layout):
    _check(op, layout, 2, form)


@pytest.mark.parametrize("form", ["transposed", "single column", "stride-0 expand"])
def test_solve_j4t_rhs_layouts(form, layout):
    pytest.importorskip("jax")
    D = _matrix("spd", None)
    B0 = _rhs_forms(None, N)[form]
    A = to_sparse(D, layout).requires_grad_()
    X = T.sparse_solve_j4t(A, B0, tol=1e-13, atol=0.0)
    torch.testing.assert_close(X, _dense_solve(D, B0), rtol=1e-8, atol=1e-9)
    X.backward(_strided_grad(tuple(X.shape)))
    Dd = D.clone().requires_grad_()
    _dense_solve(Dd, B0).backward(_strided_grad(tuple(X.shape)).contiguous())
    assert_sparse_grad(A.grad, A, Dd.grad, rtol=1e-7, atol=1e-8)


def test_sparse_mm_sum_backward_is_stride0(layout):
    # ``.sum()`` hands a stride-0 expansion of a scalar to the backward
    D = _matrix("general", 2)
    A = to_sparse(D, layout).requires_grad_()
    B = _rhs_forms(2, N)["transposed batch"].detach().requires_grad_()
    (T.sparse_mm(A, B) * _strided_grad((2, N, P))).sum().backward()
    Dd, Bd = D.clone().requires_grad_(), B.detach().clone().requires_grad_()
    (Dd @ Bd * _strided_grad((2, N, P))).sum().backward()
    assert_sparse_grad(A.grad, A, Dd.grad)
    torch.testing.assert_close(B.grad, Bd.grad)


@pytest.mark.parametrize("op", ["segment_mm", "gather_mm"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_indexed_mm_layouts(op, dtype):
    g = torch.Generator().manual_seed(2)
    a = torch.randn(4, 7, dtype=dtype, generator=g).t()  # (7, 4), transposed
    b = torch.randn(3, 5, 4, dtype=dtype, generator=g).transpose(1, 2)  # (3, 4, 5)
    b0 = torch.randn(1, 4, 5, dtype=dtype, generator=g).expand(3, 4, 5)  # stride-0 batch
    lens = torch.tensor([2, 0, 5])
    idx = torch.tensor([2, 0, 2, 1, 0, 2, 2])
    for bb in (b, b0):
        a_, b_ = a.detach().requires_grad_(), bb.detach().requires_grad_()
        if op == "segment_mm":
            out = T.segment_mm(a_, b_, lens)
            rows = torch.repeat_interleave(torch.arange(3), lens)
        else:
            out = T.gather_mm(a_, b_, idx)
            rows = idx
        ad, bd = a.detach().clone().requires_grad_(), bb.detach().clone().requires_grad_()
        ref = torch.bmm(ad[:, None], bd[rows])[:, 0]
        tol = {} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-5}
        torch.testing.assert_close(out, ref, **tol)
        Gs = torch.randn(5, 7, dtype=dtype, generator=g).t()
        out.backward(Gs)
        ref.backward(Gs.contiguous())
        torch.testing.assert_close(a_.grad, ad.grad, **tol)
        torch.testing.assert_close(b_.grad, bd.grad, **tol)


def test_logsumexp_strided_upstream_gradient(layout):
    D = _matrix("general", 2)
    A = to_sparse(D, layout).requires_grad_()
    out = T.sparse_logsumexp(A, dim=1)  # (2, N)
    G = _strided_grad((N, 2)).t()  # a (2, N) transposed view
    out.backward(G)
    Dd = D.clone().requires_grad_()
    torch.logsumexp(Dd, dim=1).backward(G.contiguous())
    assert_sparse_grad(A.grad, A, Dd.grad)
