"""Kernels across frameworks: torch code inside ``jax.jit`` and jitted JAX code on torch tensors.

:func:`jax_kernel` wraps a function written for torch tensors as a JAX primitive built on
``jax.experimental.buffer_callback``: XLA hands its device buffers to the callback, which views
them as torch tensors through DLPack (no copy), so the torch code reads JAX's inputs in place
and writes JAX's outputs in place. On GPU the torch code runs on XLA's own stream
(``torch.cuda.ExternalStream``), so ordering needs no device-wide synchronisation.

:func:`torch_kernel` goes the other way: it views torch tensors as JAX arrays (DLPack, no copy),
runs one ``jax.jit``-compiled function (compiled once per shapes, dtypes and static arguments)
and views the results as torch tensors (DLPack, no copy).

64-bit values: JAX silently truncates float64/int64 while its x64 mode is off.
:func:`torch_kernel` therefore runs the JAX part inside a scoped ``with jax.enable_x64(True):``
when (and only when) an input is 64-bit; JAX's configuration is the same before and after.
:func:`jax_kernel` lives inside the caller's JAX program, so it follows the caller's mode and
raises a ``TypeError`` for 64-bit outputs requested while x64 is off.

Gradients are not handled here: wrap these in ``jax.custom_vjp`` / ``torch.autograd.Function``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._dense import jax_to_torch, torch_to_jax
from ._optional import require
from .internal.messages import describe, message

_VMAP_METHODS = ("sequential", "sequential_unrolled", "expand_dims", "broadcast_all")
_DL_CUDA, _DL_ROCM = 2, 10


def _is_64bit(dtype) -> bool:
    import torch

    return dtype in (torch.float64, torch.int64, torch.complex128, torch.uint64)


# --------------------------------------------------------------------------------- jax_kernel
def jax_kernel(
    fn: Callable[..., Any],
    result_shape_dtypes: Any,
    *,
    vmap_method: str = "sequential",
    writes_outputs: bool = False,
    has_side_effect: bool = False,
) -> Callable[..., Any]:
    """A JAX-callable (usable under ``jit`` and ``vmap``) that runs torch code on JAX's buffers.

    Args:
        fn: the torch computation. By default ``fn(*tensors, **tensors) -> result`` receives the
            inputs as torch tensors sharing JAX's buffers, and returns a tensor (or a pytree of
            tensors matching ``result_shape_dtypes``) that is copied into XLA's output buffers
            (one device copy of the outputs; shapes and dtypes must match exactly, never cast).
            With ``writes_outputs=True``, ``fn(out, *tensors, **tensors)`` instead fills ``out``
            (tensors viewing XLA's output buffers, in the structure of ``result_shape_dtypes``)
            in place and returns ``None``: no copy at all. Inputs must never be modified.
            Calls with an equal ``fn`` (one function, or equal hashable callables such as a
            frozen dataclass) share JAX's compiled programs, eagerly too; a fresh closure or
            ``functools.partial`` per call never compares equal, so each such call compiles anew.
        result_shape_dtypes: a pytree of objects with ``shape`` and ``dtype``
            (``jax.ShapeDtypeStruct``), or a callable receiving the call's arguments (arrays or
            tracers) and returning such a pytree.
        vmap_method: behaviour under ``jax.vmap``. ``"sequential"`` (default) and
            ``"sequential_unrolled"``: ``fn`` is called once per batch element with unbatched
            tensors (JAX loops; results are stacked; each element is a slice XLA makes of the
            batch, so only those slices, not the caller's arrays, are shared).
            ``"expand_dims"`` / ``"broadcast_all"``: ``fn`` is called once with every input
            carrying a leading batch axis (of size 1 / of the batch size for unbatched inputs)
            and must return outputs with that axis.
        writes_outputs: see ``fn``.
        has_side_effect: keep the call even when its results are unused.

    Returns:
        ``kernel(*arrays, **arrays)`` returning JAX arrays shaped like ``result_shape_dtypes``.

    Example:
        >>> add = jax_kernel(lambda x, y: x + y, jax.ShapeDtypeStruct((3,), jnp.float32))
        >>> jax.jit(add)(jnp.ones(3), jnp.ones(3))
    """
    jax = require("jax")
    buffer_callback = require("jax.experimental.buffer_callback").buffer_callback
    if not callable(fn):
        raise TypeError(message("fn", "a callable", describe(fn)))
    if vmap_method not in _VMAP_METHODS:
        raise ValueError(f"vmap_method: expected one of {_VMAP_METHODS}, got {vmap_method!r}.")

    callback = _TorchCallback(fn, writes_outputs)

    def kernel(*args, **kwargs):
        shapes = result_shape_dtypes
        if callable(shapes) and not hasattr(shapes, "shape"):
            shapes = shapes(*args, **kwargs)
        _check_x64(jax, shapes)
        call = buffer_callback(
            callback, shapes, vmap_method=vmap_method, has_side_effect=has_side_effect
        )
        return call(*args, **kwargs)

    kernel.__name__ = getattr(fn, "__name__", "jax_kernel")
    kernel.__doc__ = getattr(fn, "__doc__", None)
    return kernel


def _check_x64(jax, shapes) -> None:
    import numpy as np

    for leaf in jax.tree_util.tree_leaves(shapes):
        dtype = np.dtype(leaf.dtype)
        if jax.dtypes.canonicalize_dtype(dtype) != dtype:
            raise TypeError(
                f"result_shape_dtypes: expected 32-bit outputs while JAX's x64 mode is off (JAX "
                f"would truncate them), got {dtype}. Call the kernel inside "
                f"`with jax.enable_x64(True):` or declare a 32-bit dtype."
            )


@dataclass(frozen=True)
class _TorchCallback:
    """The ``buffer_callback`` callback running ``fn`` on torch views of XLA's buffers.

    Equal (and hashing alike) whenever ``fn`` and ``writes_outputs`` are: the callback is a
    parameter of JAX's primitive, so two calls of one kernel with equal ``fn`` share JAX's
    compiled programs (eagerly too) instead of compiling and caching a copy each.
    """

    fn: Callable[..., Any]
    writes_outputs: bool

    def __call__(self, ctx, out, *args, **kwargs):
        jax = require("jax")
        leaves = jax.tree_util.tree_leaves((out, args, kwargs))
        dev_type, dev_id = leaves[0].__dlpack_device__() if leaves else (1, 0)
        if dev_type in (_DL_CUDA, _DL_ROCM):
            import torch

            device = torch.device("cuda", dev_id)
            stream = torch.cuda.ExternalStream(ctx.stream, device=device)
            with torch.cuda.device(device), torch.cuda.stream(stream):
                self._run(jax, out, args, kwargs)
        else:
            self._run(jax, out, args, kwargs)

    def _run(self, jax, out, args, kwargs):
        import torch

        view = lambda b: torch.from_dlpack(b)
        t_out = jax.tree_util.tree_map(view, out)
        t_args, t_kwargs = jax.tree_util.tree_map(view, (args, kwargs))
        if self.writes_outputs:
            result = self.fn(t_out, *t_args, **t_kwargs)
            if result is not None:
                raise ValueError(message(
                    "fn", "None (with writes_outputs=True it fills `out`)",
                    f"a result of type {type(result).__name__}"))
            return
        result = self.fn(*t_args, **t_kwargs)
        outs, out_tree = jax.tree_util.tree_flatten(t_out)
        res, res_tree = jax.tree_util.tree_flatten(result)
        if res_tree != out_tree:
            raise ValueError(
                f"fn: expected a result structured as result_shape_dtypes {out_tree}, "
                f"got {res_tree}."
            )
        for i, (o, r) in enumerate(zip(outs, res, strict=True)):
            if not isinstance(r, torch.Tensor):
                raise TypeError(message("fn", f"result {i} to be a torch.Tensor", describe(r)))
            if r.dtype != o.dtype or tuple(r.shape) != tuple(o.shape):
                raise ValueError(
                    f"fn: expected result {i} of shape {tuple(o.shape)} and dtype {o.dtype} "
                    f"(declared in result_shape_dtypes), got shape {tuple(r.shape)} and dtype "
                    f"{r.dtype}."
                )
            o.copy_(r)


# ------------------------------------------------------------------------------- torch_kernel
class TorchKernel:
    """A jitted JAX function callable on torch tensors (see :func:`torch_kernel`)."""

    def __init__(self, fn: Callable[..., Any], static_argnames: Sequence[str] = ()):
        if not callable(fn):
            raise TypeError(message("fn", "a callable", describe(fn)))
        self.fn = fn
        self.static_argnames = tuple(static_argnames)
        self._jitted = None

    @property
    def jitted(self):
        """The ``jax.jit``-compiled function (created once)."""
        if self._jitted is None:
            jax = require("jax")
            self._jitted = jax.jit(self.fn, static_argnames=self.static_argnames)
        return self._jitted

    def __call__(self, *args, **kwargs):
        import torch

        jax = require("jax")
        static = {k: kwargs.pop(k) for k in self.static_argnames if k in kwargs}
        leaves, tree = jax.tree_util.tree_flatten((args, kwargs))
        tensors = [x for x in leaves if isinstance(x, torch.Tensor)]
        devices = {t.device for t in tensors}
        if len(devices) > 1:
            raise ValueError(
                "torch_kernel: expected all tensors on one device, "
                f"got {sorted(map(str, devices))}."
            )
        if any(_is_64bit(t.dtype) for t in tensors) and not jax.config.jax_enable_x64:
            with jax.enable_x64(True):
                return self._call(jax, leaves, tree, static)
        return self._call(jax, leaves, tree, static)

    def _call(self, jax, leaves, tree, static):
        import torch

        leaves = [
            torch_to_jax(x, name=f"argument {i}") if isinstance(x, torch.Tensor) else x
            for i, x in enumerate(leaves)
        ]
        args, kwargs = jax.tree_util.tree_unflatten(tree, leaves)
        out = self.jitted(*args, **kwargs, **static)
        return jax.tree_util.tree_map(jax_to_torch, out)


def torch_kernel(fn: Callable[..., Any], *, static_argnames: Sequence[str] = ()) -> TorchKernel:
    """Run the JAX function ``fn`` (compiled with ``jax.jit``) on torch tensors.

    Torch tensors anywhere in the arguments (pytrees allowed) are viewed as JAX arrays on the
    same device without copying (a non-contiguous, conjugated or negated tensor is first made
    plain, which copies); results come back as torch tensors viewing JAX's buffers. The function
    is compiled once per shapes, dtypes and values of ``static_argnames`` and then reused.
    When an input is float64/int64 and x64 is off, the call runs inside a scoped
    ``jax.enable_x64(True)`` (Python float constants created inside ``fn`` are then 64-bit).
    No gradients: wrap the call in a ``torch.autograd.Function``.

    Args:
        fn: a function of JAX arrays returning a JAX array or a pytree of them.
        static_argnames: keyword arguments passed to ``jax.jit`` as static (hashable).

    Returns:
        A :class:`TorchKernel`; ``kernel(*tensors, **kwargs)`` returns torch tensors.

    Example:
        >>> double = torch_kernel(lambda x: 2 * x)
        >>> double(torch.ones(3))
        tensor([2., 2., 2.])
    """
    return TorchKernel(fn, static_argnames)
