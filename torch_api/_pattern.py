"""A sparse matrix's pattern, and the gradient on it: the shared core of every torch_api op.

Every operation turns its sparse argument into a :class:`Pattern` once: a 2-D CSR view of the
pattern (a batched ``(b, n, m)`` matrix becomes the block-diagonal ``(b*n, b*m)`` matrix, which
costs one index offset and no copy of values) plus the flat ``(nnz,)`` values. Products, solves
and gradients then work on that one representation, and :meth:`Pattern.wrap` gives a result
(the gradient) back in the caller's layout, batching and indices.

The gradient of a loss with respect to the stored values of ``A`` in ``Y = f(A) ...`` is always
a sampled dense-dense product (SDDMM): ``dA[i, j] = sum_k G[i, k] X[j, k]`` evaluated only at
A's nonzeros, which :meth:`Pattern.sddmm` computes with ``torch.sparse.sampled_addmm`` (no
``n x n`` matrix, no ``nnz x p`` temporary). Products with ``A^T`` use a transposed CSR pattern
(a permutation of the values) computed once per pattern and cached, because torch's CSC
products are several times slower than CSR ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._pattern_cache import bind, cached

_INT32_MAX = 2**31 - 1


def csr_rows(crow: torch.Tensor) -> torch.Tensor:
    """Row index of every stored entry of a 2-D CSR pattern (CSR row expansion)."""
    n = crow.numel() - 1
    counts = crow[1:] - crow[:-1]
    return torch.repeat_interleave(
        torch.arange(n, device=crow.device, dtype=crow.dtype), counts, output_size=int(crow[-1])
    )


def coo_to_crow(rows: torch.Tensor, n_rows: int, index_dtype: torch.dtype) -> torch.Tensor:
    """CSR row pointers of sorted row indices."""
    return torch._convert_indices_from_coo_to_csr(
        rows, n_rows, out_int32=index_dtype == torch.int32
    )


@dataclass(frozen=True)
class Pattern:
    """The pattern of a COO/CSR, 2-D or batched 3-D sparse matrix as one 2-D CSR pattern.

    ``crow``/``col`` describe the (block-diagonal) 2-D CSR pattern of shape
    ``(batch * n, batch * m)``; ``source`` keeps the caller's own index tensors so gradients come
    back with the same indices and layout. A CSC matrix (``sparse_logsumexp`` only) is read as the
    CSR pattern of its transpose: ``shape`` is then ``A^T``'s, and :meth:`wrap` gives back CSC.
    """

    crow: torch.Tensor
    col: torch.Tensor
    shape: tuple[int, ...]  # the caller's shape: (n, m) or (b, n, m)
    layout: torch.layout
    source: tuple[torch.Tensor, ...]  # COO: (indices,); CSR: (crow_indices, col_indices)

    @property
    def batch(self) -> int | None:
        return self.shape[0] if len(self.shape) == 3 else None

    @property
    def nb(self) -> int:
        return self.shape[0] if len(self.shape) == 3 else 1

    @property
    def csr_shape(self) -> tuple[int, int]:
        return (self.nb * self.shape[-2], self.nb * self.shape[-1])

    @property
    def nnz(self) -> int:
        return self.col.numel()

    @property
    def index_dtype(self) -> torch.dtype:
        return self.col.dtype

    @property
    def device(self) -> torch.device:
        return self.col.device

    # ----------------------------------------------------------------------------- building
    @staticmethod
    def of(A: torch.Tensor) -> tuple[Pattern, torch.Tensor]:
        """The pattern of ``A`` and its flat values (a non-coalesced COO is coalesced once)."""
        if A.layout == torch.sparse_coo:
            if not A.is_coalesced():
                A = A.coalesce()
            idx, values, shape = A._indices(), A._values(), tuple(A.shape)
            source = bind((idx,))
            crow, cols = cached("coo", source, shape, lambda: _coo_csr(idx, shape))
            if cols is None:  # 2-D: the columns are a view of the indices (never cached)
                cols = idx[1]
            return Pattern(crow, cols, shape, A.layout, source), values
        if A.layout == torch.sparse_csc:  # the CSR pattern of A^T: the same index arrays
            crow, col = A.ccol_indices(), A.row_indices()
            shape = (*A.shape[:-2], A.shape[-1], A.shape[-2])
        else:
            crow, col, shape = A.crow_indices(), A.col_indices(), tuple(A.shape)
        values, source = A.values(), bind((crow, col))
        if A.dim() == 3:
            flat = cached("batched", source, shape, lambda: _flat_csr(crow, col, shape))
            return Pattern(*flat, shape, A.layout, source), values.reshape(-1)
        return Pattern(crow, col, shape, A.layout, source), values

    # ------------------------------------------------------------------------------ using
    def csr(self, values: torch.Tensor) -> torch.Tensor:
        """The 2-D (block-diagonal) CSR matrix with these flat values.

        On CPU its indices are int32 wherever they fit (int64 ones are copied once per pattern
        and cached): MKL would otherwise convert int64 indices on every product and solve.
        """
        crow, col = self.crow, self.col
        if _wants_int32(col, self.csr_shape):
            crow, col = cached("int32", self.source, self.shape, lambda: (crow.int(), col.int()))
        return torch.sparse_csr_tensor(crow, col, values, self.csr_shape)

    def wrap(self, values: torch.Tensor) -> torch.Tensor:
        """A sparse tensor with the caller's layout, shape and indices, holding ``values``.

        A batched CSR result is a :class:`~torch_api._csr_grad.BatchedCSRGrad`, whose additions
        (gradient accumulation, optimizer steps) are correct where torch 2.13's are not.
        """
        if self.layout == torch.sparse_coo:
            return torch.sparse_coo_tensor(self.source[0], values, self.shape, is_coalesced=True)
        from ._csr_grad import batched_csr_grad

        crow, col = self.source
        if self.layout == torch.sparse_csc:
            shape_t = (*self.shape[:-2], *self.shape[-2:][::-1])
            return torch.sparse_csc_tensor(crow, col, values.reshape(col.shape), shape_t)
        out = torch.sparse_csr_tensor(crow, col, values.reshape(col.shape), self.shape)
        return batched_csr_grad(out) if self.batch is not None else out

    def rows(self) -> torch.Tensor:
        return csr_rows(self.crow)

    def transpose(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(crow_T, col_T, perm)``: the CSR pattern of ``A^T``; its values are ``values[perm]``.

        Cached per pattern, so repeated training steps on one pattern pay for the sort once.
        """
        crow, col, shape = self.crow, self.col, self.csr_shape
        return cached("transpose", self.source, self.shape, lambda: _transpose(crow, col, shape))

    def csr_t(self, values: torch.Tensor) -> torch.Tensor:
        """The 2-D CSR matrix ``A^T`` (block-diagonal when batched; int32 indices on CPU, as
        :meth:`csr`)."""
        crow_t, col_t, perm = self.transpose()
        n, m = self.csr_shape
        if _wants_int32(col_t, (m, n)):
            crow_t, col_t = cached(
                "int32 transpose", self.source, self.shape, lambda: (crow_t.int(), col_t.int())
            )
        return torch.sparse_csr_tensor(crow_t, col_t, values[perm], (m, n))

    def sddmm(self, G: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Flat values of ``G @ X^T`` at the pattern: ``G (N, p)``, ``X (M, p)`` -> ``(nnz,)``."""
        if self.nnz == 0:
            return G.new_zeros(0)
        values = G.new_zeros(self.nnz)
        M = self.csr(values)
        # out=M fills ``values`` in place: the out-of-place call would copy the pattern's indices
        # (as int64 on CPU) and allocate a second values buffer.
        torch.sparse.sampled_addmm(M, G, X.transpose(0, 1), beta=0.0, out=M)
        return values

    # ------------------------------------------------------------------- dense operands
    def flat_rhs(self, B: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """A dense ``(m,)``, ``(m, p)``, ``(b, m)`` or ``(b, m, p)`` operand as ``(b*m, p)``.

        Returns the 2-D matrix and whether the caller gave a vector (no trailing ``p``).
        """
        vector = B.dim() == (2 if self.batch is not None else 1)
        if vector:
            B = B.unsqueeze(-1)
        return B.reshape(B.shape[:-1].numel(), B.shape[-1]), vector  # explicit rows: p may be 0

    def unflat(self, Y: torch.Tensor, vector: bool, rows: int) -> torch.Tensor:
        """Inverse of :meth:`flat_rhs` for a result with ``rows`` rows per batch."""
        if self.batch is not None:
            Y = Y.reshape(self.batch, rows, Y.shape[-1])
        return Y.squeeze(-1) if vector else Y


def _coo_csr(idx: torch.Tensor, shape: tuple[int, ...]):
    """Flat CSR ``(crow, col)`` of coalesced COO indices; ``col`` is ``None`` for a 2-D COO (it
    is the view ``idx[1]``). Cached per pattern: the row compression costs a pass over the
    nonzeros."""
    if len(shape) == 3:
        b, n, m = shape
        rows, cols = idx[0] * n + idx[1], idx[0] * m + idx[2]
        return coo_to_crow(rows, b * n, idx.dtype), cols
    return coo_to_crow(idx[0], shape[0], idx.dtype), None


def _flat_csr(crow: torch.Tensor, col: torch.Tensor, shape: tuple[int, ...]):
    """The block-diagonal 2-D CSR ``(crow, col)`` of a batched ``(b, n, m)`` CSR pattern."""
    b, _, m = shape
    nnz = col.shape[-1]
    if b * max(nnz, m) > _INT32_MAX and col.dtype == torch.int32:
        crow, col = crow.long(), col.long()
    off = torch.arange(b, device=col.device, dtype=col.dtype)[:, None]
    flat_crow = torch.cat([(crow[:, :-1] + off * nnz).reshape(-1), crow.new_full((1,), b * nnz)])
    return flat_crow, (col + off * m).reshape(-1)


def _transpose(crow: torch.Tensor, col: torch.Tensor, shape: tuple[int, int]):
    n, m = shape
    if crow.device.type == "cpu" and col.numel() > 0:
        return _transpose_scipy(crow, col, shape)
    rows = csr_rows(crow)
    perm = torch.argsort(col, stable=True)  # rows are sorted, so this orders by (col, row)
    crow_t = coo_to_crow(col[perm], m, col.dtype)
    col_t = rows[perm].to(col.dtype)
    return crow_t, col_t, perm


def _transpose_scipy(crow: torch.Tensor, col: torch.Tensor, shape: tuple[int, int]):
    # SciPy's CSR -> CSC conversion is a counting sort, O(nnz + n): about 7x faster on CPU than
    # the stable argsort above at 3M nonzeros. Carrying 0..nnz-1 as the values yields ``perm``.
    import numpy as np
    import scipy.sparse

    nnz = col.numel()
    M = scipy.sparse.csr_matrix(
        (np.arange(nnz, dtype=np.int64), col.numpy(), crow.numpy()), shape=shape, copy=False
    ).tocsc()
    crow_t = torch.from_numpy(M.indptr).to(col.dtype)
    col_t = torch.from_numpy(M.indices).to(col.dtype)
    return crow_t, col_t, torch.from_numpy(M.data)


def _wants_int32(col: torch.Tensor, shape: tuple[int, int]) -> bool:
    """Whether int64 indices of a CPU pattern fit in int32 (MKL's LP64 index type)."""
    return (
        col.dtype == torch.int64
        and col.device.type == "cpu"
        and max(col.numel(), *shape) <= _INT32_MAX
    )


def sparse_with_values(A: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """A sparse tensor with A's layout, shape and indices holding ``values``.

    ``values`` is ``A.values()``-shaped (COO: ``(nnz,)``, A coalesced; CSR: ``(nnz,)`` or
    ``(b, nnz)``). Its gradient is the incoming gradient sampled at A's pattern, whatever that
    gradient's layout, so one ``values`` tensor can feed several sparse uses whose gradients then
    add up densely (torch 2.13 mis-adds two batched CSR gradients), and it is differentiable to
    any order (:class:`~torch_api._sddmm.FromValues`).

    Example:
        >>> A = torch.eye(2).to_sparse_csr()
        >>> sparse_with_values(A, torch.tensor([2.0, 3.0])).to_dense()
        tensor([[2., 0.],
                [0., 3.]])
    """
    from ._sddmm import FromValues  # the differentiable values -> matrix Function (imports us)

    if A.layout == torch.sparse_coo:
        idx = A._indices()
        make = lambda v: torch.sparse_coo_tensor(idx, v, A.shape, is_coalesced=True)
    elif A.layout == torch.sparse_csc:
        ccol, row = A.ccol_indices(), A.row_indices()
        make = lambda v: torch.sparse_csc_tensor(ccol, row, v, A.shape)
    else:
        crow, col = A.crow_indices(), A.col_indices()
        make = lambda v: torch.sparse_csr_tensor(crow, col, v, A.shape)
    return FromValues.apply(values, Pattern.of(A)[0], make)
