"""Zero-copy conversion between torch, JAX, CuPy, NumPy and SciPy, and cross-framework kernels."""

from ._convert import to_cupy, to_jax, to_numpy, to_scipy, to_torch
from ._kernels import jax_kernel, torch_kernel

__all__ = ["to_torch", "to_jax", "to_numpy", "to_scipy", "to_cupy", "jax_kernel", "torch_kernel"]
