"""``torch_api.jax``: the names of ``torchsparsegradutils.jax``, built on :mod:`bridge`.

Importing this never imports JAX: ``have_jax`` says whether it is installed, and without it every
function raises the ImportError naming the ``jax`` extra. Conversions share memory wherever
``bridge`` can (DLPack); 64-bit data needs JAX's x64 mode (``with jax.enable_x64(True):``),
else a ``TypeError``, never a silent downcast. The sparse formats are the original's:
``jax.experimental.sparse.COO`` and ``CSR`` (``BCOO``/``BCSR`` are accepted back too).
"""

from __future__ import annotations

import importlib.util

import torch

import bridge
from bridge._optional import require

from .. import sparse_solve_j4t

have_jax = importlib.util.find_spec("jax") is not None

__all__ = [
    "have_jax",
    "j2t",
    "j2t_coo",
    "j2t_csr",
    "sparse_solve_j4t",
    "spmm_t4j",
    "t2j",
    "t2j_coo",
    "t2j_csr",
]


_KIND = {torch.sparse_coo: "COO", torch.sparse_csr: "CSR"}


def _sparse(name: str, x, *layouts) -> torch.Tensor:
    """``x`` if it is a 2-D torch tensor of one of ``layouts``, else a TypeError."""
    if not isinstance(x, torch.Tensor) or x.layout not in layouts or x.dim() != 2:
        kind = " or ".join(_KIND[layout] for layout in layouts)
        got = (f"a {x.dim()}-D {x.layout} tensor" if isinstance(x, torch.Tensor)
               else type(x).__qualname__)
        raise TypeError(f"{name}: expected a 2-D sparse {kind} torch tensor, got {got}.")
    return x


def _index(t: torch.Tensor) -> torch.Tensor:
    """int32 indices (JAX's own index type; int64 would need x64 mode) where they fit."""
    return t.to(torch.int32) if t.numel() == 0 or t.max() < 2**31 else t


def t2j(x_torch: torch.Tensor):
    """A dense torch tensor as a JAX array (shared memory where possible).

    Example: ``x = t2j(torch.ones(3))``.
    """
    require("jax")
    return bridge.to_jax(x_torch)


def j2t(x_jax) -> torch.Tensor:
    """A dense JAX array as a torch tensor (shared memory where possible).

    Example: ``t = j2t(jnp.ones(3))``.
    """
    require("jax")
    return bridge.to_torch(x_jax)


def t2j_coo(x_torch: torch.Tensor):
    """A 2-D torch COO tensor (coalesced first) as a ``jax.experimental.sparse.COO``.

    Example: ``t2j_coo(torch.eye(3).to_sparse())``.
    """
    sparse = require("jax.experimental.sparse")
    x = _sparse("x_torch", x_torch, torch.sparse_coo).coalesce()
    rows, cols = _index(x.indices())
    parts = tuple(bridge.to_jax(t) for t in (x.values(), rows, cols))
    return sparse.COO(parts, shape=tuple(x.shape), rows_sorted=True)


def _from_jax(x_jax, kind: str):
    """The torch tensor of a ``BCOO``/``BCSR`` (``kind`` "COO"/"CSR"), ``None`` for the
    original's ``COO``/``CSR`` (converted by the caller), a TypeError for anything else."""
    sparse = require("jax.experimental.sparse")
    if isinstance(x_jax, getattr(sparse, f"B{kind}")):
        return bridge.to_torch(x_jax)
    if not isinstance(x_jax, getattr(sparse, kind)):
        raise TypeError(f"x_jax: expected a jax.experimental.sparse.{kind} or B{kind}, got "
                        f"{type(x_jax).__qualname__}.")
    return None


def j2t_coo(x_jax) -> torch.Tensor:
    """A ``jax.experimental.sparse.COO`` (or ``BCOO``) as a torch COO tensor.

    Example: ``j2t_coo(jax.experimental.sparse.COO.fromdense(jnp.eye(3)))``.
    """
    converted = _from_jax(x_jax, "COO")
    if converted is not None:
        return converted
    rows, cols = (bridge.to_torch(a).long() for a in (x_jax.row, x_jax.col))
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), bridge.to_torch(x_jax.data),
                                   tuple(x_jax.shape))


def t2j_csr(x_torch: torch.Tensor):
    """A 2-D torch CSR tensor as a ``jax.experimental.sparse.CSR``.

    Example: ``t2j_csr(torch.eye(3).to_sparse_csr())``.
    """
    sparse = require("jax.experimental.sparse")
    x = _sparse("x_torch", x_torch, torch.sparse_csr)
    parts = (x.values(), _index(x.col_indices()), _index(x.crow_indices()))
    return sparse.CSR(tuple(bridge.to_jax(t) for t in parts), shape=tuple(x.shape))


def j2t_csr(x_jax) -> torch.Tensor:
    """A ``jax.experimental.sparse.CSR`` (or ``BCSR``) as a torch CSR tensor.

    Example: ``j2t_csr(jax.experimental.sparse.CSR.fromdense(jnp.eye(3)))``.
    """
    converted = _from_jax(x_jax, "CSR")
    if converted is not None:
        return converted
    crow, col, values = (bridge.to_torch(a) for a in (x_jax.indptr, x_jax.indices, x_jax.data))
    return torch.sparse_csr_tensor(crow, col, values, tuple(x_jax.shape))


def spmm_t4j(A: torch.Tensor):
    """``x -> A @ x`` for JAX arrays ``x`` of shape ``(n,)`` or ``(n, k)``, computed by torch's
    sparse kernel on JAX's buffers (usable inside ``jax.jit``; no gradient).

    Args:
        A: sparse COO or CSR ``(m, n)`` torch tensor on the device of the JAX arrays.

    Example:
        >>> matvec = spmm_t4j(torch.eye(3).to_sparse_csr())
        >>> matvec(jnp.ones(3))
    """
    jax = require("jax")
    _sparse("A", A, torch.sparse_coo, torch.sparse_csr)

    def product(x: torch.Tensor) -> torch.Tensor:
        return (A @ x[:, None])[:, 0] if x.dim() == 1 else A @ x

    def shape(x):
        return jax.ShapeDtypeStruct((A.shape[0], *x.shape[1:]), x.dtype)

    kernel = bridge.jax_kernel(product, shape)
    dtype = str(A.dtype).removeprefix("torch.")

    def closure(x):
        if x.ndim not in (1, 2) or x.shape[0] != A.shape[1] or str(x.dtype) != dtype:
            raise ValueError(f"x: expected a {dtype} array of shape ({A.shape[1]},) or "
                             f"({A.shape[1]}, k), got {x.dtype} {tuple(x.shape)}.")
        return kernel(x)

    return closure
