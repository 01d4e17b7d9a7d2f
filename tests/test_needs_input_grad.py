"""Every differentiable torch_api operation over a registry: with a gradient asked for ``A`` only,
``B`` only, or neither, the result and the gradients match dense autograd, the input not asked
for gets no gradient, and an operation that takes a solver calls it no more than that path
needs (the backward skips the solve it does not need)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch

import torch_api as T
from tests.helpers import check_against_dense, random_dense, solve_matrix, to_sparse

N, P = 8, 3


class Op(NamedTuple):
    matrix: Callable[[], torch.Tensor]  # the dense A
    sparse: Callable[..., torch.Tensor]  # op(A, B, **solver kwargs)
    dense: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # the same op, dense
    solver: str | None = None  # the keyword taking a callable solver(A, B), if any
    calls: dict | None = None  # solver calls per path ("A", "B", "none")


def _tall() -> torch.Tensor:
    return torch.cat([solve_matrix(N, "general"), random_dense((4, N), seed=5)])


def _pinv_solve(A, B):
    return torch.linalg.pinv(A.to_dense()) @ B


OPS = {
    "sparse_mm": Op(lambda: random_dense((N, N), seed=3), T.sparse_mm, torch.matmul),
    "sparse_triangular_solve": Op(
        lambda: solve_matrix(N, "lower"),
        lambda A, B: T.sparse_triangular_solve(A, B, upper=False),
        lambda D, B: torch.linalg.solve_triangular(D, B, upper=False),
    ),
    "sparse_generic_solve": Op(
        lambda: solve_matrix(N, "general"), T.sparse_generic_solve, torch.linalg.solve,
        solver="solve", calls={"A": 2, "B": 2, "none": 1},
    ),
    "sparse_generic_lstsq": Op(
        _tall, T.sparse_generic_lstsq, lambda D, B: torch.linalg.lstsq(D, B).solution,
        solver="lstsq", calls={"A": 3, "B": 2, "none": 1},
    ),
}


@pytest.mark.parametrize("path", ["A", "B", "none"])
@pytest.mark.parametrize("name", OPS)
def test_gradients_follow_needs_input_grad(name, path, layout):
    op = OPS[name]
    D = op.matrix()
    A = to_sparse(D, layout).requires_grad_(path == "A")
    B = torch.randn(D.shape[0], P, generator=torch.Generator().manual_seed(1), dtype=D.dtype)
    B.requires_grad_(path == "B")
    calls = []

    def counting(M, R):
        calls.append(tuple(M.shape))
        return _pinv_solve(M, R)

    kwargs = {op.solver: counting} if op.solver else {}
    check_against_dense(lambda A_, B_: op.sparse(A_, B_, **kwargs), op.dense, A, B)
    if op.calls is not None:
        assert len(calls) == op.calls[path], calls
