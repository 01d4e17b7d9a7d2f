"""SparseMultivariateNormal's Distribution protocol: expand, repr, unsupported methods, input."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import assert_sparse_grad
from tests.torch_api import mvn_cases as mvn
from torch_api.distributions import SparseMultivariateNormal, SparseMultivariateNormalNative

TOL = {"rtol": 1e-9, "atol": 1e-10}


@pytest.mark.parametrize("param", mvn.PARAMS)
@pytest.mark.parametrize(
    "batch, new", [(None, (3,)), (None, (2, 3)), (3, (3,)), (3, (2, 3))], ids=str
)
def test_expand_matches_dense_and_shares_the_factor(param, layout, batch, new):
    loc, D, L = mvn.make_case(param, layout, batch)
    Ls = mvn.sparsify(L, layout)
    dist = mvn.sparse_dist(param, loc, D, Ls).expand(new)
    ref = mvn.dense_reference(param, loc, D, L).expand(new)
    assert isinstance(dist, SparseMultivariateNormal)
    assert dist.batch_shape == ref.batch_shape and dist.event_shape == ref.event_shape
    assert (dist.scale_tril if param.startswith("scale") else dist.precision_tril) is Ls
    x = torch.randn(4, *new, loc.shape[-1], dtype=torch.float64)
    torch.testing.assert_close(dist.log_prob(x), ref.log_prob(x), **TOL)
    torch.testing.assert_close(dist.entropy(), ref.entropy(), **TOL)
    torch.testing.assert_close(dist.mean, ref.mean, **TOL)
    if param.startswith("scale"):
        torch.testing.assert_close(dist.variance, ref.variance, **TOL)
    assert dist.rsample((5,)).shape == (5, *new, loc.shape[-1])


@pytest.mark.parametrize("param", ["scale_llt", "precision_ldlt"])
def test_expand_repeats_a_single_item_factor_and_sums_its_gradient(param, layout):
    loc, D, L = mvn.make_case(param, layout, 1)
    Ls = mvn.sparsify(L, layout).requires_grad_()
    dist = mvn.sparse_dist(param, loc, D, Ls).expand((4,))
    assert dist.batch_shape == (4,)
    x = torch.randn(4, loc.shape[-1], dtype=torch.float64)
    Ld = L.clone().requires_grad_()
    ref = mvn.dense_reference(param, loc, D, Ld).expand((4,))
    got, expected = dist.log_prob(x), ref.log_prob(x)
    torch.testing.assert_close(got, expected, **TOL)
    got.sum().backward()
    expected.sum().backward()
    assert_sparse_grad(Ls.grad, Ls, Ld.grad, **TOL)


def test_expand_keeps_validation_and_refuses_shapes_it_cannot_broadcast_to(layout):
    loc, D, L = mvn.make_case("scale_llt", layout, 3)
    dist = mvn.sparse_dist("scale_llt", loc, D, mvn.sparsify(L, layout), validate_args=True)
    wide = dist.expand((2, 3))
    with pytest.raises(ValueError):
        wide.log_prob(torch.full((2, 3, 7), float("nan"), dtype=torch.float64))
    for bad in ((4,), (3, 2), ()):
        with pytest.raises(ValueError, match=r"batch_shape: expected a shape that the batch "):
            dist.expand(bad)


def test_gradients_flow_through_an_expanded_distribution(layout):
    loc, D, L = mvn.make_case("scale_ldlt", layout, None)
    leaves = [t.clone().requires_grad_() for t in (loc, D)]
    Ls = mvn.sparsify(L, layout).requires_grad_()
    x = torch.randn(2, 3, 7, dtype=torch.float64)
    mvn.sparse_dist("scale_ldlt", *leaves, Ls).expand((2, 3)).log_prob(x).sum().backward()
    dense = [t.clone().requires_grad_() for t in (loc, D, L)]
    mvn.dense_reference("scale_ldlt", *dense).expand((2, 3)).log_prob(x).sum().backward()
    for got, ref in zip(leaves, dense[:2], strict=True):
        torch.testing.assert_close(got.grad, ref.grad, **TOL)
    assert_sparse_grad(Ls.grad, Ls, dense[2].grad, **TOL)


@pytest.mark.parametrize("param", mvn.PARAMS)
def test_repr_shows_the_parameters(param, layout):
    loc, D, L = mvn.make_case(param, layout, 3)
    Ls = mvn.sparsify(L, layout)
    text = repr(mvn.sparse_dist(param, loc, D, Ls))
    name = "scale_tril" if param.startswith("scale") else "precision_tril"
    kind = "LDL^T" if D is not None else "LL^T"
    what = "covariance" if param.startswith("scale") else "precision"
    layout_name = str(layout).replace("torch.", "")
    assert text.startswith("SparseMultivariateNormal(loc: (3, 7), ")
    assert f"{name}: (3, 7, 7) {layout_name} nnz={Ls.values().shape[-1]}" in text
    assert f"{kind} {what} factor" in text and "batch_shape=(3,)" in text
    assert ("diagonal: (3, 7)" in text) == (D is not None)


@pytest.mark.parametrize("method", ["cdf", "icdf", "enumerate_support"])
def test_unsupported_methods_say_why(method, layout):
    loc, D, L = mvn.make_case("scale_llt", layout, None)
    L_csr = L.to_sparse_csr()
    for dist in (
        mvn.sparse_dist("scale_llt", loc, D, mvn.sparsify(L, layout)),
        SparseMultivariateNormalNative(loc, L_csr),
    ):
        args = () if method == "enumerate_support" else (loc,)
        with pytest.raises(NotImplementedError, match=rf"^{method}: .{{40,}}"):
            getattr(dist, method)(*args)


def test_native_expand_and_repr():
    loc, _, L = mvn.make_case("scale_llt", torch.sparse_csr, None)
    Ls = L.to_sparse_csr()
    dist = SparseMultivariateNormalNative(loc, Ls).expand((2, 3))
    ref = mvn.dense_reference("scale_llt", loc, None, L).expand((2, 3))
    assert dist.batch_shape == (2, 3) and dist.scale_tril is Ls
    torch.testing.assert_close(dist.mean, ref.mean, **TOL)
    torch.testing.assert_close(dist.variance, ref.variance, **TOL)
    torch.testing.assert_close(dist.entropy(), ref.entropy(), **TOL)
    assert dist.rsample((4,)).shape == (4, 2, 3, 7)
    assert f"scale_tril: (7, 7) sparse_csr nnz={Ls._nnz()}" in repr(dist)
    assert "batch_shape=(2, 3)" in repr(dist)


def _unsorted_csr(requires_grad):
    crow = torch.tensor([0, 1, 3, 6])
    col = torch.tensor([0, 1, 0, 2, 0, 1])  # rows 1 and 2 are not in column order
    values = torch.tensor([1.0, 2.0, 0.5, 3.0, 0.2, 0.3], dtype=torch.float64,
                          requires_grad=requires_grad)
    return torch.sparse_csr_tensor(crow, col, values, (3, 3)), values


@pytest.mark.parametrize("name", ["scale_tril", "precision_tril"])
def test_unsorted_csr_factor_that_requires_grad_is_refused(name):
    L, _ = _unsorted_csr(True)
    with pytest.raises(ValueError, match=rf"^{name}: expected CSR column indices sorted"):
        SparseMultivariateNormal(torch.zeros(3, dtype=torch.float64), **{name: L})
    # the recipe the message gives: gradients then reach the original values in their order
    L, values = _unsorted_csr(True)
    rows = torch.tensor([0, 1, 1, 2, 2, 2])
    perm = torch.argsort(rows * 3 + L.col_indices())
    fixed = torch.sparse_csr_tensor(L.crow_indices(), L.col_indices()[perm], values[perm], L.shape)
    dist = SparseMultivariateNormal(torch.zeros(3, dtype=torch.float64), **{name: fixed})
    Ld = L.detach().to_dense().requires_grad_()
    kw = {"scale_tril": Ld} if name == "scale_tril" else {"precision_matrix": Ld @ Ld.T}
    ref = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=torch.float64), **kw)
    x = torch.tensor([0.3, 0.1, -0.2], dtype=torch.float64)
    dist.log_prob(x).backward()
    ref.log_prob(x).backward()
    torch.testing.assert_close(values.grad, Ld.grad[rows, L.col_indices()], **TOL)


def test_unsorted_csr_factor_without_grad_samples_correctly():
    L, _ = _unsorted_csr(False)
    dist = SparseMultivariateNormal(torch.zeros(3, dtype=torch.float64), precision_tril=L)
    ref = torch.distributions.MultivariateNormal(
        torch.zeros(3, dtype=torch.float64), precision_matrix=L.to_dense() @ L.to_dense().T
    )
    x = torch.randn(4, 3, dtype=torch.float64)
    torch.testing.assert_close(dist.log_prob(x), ref.log_prob(x), **TOL)
