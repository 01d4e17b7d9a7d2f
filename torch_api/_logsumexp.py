"""``sparse_logsumexp`` and ``sparse_bidir_logsumexp``: log-sum-exp over a sparse tensor's entries.

The result equals ``torch.logsumexp`` of the densified tensor, where the implicit entries are
either counted as values 0 (``include_zeros=True``: a slot with ``z`` implicit entries adds
``z * exp(0)`` to its sum) or ignored (``include_zeros=False``: a slot without stored entries
gives ``-inf``). Every stored entry belongs to one output *slot* (its coordinates without the
reduced dimensions). With the slot's maximum ``s`` (over its stored values, and 0 when it has
implicit zeros that count), computed with one scatter:

    out = s + log(sum_j exp(v_j - s) + z * exp(-s))

so no exponential overflows, in O(nnz + number of slots) and never densified. The derivative
with respect to a stored value is the softmax of its slot, ``d out / d v_j = exp(v_j - out)``;
the gradient of ``input`` is a sparse tensor with ``input``'s layout, indices and nnz.

COO and CSR inputs (2-D or batched) go through :class:`torch_api._pattern.Pattern`; a CSC matrix
is the CSR matrix of its transpose (the same index arrays), read with the two axes swapped. The
sums are plain differentiable torch ops on A's values (:func:`torch_api._sddmm.to_values`), so
``create_graph=True``, ``gradgradcheck`` and forward mode in the values work to any order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ._pattern import Pattern
from ._pattern_cache import operation
from ._sddmm import sparse_scope, to_values
from ._validate import check_sparse, type_error, value_error

__all__ = ["sparse_logsumexp", "sparse_bidir_logsumexp"]

_LAYOUTS = (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc)
_OUTPUT_LAYOUTS = ("tuple", "padded", "nested")


def _coords(pattern: Pattern) -> list[torch.Tensor]:
    """The coordinates ``coords[d] (nnz,)`` of the stored entries, in the caller's dimensions."""
    if pattern.layout == torch.sparse_coo:
        return list(pattern.source[0].long().unbind(0))
    n, m = pattern.shape[-2:]
    rows, cols = pattern.rows().long(), pattern.col.long()
    if len(pattern.shape) == 3:
        batch = rows // n
        coords = [batch, rows - batch * n, cols - batch * m]
    else:
        coords = [rows, cols]
    if pattern.layout == torch.sparse_csc:  # the pattern is that of A^T
        coords[-2], coords[-1] = coords[-1], coords[-2]
    return coords


def _slots(coords, shape, dims: tuple[int, ...]) -> tuple[torch.Tensor, tuple[int, ...], int]:
    """Slot of every entry when reducing ``dims``, the output shape and the slot size."""
    kept = [d for d in range(len(shape)) if d not in dims]
    seg = torch.zeros_like(coords[0])
    for d in kept:
        seg = seg * shape[d] + coords[d]
    full = 1
    for d in dims:
        full *= shape[d]
    return seg, tuple(shape[d] for d in kept), full


def _segment_lse(values, seg, n_slots: int, full: int, include_zeros: bool) -> torch.Tensor:
    """Stable log-sum-exp of ``values`` per slot ``seg``; ``full`` entries per slot when dense.

    The shift is a constant (detached): the result does not depend on it, so plain autograd of
    these dense ops differentiates the log-sum-exp to any order."""
    with torch.no_grad():
        shift = values.new_full((n_slots,), float("-inf"))
        shift.scatter_reduce_(0, seg, values, reduce="amax", include_self=True)
        stored = torch.bincount(seg, minlength=n_slots)
        zeros = full - stored if include_zeros else None
        if zeros is not None:
            shift = torch.where(zeros > 0, shift.clamp_min(0), shift)
        empty = stored == 0 if zeros is None else (stored == 0) & (zeros == 0)
        shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    total = values.new_zeros(n_slots).index_add(0, seg, torch.exp(values - shift[seg]))
    if zeros is not None:
        total = total + zeros.to(values.dtype) * torch.exp(-shift)
    # an empty slot is -inf; its log is taken of 1 so that no 0 * inf reaches the gradient
    out = torch.log(torch.where(empty, torch.ones_like(total), total)) + shift
    return out.masked_fill(empty, float("-inf"))


def _logsumexp(A: torch.Tensor, reductions: tuple, include_zeros: bool) -> list[torch.Tensor]:
    """One log-sum-exp output per entry of ``reductions`` (tuples of reduced dimensions)."""
    with sparse_scope():
        pattern, values = Pattern.of(A)
        coords = _coords(pattern)
    v = to_values(A, pattern, values)
    outs = []
    for dims in reductions:
        seg, shape, full = _slots(coords, tuple(A.shape), dims)
        n_slots = 1
        for s in shape:
            n_slots *= s
        outs.append(_segment_lse(v, seg, n_slots, full, include_zeros).reshape(shape))
    return outs


# ------------------------------------------------------------------------------ wrappers
def _check_input(input: object) -> torch.Tensor:
    A = check_sparse("input", input, layouts=_LAYOUTS)
    if A.layout == torch.sparse_csc and A.dense_dim() != 0:
        raise type_error("input", A, "a CSC tensor without dense (hybrid) dimensions")
    return A


def _normalise_dims(dim: object, ndim: int) -> tuple[int, ...]:
    dims = [dim] if isinstance(dim, int) else dim
    if not isinstance(dims, Sequence) or isinstance(dims, str) or len(dims) == 0:
        raise TypeError(f"dim: expected an int or a non-empty sequence of ints, got {dim!r}.")
    out = []
    for d in dims:
        if not isinstance(d, int) or isinstance(d, bool):
            raise TypeError(f"dim: expected an int or a non-empty sequence of ints, got {dim!r}.")
        if not -ndim <= d < ndim:
            raise value_error("dim", f"{dim!r}", f"dimensions in [{-ndim}, {ndim - 1}]")
        out.append(d % ndim)
    if len(set(out)) != len(out):
        raise value_error("dim", f"{dim!r}", "each dimension at most once")
    return tuple(sorted(out))


@operation
def sparse_logsumexp(
    input: torch.Tensor,
    dim: int | Sequence[int],
    keepdim: bool = False,
    include_zeros: bool = True,
) -> torch.Tensor:
    """``torch.logsumexp`` over a sparse tensor, without densifying it.

    Args:
        input: sparse COO, CSR or CSC, ``(n, m)`` or batched ``(b, n, m)``, float32/float64.
        dim: the dimension(s) to reduce (any of the tensor's, as in ``torch.logsumexp``).
        keepdim: keep the reduced dimensions with size 1.
        include_zeros: count the implicit entries as values 0, matching ``torch.logsumexp`` of
            ``input.to_dense()``; if False only stored values count (a slot without any gives
            ``-inf``).

    Returns:
        Dense tensor of ``input``'s shape without ``dim``. Differentiable: ``input.grad`` has
        ``input``'s layout, indices and nnz (the softmax of each slot at the stored entries).

    Example:
        >>> A = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).to_sparse_csr()
        >>> sparse_logsumexp(A, dim=1, include_zeros=False)
        tensor([1., 2.])
    """
    A = _check_input(input)
    dims = _normalise_dims(dim, A.dim())
    (out,) = _logsumexp(A, (dims,), bool(include_zeros))
    if keepdim:
        for d in dims:
            out = out.unsqueeze(d)
    return out


@operation
def sparse_bidir_logsumexp(
    input: torch.Tensor,
    keepdim: bool = False,
    include_zeros: bool = True,
    output_layout: str = "tuple",
):
    """Column- and row-wise ``logsumexp`` of a sparse matrix at once (one pass over its entries).

    The two results are ``cols = logsumexp over dim -2`` (one value per column, ``(.., m)``) and
    ``rows = logsumexp over dim -1`` (one value per row, ``(.., n)``), in that order, as in
    torchsparsegradutils: for a 2-D input, result ``k`` is ``sparse_logsumexp(input, dim=k)``.

    Args:
        input: sparse COO, CSR or CSC, ``(n, m)`` or batched ``(b, n, m)`` (batches reduced
            independently), float32/float64.
        keepdim: keep the reduced dimension: ``cols (.., 1, m)``, ``rows (.., n, 1)``
            (``"tuple"`` only).
        include_zeros: as in :func:`sparse_logsumexp`.
        output_layout: ``"tuple"``: ``(cols, rows)``. ``"padded"``: one tensor ``(2, G)`` or
            ``(2, b, G)`` with ``G = max(n, m)``, ``[0]`` = cols and ``[1]`` = rows, each padded
            at the end with ``-inf``. ``"nested"``: a jagged nested tensor of the two,
            ``torch.nested.as_nested_tensor([cols, rows], layout=torch.jagged)``
            (read it with ``.unbind()``).

    Returns:
        As chosen by ``output_layout``; differentiable like :func:`sparse_logsumexp`.

    Example:
        >>> A = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).to_sparse()
        >>> cols, rows = sparse_bidir_logsumexp(A, include_zeros=False)
    """
    A = _check_input(input)
    if output_layout not in _OUTPUT_LAYOUTS:
        raise value_error("output_layout", f"{output_layout!r}", f"one of {_OUTPUT_LAYOUTS}")
    if keepdim and output_layout != "tuple":
        raise value_error(
            "keepdim", f"keepdim=True with output_layout={output_layout!r}",
            "keepdim=True only with output_layout='tuple'",
        )
    nd = A.dim()
    cols, rows = _logsumexp(A, ((nd - 2,), (nd - 1,)), bool(include_zeros))
    if output_layout == "tuple":
        if keepdim:
            cols, rows = cols.unsqueeze(-2), rows.unsqueeze(-1)
        return cols, rows
    if output_layout == "nested":
        return torch.nested.as_nested_tensor([cols, rows], layout=torch.jagged)
    width = max(A.shape[-2:])
    pad = lambda x: F.pad(x, (0, width - x.shape[-1]), value=float("-inf"))
    return torch.stack([pad(cols), pad(rows)])
