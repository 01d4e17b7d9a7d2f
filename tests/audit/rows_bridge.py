"""Audit rows of bridge: the conversions (``to_torch`` ... ``to_cupy``) and the kernels."""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np
import torch

from .inputs import F64, check, coo_out_of_range, csr_out_of_range, mat, sp, unsorted_csr
from .table import TE, VE, Result, Row, assert_same, c, equals, err, shaped


def rows() -> list[Row]:
    """Rows of bridge: conversions and cross-framework kernels."""
    import bridge

    out: list[Row] = []
    x32 = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    S32 = mat(dtype=torch.float32)
    for name in ("to_torch", "to_jax", "to_numpy", "to_scipy", "to_cupy"):
        t, fn = f"bridge.{name}", getattr(bridge, name)
        out += [
            Row(t, "x is a list", lambda fn=fn: c(fn, [1.0, 2.0]), err(TE, name, "array|sparse")),
            Row(t, "copy is a string", lambda fn=fn: c(fn, x32.clone(), copy="yes"),
                err(TE, "copy", "None, True or False")),
        ]
    x64off = {"x64": False}

    def csr_index_rows(name, sorted_flag, range_flags, unsorted_flags):
        """A CSR column index out of range is refused; unsorted column indices convert correctly
        and the result's ``sorted_flag`` says they are unsorted."""
        t, fn = f"bridge.{name}", getattr(bridge, name)
        marked = lambda out_, call: (assert_same(out_, S32), check(not getattr(out_, sorted_flag)))
        return [
            Row(t, "CSR column index out of range", lambda: c(fn, csr_out_of_range(S32)),
                err(VE, "indices", "CSR indices"), **range_flags),
            Row(t, "CSR with unsorted column indices", lambda: c(fn, unsorted_csr(S32)),
                Result(marked, "correct result, marked unsorted"), **unsorted_flags),
        ]

    out += [
        Row("bridge.to_torch", "a strided NumPy view with copy=False",
            lambda: c(bridge.to_torch, np.arange(6.0)[::-2], copy=False),
                err(VE, "array", "without a copy")),
        Row("bridge.to_torch", "an empty array", lambda: c(bridge.to_torch, np.zeros((0, 3))),
            shaped((0, 3), F64)),
        Row("bridge.to_jax", "float64 while JAX's x64 mode is disabled",
            lambda: c(bridge.to_jax, x32.double()),
            err(TE, "array", "64-bit mode is disabled"), **x64off),
        Row("bridge.to_jax", "COO (int64 indices) while JAX's x64 mode is disabled",
            lambda: c(bridge.to_jax, sp(S32, "coo")),
                err(TE, "indices", "64-bit mode is disabled"), **x64off),
        Row("bridge.to_jax", "CSC", lambda: c(bridge.to_jax, sp(S32, "csc")),
            err(TE, "to_jax", "array|sparse")),
        Row("bridge.to_jax", "on the meta device", lambda: c(bridge.to_jax, x32.to("meta")),
            err(VE, "array", "meta tensor")),
        Row("bridge.to_jax", "COO index out of range",
            lambda: c(bridge.to_jax, coo_out_of_range(S32)),
            err(VE, "indices", "within the shape"), x64=True),
        *csr_index_rows("to_jax", "indices_sorted", {"x64": True}, {"x64": True}),
        Row("bridge.to_numpy", "sparse input", lambda: c(bridge.to_numpy, sp(S32)),
            err(TE, "to_numpy", "dense arrays only")),
        Row("bridge.to_numpy", "on the meta device", lambda: c(bridge.to_numpy, x32.to("meta")),
            err(VE, "array", "meta tensor")),
        Row("bridge.to_numpy", "a transposed view with copy=False",
            lambda: c(bridge.to_numpy, x32.t(), copy=False),
            equals(lambda call: x32.t().numpy(), "correct result (a strided view, no copy)")),
        Row("bridge.to_scipy", "dense input", lambda: c(bridge.to_scipy, x32.clone()),
            err(TE, "to_scipy", "sparse tensors only")),
        Row("bridge.to_scipy", "batched CSR", lambda: c(bridge.to_scipy, sp(S32.expand(2, 3, 3))),
            err(VE, "SciPy", "no batched CSR")),
        *csr_index_rows("to_scipy", "has_sorted_indices", {"isolate": True}, {}),
        Row("bridge.to_scipy", "empty: n = 0", lambda: c(bridge.to_scipy, sp(torch.zeros(0, 0))),
            Result(lambda out_, call: check(out_.shape == (0, 0) and out_.nnz == 0),
                   "correct empty result")),
    ]
    if importlib.util.find_spec("cupy") is None:
        out.append(Row("bridge.to_cupy", "CuPy is not installed",
                       lambda: c(bridge.to_cupy, x32.clone()),
                       err(ImportError, "cupy", "sparsegradutils\\[cupy\\]")))

    def kernel64(x):
        import jax

        k = bridge.jax_kernel(lambda a: a.double(), jax.ShapeDtypeStruct((3,), np.float64))
        return c(k, x)

    out += [
        Row("bridge.jax_kernel", "fn is not callable", lambda: c(bridge.jax_kernel, 3, None),
            err(TE, "fn", "callable")),
        Row("bridge.jax_kernel", "vmap_method unknown",
            lambda: c(bridge.jax_kernel, abs, None, vmap_method="loop"),
            err(VE, "vmap_method", "one of")),
        Row("bridge.jax_kernel", "float64 output while JAX's x64 mode is disabled",
            lambda: kernel64(importlib.import_module("jax.numpy").ones(3)),
            err(TE, "result_shape_dtypes", "x64 mode is off"), **x64off),
        Row("bridge.torch_kernel", "fn is not callable", lambda: c(bridge.torch_kernel, 3),
            err(TE, "fn", "callable")),
        Row("bridge.torch_kernel", "tensors on the CPU and the meta device",
            lambda: c(bridge.torch_kernel(lambda a, b: a + b), x32.clone(), x32.to("meta")),
            err(VE, "torch_kernel", "one device")),
        Row("bridge.torch_kernel", "float64 while JAX's x64 mode is disabled",
            lambda: c(bridge.torch_kernel(lambda a: 2 * a), x32.double()),
            equals(lambda call: 2 * x32.double(),
                   "correct float64 result (x64 enabled in a scope)"), **x64off),
    ]
    return out
