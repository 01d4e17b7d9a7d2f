"""Zero-copy conversion between torch, JAX, CuPy, NumPy and SciPy, and cross-framework kernels.

Nothing optional is imported here: each function imports the frameworks it needs when called.
"""

from __future__ import annotations

import importlib

__all__ = ["to_torch", "to_jax", "to_numpy", "to_scipy", "to_cupy", "jax_kernel", "torch_kernel"]

_HOME = {
    "to_torch": "_convert",
    "to_jax": "_convert",
    "to_numpy": "_convert",
    "to_scipy": "_convert",
    "to_cupy": "_convert",
    "jax_kernel": "_kernels",
    "torch_kernel": "_kernels",
}


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module 'bridge' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
