"""The parameter side of :class:`~torch_api._distributions.SparseMultivariateNormal`.

Its parameter properties and constraints, the deferred check of the factor's structure, its
``repr``, and the pattern templates its factor's values live on (an LDL^T factor's strictly
lower part, a ``(1, n, n)`` factor repeated by ``expand``).
"""

from __future__ import annotations

import torch
from torch.distributions import constraints

from ._sparse_factor import SparseLowerTriangular
from ._validate import describe


class FactorParameters:
    """Parameters of a sparse Gaussian on ``_loc``, ``_factor``, ``_diagonal``, ``_is_scale``,
    ``_matrix_name``, ``_values`` and ``_factor_unchecked`` (see ``SparseMultivariateNormal``)."""

    @property
    def arg_constraints(self) -> dict:
        ldlt = self._diagonal is not None
        out = {"loc": constraints.real_vector}
        if ldlt:
            out["diagonal"] = constraints.independent(constraints.positive, 1)
        if getattr(self, "_matrix_name", None) is not None:
            return out  # symmetric / SPD: checked by the factorisation (ValueError)
        if not getattr(self, "_factor_unchecked", False):
            out[self._factor_name] = self._factor_constraint()
        return out

    @property
    def _factor_name(self) -> str:
        return "scale_tril" if self._is_scale else "precision_tril"

    def _factor_constraint(self) -> SparseLowerTriangular:
        return SparseLowerTriangular(positive_diagonal=self._diagonal is None)

    def _check_factor(self) -> None:
        """The deferred check of the factor's structure, once, at its first use."""
        if not self._factor_unchecked:
            return
        constraint = self._factor_constraint()
        if not bool(constraint.check(self._factor).all()):
            raise ValueError(
                f"{self._factor_name}: expected a factor satisfying {constraint!r} (checked at "
                f"first use under default validation), got {describe(self._factor)}; pass "
                "validate_args=False to use it anyway, validate_args=True to check at "
                "construction."
            )
        self._factor_unchecked = False

    @property
    def diagonal(self) -> torch.Tensor | None:
        return self._diagonal

    @property
    def scale_tril(self) -> torch.Tensor | None:
        if self._matrix_name is not None:
            return None
        return self._factor if self._is_scale else None

    @property
    def precision_tril(self) -> torch.Tensor | None:
        if self._matrix_name is not None:
            return None
        return None if self._is_scale else self._factor

    @property
    def precision_matrix(self) -> torch.Tensor | None:
        """The sparse precision matrix if given as ``precision_matrix=``, else None."""
        return self._factor if self._matrix_name == "precision_matrix" else None

    @property
    def covariance_matrix(self) -> torch.Tensor | None:
        """The sparse covariance matrix if given as ``covariance_matrix=``, else None."""
        return self._factor if self._matrix_name == "covariance_matrix" else None

    @property
    def is_ldlt_parameterization(self) -> bool:
        return self._diagonal is not None

    def __repr__(self) -> str:
        F = self._factor
        kind = "LDL^T" if self._diagonal is not None else "LL^T"
        what = "covariance" if self._is_scale else "precision"
        name = "scale_tril" if self._is_scale else "precision_tril"
        if self._matrix_name is not None:
            kind, name, what = "SPD", self._matrix_name, what + " matrix"
        nnz = self._values.shape[-1]
        parts = [
            f"loc: {tuple(self._loc.shape)}",
            f"{name}: {tuple(F.shape)} {str(F.layout).replace('torch.', '')} nnz={nnz}",
        ]
        if self._diagonal is not None:
            parts.append(f"diagonal: {tuple(self._diagonal.shape)}")
        parts += [
            f"{kind} {what}" if self._matrix_name else f"{kind} {what} factor",
            f"batch_shape={tuple(self.batch_shape)}",
            f"event_shape={tuple(self.event_shape)}",
            f"dtype={self._loc.dtype}",
        ]
        return f"{type(self).__name__}({', '.join(parts)})"


def strictly_lower(F: torch.Tensor, values: torch.Tensor):
    """``(F, values)`` if F stores no diagonal entry, else a coalesced COO template of F's
    off-diagonal entries and their values, gathered differentiably from ``values`` (the dropped
    entries get a zero gradient)."""
    idx = F._indices() if F.layout == torch.sparse_coo else F.to_sparse_coo()._indices()
    keep = idx[-2] != idx[-1]
    if bool(keep.all()):
        return F, values
    kept = torch.nonzero(keep).flatten()
    flat = values.reshape(-1).index_select(0, kept)
    template = torch.sparse_coo_tensor(idx[:, kept], flat.detach(), F.shape, is_coalesced=True)
    return template, flat


def repeat_factor(F: torch.Tensor, values: torch.Tensor, m: int):
    """A ``(1, n, n)`` factor as ``(m, n, n)``: the pattern template and the repeated values."""
    if F.layout == torch.sparse_coo:
        idx, nnz = F._indices(), F._nnz()
        b = torch.arange(m, device=idx.device).repeat_interleave(nnz)
        idx = torch.cat([b[None], idx[1:].repeat(1, m)])
        template = torch.sparse_coo_tensor(
            idx, F._values().detach().repeat(m), (m, *F.shape[1:]), is_coalesced=True
        )
        return template, values.repeat(m)
    crow, col = F.crow_indices().repeat(m, 1), F.col_indices().repeat(m, 1)
    template = torch.sparse_csr_tensor(
        crow, col, F.values().detach().repeat(m, 1), (m, *F.shape[1:])
    )
    return template, values.repeat(m, 1)
