"""Batched CSR gradients that add up correctly (torch 2.13 adds two batched CSR tensors wrongly).

Adding two ``(b, n, m)`` CSR tensors in torch 2.13 (``+``, ``add_``, ``torch.add``) returns a
malformed tensor (values of the wrong shape) unless both operands are the same object. Autograd
adds gradients exactly this way: ``AccumulateGrad`` (``grad += new`` for a leaf that already has
a gradient: two backward passes, ``retain_graph``) and the engine's input buffers (``old + new``
when one tensor feeds several uses in one graph); ``torch.optim.SGD`` then updates the parameter
with ``param.add_(grad, alpha=-lr)`` (or ``torch._foreach_add_``). Autograd accepts only a CSR,
a COO or a dense gradient for a CSR input, and none of them adds correctly to a batched CSR.

So a batched CSR gradient is returned as a :class:`BatchedCSRGrad`: a CSR tensor (same layout,
shape, indices and values; ``isinstance(g, torch.Tensor)``) whose ``__torch_dispatch__`` runs
every operation as torch would, except the additions, which it computes on the values when the
two patterns agree (the same indices: the common case, one pattern per parameter) and through a
coalesced COO sum otherwise. Because dispatch sees the operation whichever side the gradient is
on, ``param.add_(grad)`` on a plain batched CSR parameter is correct too. The class changes no
global state: only tensors of this type take the corrected path.
"""

from __future__ import annotations

import torch
from torch.utils._pytree import tree_map

_aten = torch.ops.aten
_ADD = {_aten.add.Tensor: False, _aten.add_.Tensor: True}
_FOREACH_ADD = {_aten._foreach_add.List: False, _aten._foreach_add_.List: True}
_KEEP_TYPE = (_aten.clone.default, _aten.detach.default, _aten.alias.default)


def _batched_csr(x: object) -> bool:
    return isinstance(x, torch.Tensor) and x.layout == torch.sparse_csr and x.dim() == 3


def _plain(x: object) -> object:
    return x._plain if isinstance(x, BatchedCSRGrad) else x


def _same_indices(a: torch.Tensor, b: torch.Tensor) -> bool:
    pairs = ((a.crow_indices(), b.crow_indices()), (a.col_indices(), b.col_indices()))
    return all(
        x.shape == y.shape and (x.data_ptr() == y.data_ptr() or torch.equal(x, y.to(x.dtype)))
        for x, y in pairs
    )


def _add(a: torch.Tensor, b: torch.Tensor, alpha, inplace: bool) -> torch.Tensor:
    """``a + alpha * b`` (in place into ``a`` if ``inplace``) for batched CSR ``a`` and ``b``."""
    pa, pb = _plain(a), _plain(b)
    if pa.shape != pb.shape:
        raise ValueError(
            f"other: expected a sparse CSR tensor of shape {tuple(pa.shape)}, got shape "
            f"{tuple(pb.shape)}."
        )
    same = _same_indices(pa, pb)
    if inplace:
        if not same:
            raise ValueError(
                "other: expected the same sparsity pattern for an in-place addition of batched "
                "CSR tensors, got a different one; add out of place instead."
            )
        pa.values().add_(pb.values(), alpha=alpha)
        return a
    if same:
        values = torch.add(pa.values(), pb.values(), alpha=alpha)
        out = torch.sparse_csr_tensor(pa.crow_indices(), pa.col_indices(), values, pa.shape)
    else:
        out = _coo_to_batched_csr((pa.to_sparse_coo() + pb.to_sparse_coo() * alpha).coalesce())
    return BatchedCSRGrad(out)


def _coo_to_batched_csr(coo: torch.Tensor) -> torch.Tensor:
    """A coalesced ``(b, n, m)`` COO tensor as batched CSR (torch converts 2-D COO only)."""
    b, n, m = coo.shape
    idx, values = coo.indices(), coo.values()
    counts = torch.bincount(idx[0], minlength=b)
    if b and bool((counts != counts[0]).any()):
        raise ValueError(
            f"other: expected a sum with the same number of entries in every batch (a batched "
            f"CSR tensor), got {counts.tolist()}."
        )
    k = idx.shape[1] // b if b else 0
    crow = torch._convert_indices_from_coo_to_csr(idx[0] * n + idx[1], b * n)
    batch = torch.arange(b, device=crow.device)[:, None]
    crow = crow[batch * n + torch.arange(n + 1, device=crow.device)] - batch * k
    return torch.sparse_csr_tensor(crow, idx[2].reshape(b, k), values.reshape(b, k), (b, n, m))


class BatchedCSRGrad(torch.Tensor):
    """A batched ``(b, n, m)`` CSR tensor whose additions are correct (module docstring).

    Example:
        >>> g = BatchedCSRGrad(torch.ones(2, 2, 2).to_sparse_csr())
        >>> (g + g.clone()).values()
        tensor([[2., 2., 2., 2.],
                [2., 2., 2., 2.]])
    """

    _plain: torch.Tensor

    @staticmethod
    def __new__(cls, plain: torch.Tensor) -> BatchedCSRGrad:
        self = torch.Tensor._make_subclass(cls, _plain(plain))
        self._plain = _plain(plain)  # the same tensor without the Python dispatch key
        return self

    __torch_function__ = torch._C._disabled_torch_function_impl

    def __repr__(self) -> str:
        return repr(self._plain)

    def __reduce_ex__(self, protocol):
        return (BatchedCSRGrad, (self._plain,))

    def __deepcopy__(self, memo):
        return BatchedCSRGrad(self._plain.clone())

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        alpha = kwargs.get("alpha", 1)
        if func in _ADD and _batched_csr(args[0]) and _batched_csr(args[1]):
            return _add(args[0], args[1], alpha, _ADD[func])
        if func in _FOREACH_ADD and all(map(_batched_csr, (*args[0], *args[1]))):
            out = [_add(a, b, alpha, _FOREACH_ADD[func]) for a, b in zip(*args[:2], strict=True)]
            return None if _FOREACH_ADD[func] else out
        out = func(*tree_map(_plain, args), **tree_map(_plain, kwargs))
        if func in _KEEP_TYPE:
            return BatchedCSRGrad(out)
        if func._schema.is_mutable and isinstance(args[0], BatchedCSRGrad) and out is _plain(
            args[0]
        ):
            return args[0]  # an in-place operation returns its (subclass) argument
        return out


def batched_csr_grad(grad: torch.Tensor) -> torch.Tensor:
    """``grad`` as a :class:`BatchedCSRGrad` if it is a batched CSR tensor, else unchanged."""
    return BatchedCSRGrad(grad) if _batched_csr(grad) else grad
