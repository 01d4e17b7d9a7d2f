"""The five public converters: ``to_torch``, ``to_jax``, ``to_numpy``, ``to_scipy``, ``to_cupy``.

Each accepts a dense array (torch, JAX, NumPy, CuPy) or a sparse tensor (torch COO/CSR, 2-D or
batched; JAX BCOO/BCSR; SciPy ``coo``/``csr`` arrays and matrices; cupyx ``coo``/``csr``) and
returns the target's natural equivalent with the same layout, values and index dtypes:
torch COO <-> BCOO <-> scipy ``coo_array`` <-> cupyx ``coo_matrix`` and likewise for CSR.

``copy`` follows the array API: ``None`` copies only what cannot be shared, ``False`` never copies
(a ``ValueError`` names the component that would need a copy and why), ``True`` always copies.
Torch tensors that require grad are detached: gradients are not the bridge's business.
"""

from __future__ import annotations

from ._dense import check_concrete, convert
from ._optional import require
from ._sparse import convert_sparse, sparse_kind
from .internal.messages import describe, message

__all__ = ["to_torch", "to_jax", "to_numpy", "to_scipy", "to_cupy"]


def _same_sparse(x, fw: str, copy):
    """A sparse input already in the target framework: itself (detached) or a copy."""
    if fw == "torch":
        x = x.detach()
        return x.clone() if copy else x
    if fw == "jax":
        check_concrete(x.data, "bridge")
        jax = require("jax")
        return jax.tree_util.tree_map(lambda a: a.copy(), x) if copy else x
    return x.copy() if copy else x


def _convert(x, target: str, copy):
    fn = f"to_{target}"
    if copy is not None and not isinstance(copy, bool):
        raise TypeError(f"copy: expected None, True or False, got {copy!r}.")
    kind = sparse_kind(x)
    if kind is None:
        if target == "scipy":
            check_concrete(x, fn)
            raise TypeError(message(
                "to_scipy", "a COO/CSR sparse tensor (it converts sparse tensors only)",
                describe(x) + "; for a dense array use to_numpy",
            ))
        return convert(x, target, copy=copy, fn=fn)
    if target == "numpy":
        raise TypeError(message(
            "to_numpy", "a dense array (it converts dense arrays only)",
            f"a sparse {kind[1].upper()} ({type(x).__name__}); use to_scipy, or densify "
            "explicitly first",
        ))
    if kind[0] == target:
        return _same_sparse(x, target, copy)
    return convert_sparse(x, kind, target, copy)


def to_torch(x, *, copy: bool | None = None):
    """``x`` as a torch tensor on the same device (CUDA arrays stay on their GPU).

    Args:
        x: dense array of any framework, or a COO/CSR sparse tensor (BCOO -> ``sparse_coo``,
            BCSR -> ``sparse_csr``, batched BCSR with ``n_batch=1`` -> batched CSR). int32 COO
            indices become int64 (torch COO only has int64), which is a copy.
        copy: ``None`` copies only what cannot be shared, ``False`` raises ``ValueError`` rather
            than copy, ``True`` always copies.

    The result is detached from autograd and shares memory with ``x`` where it can: writing to it
    writes to ``x`` (a JAX source included, which JAX assumes immutable).
    Example: ``t = bridge.to_torch(jnp.ones(3))``.
    """
    return _convert(x, "torch", copy)


def to_jax(x, *, copy: bool | None = None):
    """``x`` as a JAX array (dense) or ``BCOO``/``BCSR`` (sparse), on the same device.

    Args:
        x: dense array or COO/CSR sparse tensor of any framework (batched torch CSR -> BCSR with
            ``n_batch=1``; batched torch COO -> BCOO with 3 sparse dimensions).
        copy: ``None``/``False``/``True`` as in :func:`to_torch`.

    64-bit data needs JAX's x64 mode (``with jax.enable_x64(True):``), else a ``TypeError``; never a
    silent downcast. JAX tracers are rejected: inside ``jax.jit`` use ``bridge.jax_kernel``.
    Example: ``a = bridge.to_jax(torch.ones(3))``.
    """
    return _convert(x, "jax", copy)


def to_numpy(x, *, copy: bool | None = None):
    """Dense ``x`` as a NumPy array (GPU data is copied to the host unless ``copy=False``).

    Args:
        x: dense torch/JAX/NumPy/CuPy array (sparse input: use :func:`to_scipy`).
        copy: ``None``/``False``/``True`` as in :func:`to_torch`.

    Arrays shared with JAX are read-only. Example: ``n = bridge.to_numpy(torch.arange(3))``.
    """
    return _convert(x, "numpy", copy)


def to_scipy(x, *, copy: bool | None = None):
    """Sparse ``x`` as a SciPy ``coo_array``/``csr_array`` (index dtypes kept, int64 included).

    Args:
        x: COO/CSR sparse tensor of any framework. Batched COO becomes an n-D ``coo_array``;
            batched CSR has no SciPy equivalent (``ValueError``).
        copy: ``None``/``False``/``True`` as in :func:`to_torch`.

    Example: ``S = bridge.to_scipy(torch.eye(3).to_sparse_csr())``.
    """
    return _convert(x, "scipy", copy)


def to_cupy(x, *, copy: bool | None = None):
    """``x`` as a CuPy array (dense) or cupyx ``coo_matrix``/``csr_matrix`` (2-D sparse).

    Args:
        x: dense array or COO/CSR sparse tensor of any framework; host data is copied to the GPU
            unless ``copy=False``. cupyx needs int32 indices (int64 ones are cast, a copy).
        copy: ``None``/``False``/``True`` as in :func:`to_torch`.

    Needs the ``cupy`` extra. Example: ``c = bridge.to_cupy(torch.ones(3, device="cuda"))``.
    """
    return _convert(x, "cupy", copy)
