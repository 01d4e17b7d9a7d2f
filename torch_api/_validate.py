"""The one validator of torch_api: every public operation checks its inputs here.

Wrong type or layout -> ``TypeError``; wrong shape, dtype mix or device mix -> ``ValueError``.
Each message names the argument, what it received and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from bridge.internal import indices
from bridge.internal.messages import (  # noqa: F401 (describe: re-exported)
    describe,
    layout_name,
    type_error,
    value_error,
)

FLOATS = (torch.float32, torch.float64)
INDEX_DTYPES = (torch.int32, torch.int64)
SPARSE_LAYOUTS = (torch.sparse_coo, torch.sparse_csr)


def _names(items: Iterable[object]) -> str:
    return " or ".join(layout_name(i) for i in items)


def check_tensor(name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise type_error(name, x, "a torch.Tensor")
    return x


def check_sparse(
    name: str,
    A: object,
    *,
    layouts: tuple[torch.layout, ...] = SPARSE_LAYOUTS,
    ndims: tuple[int, ...] = (2, 3),
    square: bool = False,
    floating: bool = True,
) -> torch.Tensor:
    """Check ``A`` is a sparse tensor of an allowed layout, rank and (real float) dtype."""
    A = check_tensor(name, A)
    if A.layout not in layouts:
        raise type_error(name, A, f"a {_names(layouts)} tensor")
    if A.dim() not in ndims:
        raise value_error(name, A, f"a {' or '.join(map(str, ndims))}-D sparse tensor")
    if A.layout == torch.sparse_coo and A.dense_dim() != 0:
        raise type_error(name, A, "a COO tensor without dense (hybrid) dimensions")
    if A.layout == torch.sparse_coo and A.dim() == 3 and A.sparse_dim() != 3:
        raise type_error(name, A, "a batched COO tensor with 3 sparse dimensions")
    if A.layout == torch.sparse_csr and A.dense_dim() != 0:
        raise type_error(name, A, "a CSR tensor without dense (hybrid) dimensions")
    if floating and A.dtype not in FLOATS:
        raise value_error(name, A, "float32 or float64 values")
    if square and A.shape[-1] != A.shape[-2]:
        raise value_error(name, A, "a square matrix")
    check_indices(name, A)
    return A


def check_indices(name: str, A: torch.Tensor) -> None:
    """O(nnz) check (one host sync) that a COO/CSR/CSC tensor's indices are in range.

    torch builds sparse tensors without checking their indices by default; an out-of-range index
    would make kernels read or write outside their buffers (garbage or a crash), so it is
    refused here. Unsorted CSR column indices are fine for every torch_api operation. The
    verdict is kept by :mod:`torch_api._pattern_cache`, which compares the index values on reuse,
    so a pattern reused across calls is checked once and a changed one again.
    """
    if A.device.type == "meta":  # no data to check (and no kernel will read it)
        return
    from ._pattern_cache import cached

    if A.layout == torch.sparse_coo:
        source = (A._indices(),)
    elif A.layout == torch.sparse_csr:
        source = (A.crow_indices(), A.col_indices())
    elif A.layout == torch.sparse_csc:
        source = (A.ccol_indices(), A.row_indices())
    else:
        return
    cached(f"valid {A.layout}", source, tuple(A.shape), lambda: _check_indices(name, A))


def _check_indices(name: str, A: torch.Tensor) -> bool:
    """The shared O(nnz) check of :mod:`bridge.internal.indices`, on A's device."""
    if A.layout == torch.sparse_coo:
        indices.check_coo(name, A._indices(), tuple(A.shape))
    elif A.layout == torch.sparse_csr:
        indices.check_compressed(name, A.crow_indices(), A.col_indices(), tuple(A.shape), "CSR")
    else:
        indices.check_compressed(name, A.ccol_indices(), A.row_indices(), tuple(A.shape), "CSC")
    return True


def check_dense(name: str, x: object, *, ndims: tuple[int, ...] = (1, 2, 3),
                floating: bool = True) -> torch.Tensor:
    """Check ``x`` is a dense (strided) tensor of an allowed rank and real float dtype."""
    x = check_tensor(name, x)
    if x.layout != torch.strided:
        raise type_error(name, x, "a dense (strided) tensor")
    if x.dim() not in ndims:
        raise value_error(name, x, f"a {' or '.join(map(str, ndims))}-D tensor")
    if floating and x.dtype not in FLOATS:
        raise value_error(name, x, "float32 or float64 values")
    return x


def check_match(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """``a`` and ``b`` must share dtype and device (never silently cast or move)."""
    if a.dtype != b.dtype:
        raise ValueError(
            f"{name_b}: expected dtype {a.dtype} to match {name_a}, got {b.dtype}; "
            f"cast one of them explicitly."
        )
    if a.device != b.device:
        raise ValueError(
            f"{name_b}: expected device {a.device} to match {name_a}, got {b.device}; "
            f"move one of them explicitly."
        )


def check_dim_match(name: str, got: int, expected: int, what: str) -> None:
    if got != expected:
        raise ValueError(f"{name}: expected {what} of size {expected}, got {got}.")


def check_rhs(name: str, B: object, A: torch.Tensor, name_A: str = "A") -> torch.Tensor:
    """A dense right-hand side / operand for a (possibly batched) sparse ``A``.

    Unbatched ``A (n, m)`` accepts ``B (m,)`` or ``(m, p)``; batched ``A (b, n, m)`` accepts
    ``B (b, m)`` or ``(b, m, p)``. ``m`` is the number of rows B must have (A's columns).
    """
    batched = A.dim() == 3
    B = check_dense(name, B, ndims=(2, 3) if batched else (1, 2))
    check_match(name_A, A, name, B)
    if batched and B.shape[0] != A.shape[0]:
        raise ValueError(
            f"{name}: expected batch size {A.shape[0]} to match {name_A}, got {B.shape[0]}."
        )
    rows = B.shape[1] if batched else B.shape[0]
    if rows != A.shape[-1]:
        raise ValueError(
            f"{name}: expected {A.shape[-1]} rows to match {name_A}'s {A.shape[-1]} columns "
            f"(shape {tuple(A.shape)}), got shape {tuple(B.shape)}."
        )
    return B


def check_index(name: str, x: object, *, ndims: tuple[int, ...] = (1,)) -> torch.Tensor:
    """Check ``x`` is a dense integer tensor (indices, lengths) of an allowed rank."""
    x = check_tensor(name, x)
    if x.layout != torch.strided:
        raise type_error(name, x, "a dense (strided) integer tensor")
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise value_error(name, x, "an integer tensor (int32 or int64)")
    if x.dim() not in ndims:
        raise value_error(name, x, f"a {' or '.join(map(str, ndims))}-D integer tensor")
    return x
