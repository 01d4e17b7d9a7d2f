"""Every public torch_api operation under ``torch.compile`` (fullgraph=False), COO and CSR.

Each public operation breaks the graph around its call (our autograd Functions run eagerly);
the compiled module must give eager's values and gradients. The eager backend runs every case;
inductor (slow to compile on the CPU) a few.
"""

from __future__ import annotations

import pytest
import torch

import torch_api
from torch_api.distributions import SparseMultivariateNormal

D = torch.tensor(
    [[4.0, 0.0, 1.0, 0.0], [1.0, 5.0, 0.0, 0.0], [0.0, 1.0, 6.0, 1.0], [1.0, 0.0, 0.0, 3.0]],
    dtype=torch.float64,
)


def _sparse(M: torch.Tensor, layout) -> torch.Tensor:
    return (M.to_sparse_csr() if layout == torch.sparse_csr else M.to_sparse_coo()).requires_grad_()


def _dense_op(name: str):
    """(sparse matrix, dense operand) -> output, for each operation with a sparse argument."""
    return {
        "sparse_mm": torch_api.sparse_mm,
        "sparse_triangular_solve": lambda A, B: torch_api.sparse_triangular_solve(A, B, False),
        "sparse_generic_solve": torch_api.sparse_generic_solve,
        "sparse_generic_lstsq": torch_api.sparse_generic_lstsq,
        "sparse_logsumexp": lambda A, B: torch_api.sparse_logsumexp(A * 1.0, dim=1)[:, None] * B,
        "log_prob": lambda A, B: SparseMultivariateNormal(B[:, 0], scale_tril=A).log_prob(B[:, 1]),
    }[name]


def _matrix(name: str) -> torch.Tensor:
    if name in ("sparse_triangular_solve", "log_prob"):
        return D.tril()
    if name == "sparse_generic_solve":
        return D @ D.T  # SPD: the default solver is conjugate gradients
    return D


def _grads(fn, A, B):
    out = fn(A, B)
    out.sum().backward() if out.requires_grad else None
    return out.detach(), A.grad, B.grad


def _run(name, layout, backend):
    op = _dense_op(name)
    M = _matrix(name)
    B = torch.linspace(-1.0, 1.0, 8, dtype=torch.float64).reshape(4, 2)

    def model(A, B):
        return torch.sin(op(A, B)) + 1.0

    eager = _grads(model, _sparse(M, layout), B.clone().requires_grad_())
    compiled = torch.compile(model, backend=backend, fullgraph=False)
    got = _grads(compiled, _sparse(M, layout), B.clone().requires_grad_())
    torch.testing.assert_close(got[0], eager[0])
    assert got[1].layout == layout and got[1]._nnz() == eager[1]._nnz()
    torch.testing.assert_close(got[1].to_dense(), eager[1].to_dense())
    torch.testing.assert_close(got[2], eager[2])


NAMES = ["sparse_mm", "sparse_triangular_solve", "sparse_generic_solve", "sparse_generic_lstsq",
         "sparse_logsumexp", "log_prob"]


@pytest.mark.parametrize("name", NAMES)
def test_eager_backend(name, layout):
    torch._dynamo.reset()
    _run(name, layout, "eager")


def test_inductor_backend(layout):
    torch._dynamo.reset()
    _run("sparse_mm", layout, "inductor")


@pytest.mark.parametrize("backend", ["eager", "inductor"])
def test_indexed_mm(backend):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 3, generator=g, dtype=torch.float64)
    b = torch.randn(2, 3, 2, generator=g, dtype=torch.float64)
    seglen, idx = torch.tensor([4, 2]), torch.tensor([0, 1, 1, 0, 1, 0])

    def model(a, b):
        return (torch_api.segment_mm(a, b, seglen) * torch_api.gather_mm(a, b, idx)).tanh()

    results = []
    for fn in (model, torch.compile(model, backend=backend, fullgraph=False)):
        av, bv = a.clone().requires_grad_(), b.clone().requires_grad_()
        out = fn(av, bv)
        out.sum().backward()
        results.append((out.detach(), av.grad, bv.grad))
    for got, want in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got, want)
