"""kl_divergence of SparseMultivariateNormal against torch's dense MultivariateNormal KL."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

import torch_api._kl as kl_module
from tests.helpers import assert_sparse_grad
from tests.torch_api import mvn_cases as mvn

TOL = {"rtol": 1e-9, "atol": 1e-9}


def pair(pp, qp, layout, batch_p, batch_q, n=6):
    p_case, q_case = (
        mvn.make_case(pp, layout, batch_p, n=n, seed=3),
        mvn.make_case(qp, layout, batch_q, n=n, seed=4),
    )
    return p_case, q_case


@pytest.mark.parametrize("qp", mvn.PARAMS)
@pytest.mark.parametrize("pp", mvn.PARAMS)
def test_sparse_sparse_and_mixed_match_dense(pp, qp, layout):
    (lp, Dp, Lp), (lq, Dq, Lq) = pair(pp, qp, layout, None, None)
    p = mvn.sparse_dist(pp, lp, Dp, mvn.sparsify(Lp, layout))
    q = mvn.sparse_dist(qp, lq, Dq, mvn.sparsify(Lq, layout))
    p_ref, q_ref = mvn.dense_reference(pp, lp, Dp, Lp), mvn.dense_reference(qp, lq, Dq, Lq)
    expected = kl_divergence(p_ref, q_ref)
    torch.testing.assert_close(kl_divergence(p, q), expected, **TOL)
    torch.testing.assert_close(kl_divergence(p, q_ref), expected, **TOL)
    torch.testing.assert_close(kl_divergence(p_ref, q), expected, **TOL)
    torch.testing.assert_close(kl_divergence(p, p), torch.zeros((), dtype=torch.float64), **TOL)


@pytest.mark.parametrize(
    "batch_p, batch_q", [(3, 3), (None, 3), (3, None)], ids=["both", "q_only", "p_only"]
)
def test_batched_and_broadcast_batches(layout, batch_p, batch_q):
    (lp, Dp, Lp), (lq, Dq, Lq) = pair("scale_ldlt", "precision_llt", layout, batch_p, batch_q)
    p = mvn.sparse_dist("scale_ldlt", lp, Dp, mvn.sparsify(Lp, layout))
    q = mvn.sparse_dist("precision_llt", lq, Dq, mvn.sparsify(Lq, layout))
    p_ref = mvn.dense_reference("scale_ldlt", lp, Dp, Lp)
    q_ref = mvn.dense_reference("precision_llt", lq, Dq, Lq)
    expected = kl_divergence(p_ref, q_ref)
    assert expected.shape == (3,)
    for got in (kl_divergence(p, q), kl_divergence(p, q_ref), kl_divergence(p_ref, q)):
        torch.testing.assert_close(got, expected, **TOL)


def test_blocks_of_columns_give_the_same_value(monkeypatch, layout):
    (lp, Dp, Lp), (lq, Dq, Lq) = pair("precision_ldlt", "scale_llt", layout, 2, 2, n=7)
    p = mvn.sparse_dist("precision_ldlt", lp, Dp, mvn.sparsify(Lp, layout))
    q = mvn.sparse_dist("scale_llt", lq, Dq, mvn.sparsify(Lq, layout))
    whole = kl_divergence(p, q)
    expected = kl_divergence(mvn.dense_reference("precision_ldlt", lp, Dp, Lp),
                             mvn.dense_reference("scale_llt", lq, Dq, Lq))
    torch.testing.assert_close(whole, expected, **TOL)
    calls = []
    color = p._color
    p._color = lambda eps: calls.append(eps.shape[0]) or color(eps)  # count the blocks
    # n * batch = 14 numbers per column: blocks of 1 column, and of 3 columns (7 = 3 + 3 + 1)
    for numbers, widths in ((1, [1] * 7), (3 * 14, [3, 3, 1])):
        calls.clear()
        monkeypatch.setattr(kl_module, "_BLOCK_NUMBERS", numbers)
        torch.testing.assert_close(kl_divergence(p, q), expected, **TOL)
        assert calls == widths


@pytest.mark.parametrize("qp", ["scale_ldlt", "precision_llt"])
@pytest.mark.parametrize("pp", ["scale_llt", "precision_ldlt"])
def test_gradcheck_sparse_sparse(pp, qp):
    (lp, Dp, Lp), (lq, Dq, Lq) = pair(pp, qp, torch.sparse_csr, None, None, n=4)
    Sp, Sq = Lp.to_sparse_csr(), Lq.to_sparse_csr()

    def f(lp, vp, lq, vq, *diagonals):
        Dp_, Dq_ = (
            (diagonals[0] if Dp is not None else None),
            (diagonals[-1] if Dq is not None else None),
        )
        Ap = torch.sparse_csr_tensor(Sp.crow_indices(), Sp.col_indices(), vp, Sp.shape)
        Aq = torch.sparse_csr_tensor(Sq.crow_indices(), Sq.col_indices(), vq, Sq.shape)
        return kl_divergence(mvn.sparse_dist(pp, lp, Dp_, Ap), mvn.sparse_dist(qp, lq, Dq_, Aq))

    args = [lp, Sp.values(), lq, Sq.values()] + [D for D in (Dp, Dq) if D is not None]
    args = [a.clone().requires_grad_() for a in args]
    assert torch.autograd.gradcheck(f, args)


@pytest.mark.parametrize("direction", ["sparse_sparse", "sparse_dense", "dense_sparse"])
def test_gradients_match_dense_reference(direction, layout):
    (lp, Dp, Lp), (lq, Dq, Lq) = pair("scale_ldlt", "precision_ldlt", layout, 2, 2)
    leaves = [t.clone().requires_grad_() for t in (lp, Dp, Lp, lq, Dq, Lq)]
    p_ref = mvn.dense_reference("scale_ldlt", *leaves[:3])
    q_ref = mvn.dense_reference("precision_ldlt", *leaves[3:])
    kl_divergence(p_ref, q_ref).sum().backward()
    expected = [t.grad for t in leaves]

    sparse = [t.clone().requires_grad_() for t in (lp, Dp, lq, Dq)]
    Sp, Sq = mvn.sparsify(Lp, layout).requires_grad_(), mvn.sparsify(Lq, layout).requires_grad_()
    p = mvn.sparse_dist("scale_ldlt", sparse[0], sparse[1], Sp)
    q = mvn.sparse_dist("precision_ldlt", sparse[2], sparse[3], Sq)
    if direction == "sparse_dense":
        q = mvn.dense_reference("precision_ldlt", sparse[2], sparse[3], Lq)
    if direction == "dense_sparse":
        p = mvn.dense_reference("scale_ldlt", sparse[0], sparse[1], Lp)
    kl_divergence(p, q).sum().backward()
    for got, ref in zip(sparse, expected[:2] + expected[3:5], strict=True):
        torch.testing.assert_close(got.grad, ref, **TOL)
    if direction != "dense_sparse":
        assert_sparse_grad(Sp.grad, Sp, expected[2], **TOL)
    if direction != "sparse_dense":
        assert_sparse_grad(Sq.grad, Sq, expected[5], **TOL)


def test_shared_factor_skips_the_trace_term_and_stays_exact(layout):
    loc, D, L = mvn.make_case("precision_llt", layout, None)
    S = mvn.sparsify(L, layout).requires_grad_()
    m2 = torch.randn_like(loc)
    p, q = mvn.sparse_dist("precision_llt", loc, D, S), mvn.sparse_dist("precision_llt", m2, D, S)
    got = kl_divergence(p, q)
    Ld = L.clone().requires_grad_()
    ref = kl_divergence(mvn.dense_reference("precision_llt", loc, D, Ld),
                        mvn.dense_reference("precision_llt", m2, D, Ld))
    torch.testing.assert_close(got, ref, **TOL)
    got.backward()
    ref.backward()
    assert_sparse_grad(S.grad, S, Ld.grad, **TOL)


def test_event_shapes_must_match(layout):
    lp, _, Lp = mvn.make_case("scale_llt", layout, None, n=5)
    lq, _, Lq = mvn.make_case("scale_llt", layout, None, n=4)
    p = mvn.sparse_dist("scale_llt", lp, None, mvn.sparsify(Lp, layout))
    with pytest.raises(ValueError, match=r"q: expected the event shape \(5,\) of p, got \(4,\)"):
        kl_divergence(p, mvn.sparse_dist("scale_llt", lq, None, mvn.sparsify(Lq, layout)))
    with pytest.raises(ValueError, match="q: expected the event shape"):
        kl_divergence(p, MultivariateNormal(lq, scale_tril=Lq))
