"""``torch_api.cupy``: the names of ``torchsparsegradutils.cupy``, built on :mod:`bridge`.

Importing this never imports CuPy: ``have_cupy`` says whether it is installed. As in the
original, CUDA tensors convert to cupyx ``coo_matrix``/``csr_matrix`` (sharing GPU memory) and
CPU tensors to SciPy ones (sharing host memory); a CUDA tensor without CuPy raises the
ImportError naming the ``cupy`` extra. ``sparse_solve_c4t`` likewise uses SciPy on CPU.
"""

from __future__ import annotations

import importlib.util

import torch

import bridge
from bridge._optional import loaded, require

from .. import sparse_solve_c4t

have_cupy = importlib.util.find_spec("cupy") is not None

__all__ = ["c2t_coo", "c2t_csr", "have_cupy", "sparse_solve_c4t", "t2c_coo", "t2c_csr"]


def _to_backend(name: str, x, layout):
    """``x`` (2-D torch sparse of ``layout``) as cupyx (CUDA) or SciPy (CPU) matrix."""
    kind = "COO" if layout == torch.sparse_coo else "CSR"
    if not isinstance(x, torch.Tensor) or x.layout != layout or x.dim() != 2:
        got = (f"a {x.dim()}-D {x.layout} tensor" if isinstance(x, torch.Tensor)
               else type(x).__qualname__)
        raise TypeError(f"{name}: expected a 2-D sparse {kind} torch tensor, got {got}.")
    if layout == torch.sparse_coo:
        x = x.coalesce()
    if x.is_cuda:
        require("cupy")
        return bridge.to_cupy(x)
    sparse = require("scipy.sparse")
    return getattr(sparse, f"{kind.lower()}_matrix")(bridge.to_scipy(x), copy=False)


def _to_torch(name: str, x, kind: str) -> torch.Tensor:
    """A SciPy or cupyx ``kind`` ("coo"/"csr") matrix or array as a torch sparse tensor."""
    scipy_sparse = require("scipy.sparse")
    cupyx_sparse = loaded("cupyx.scipy.sparse")
    ok = scipy_sparse.issparse(x) and x.format == kind
    ok = ok or (cupyx_sparse is not None and cupyx_sparse.issparse(x) and x.format == kind)
    if not ok:
        raise TypeError(f"{name}: expected a SciPy or cupyx {kind.upper()} matrix, got "
                        f"{type(x).__qualname__}.")
    return bridge.to_torch(x)


def t2c_coo(x_torch: torch.Tensor):
    """A 2-D torch COO tensor (coalesced first) as a cupyx (CUDA) or SciPy (CPU) COO matrix.

    Example: ``t2c_coo(torch.eye(3).to_sparse())``.
    """
    return _to_backend("x_torch", x_torch, torch.sparse_coo)


def t2c_csr(x_torch: torch.Tensor):
    """A 2-D torch CSR tensor as a cupyx (CUDA) or SciPy (CPU) CSR matrix.

    Example: ``t2c_csr(torch.eye(3).to_sparse_csr())``.
    """
    return _to_backend("x_torch", x_torch, torch.sparse_csr)


def c2t_coo(x_cupy) -> torch.Tensor:
    """A cupyx or SciPy COO matrix (or array) as a torch COO tensor on its device.

    Example: ``c2t_coo(scipy.sparse.eye(3, format="coo"))``.
    """
    return _to_torch("x_cupy", x_cupy, "coo")


def c2t_csr(x_cupy) -> torch.Tensor:
    """A cupyx or SciPy CSR matrix (or array) as a torch CSR tensor on its device.

    Example: ``c2t_csr(scipy.sparse.eye(3, format="csr"))``.
    """
    return _to_torch("x_cupy", x_cupy, "csr")
