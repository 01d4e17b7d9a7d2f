"""``kl_divergence`` between :class:`SparseMultivariateNormal` and ``MultivariateNormal``.

Registered with ``torch.distributions.register_kl`` (torch's own protocol for divergences) when
``torch_api.distributions`` is imported: SMVN -> SMVN, SMVN -> ``MultivariateNormal`` and the
reverse. With ``Sigma = C C^T`` (``C``: the colouring map of samples) and ``Sigma^{-1} = W^T W``
(``W``: the whitening map of densities), for ``p`` and ``q`` over ``n`` dimensions::

    KL(p || q) = 1/2 (||W_q C_p||_F^2 + |W_q (mu_q - mu_p)|^2 - n) + log|Sigma_q|/2 - log|Sigma_p|/2

Costs, ``nnz`` the stored entries of a sparse factor:

- log-determinants: O(nnz) from the stored diagonals (or ``D``); Mahalanobis term: one
  whitening, O(nnz_q);
- trace term ``||W_q C_p||_F^2``: ``W_q`` applied to every column of ``C_p``, in blocks of ``k``
  columns (one sparse product or triangular solve per factor and block, through the library's
  own ops): O(n (nnz_p + nnz_q)) time and O(k n) memory -- not O(nnz), since ``L_q^{-1} L_p``
  fills in; for a few thousand dimensions and more this term dominates. ``k`` keeps a block
  under about 2^22 numbers, so small problems take one dense-sized block. When ``p`` and ``q``
  share one factor tensor (and ``diagonal``, or both have none) the term is ``n`` exactly and
  costs nothing.

Gradients reach every parameter of both distributions (sparse gradients on the factors).
"""

from __future__ import annotations

import torch
from torch.distributions import MultivariateNormal, register_kl

from ._distributions import SparseMultivariateNormal

_BLOCK_NUMBERS = 2**22


def _kl(p, q, p_columns, q_whiten, hp, hq) -> torch.Tensor:
    """The formula above; ``p_columns(j0, j1)``: columns ``j0..j1-1`` of ``C_p`` as
    ``(k, *batch_p, n)``; ``q_whiten(v)``: ``W_q v`` for ``v (k, *batch, n)``."""
    for name, d in (("p", p), ("q", q)):
        matrix = getattr(d, "_matrix_name", None)
        if matrix is not None:
            raise NotImplementedError(
                f"kl_divergence: {name} is parameterised by a sparse {matrix}; the divergence "
                "needs a triangular factor (its trace term colours and whitens columns), which "
                "is not implemented for this parameterisation. Use scale_tril or "
                "precision_tril."
            )
    n = p.event_shape[0]
    if q.event_shape != p.event_shape:
        raise ValueError(
            f"q: expected the event shape {tuple(p.event_shape)} of p, got {tuple(q.event_shape)}."
        )
    batch = torch.broadcast_shapes(p.batch_shape, q.batch_shape)
    delta = (q.loc - p.loc).expand(batch + p.event_shape)
    maha = q_whiten(delta[None])[0].pow(2).sum(-1)
    if _shares_factor(p, q):
        trace = torch.full_like(maha, float(n))
    else:
        k = max(1, min(n, _BLOCK_NUMBERS // max(1, n * batch.numel())))
        trace = sum(
            q_whiten(_to_batch(p_columns(j, min(j + k, n)), batch)).pow(2).sum((0, -1))
            for j in range(0, n, k)
        )
    return 0.5 * (trace + maha - n) + hq - hp


def _to_batch(v: torch.Tensor, batch: torch.Size) -> torch.Tensor:
    """``(k, *b, n)`` broadcast to ``(k, *batch, n)``."""
    k, n = v.shape[0], v.shape[-1]
    lead = (1,) * (len(batch) + 2 - v.dim())
    return v.reshape(k, *lead, *v.shape[1:-1], n).expand(k, *batch, n)


def _shares_factor(p, q) -> bool:
    if not (isinstance(p, SparseMultivariateNormal) and isinstance(q, SparseMultivariateNormal)):
        return False
    if p._matrix_name is not None or q._matrix_name is not None:
        return False
    return p._factor is q._factor and p._is_scale == q._is_scale and p._diagonal is q._diagonal


def _sparse_columns(p: SparseMultivariateNormal):
    n = p.event_shape[0]

    def columns(j0: int, j1: int) -> torch.Tensor:
        k = j1 - j0
        eye = p.loc.new_zeros(k, n)
        eye[torch.arange(k), torch.arange(j0, j1)] = 1.0
        return p._color(eye.reshape(k, *(1,) * len(p.batch_shape), n).expand(k, *p.batch_shape, n))

    return columns


def _dense_columns(p: MultivariateNormal):
    L = p._unbroadcasted_scale_tril
    return lambda j0, j1: L[..., :, j0:j1].movedim(-1, 0)


def _dense_whiten(q: MultivariateNormal):
    L = q._unbroadcasted_scale_tril
    return lambda v: torch.linalg.solve_triangular(L, v.movedim(0, -1), upper=False).movedim(-1, 0)


def _dense_half_logdet(d: MultivariateNormal) -> torch.Tensor:
    return d._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)


@register_kl(SparseMultivariateNormal, SparseMultivariateNormal)
def _kl_sparse_sparse(p, q):
    return _kl(p, q, _sparse_columns(p), q._whiten, p._half_logdet(), q._half_logdet())


@register_kl(SparseMultivariateNormal, MultivariateNormal)
def _kl_sparse_dense(p, q):
    hq = _dense_half_logdet(q)
    return _kl(p, q, _sparse_columns(p), _dense_whiten(q), p._half_logdet(), hq)


@register_kl(MultivariateNormal, SparseMultivariateNormal)
def _kl_dense_sparse(p, q):
    hp = _dense_half_logdet(p)
    return _kl(p, q, _dense_columns(p), q._whiten, hp, q._half_logdet())
