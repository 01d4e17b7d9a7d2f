"""Dense arrays between torch, JAX, NumPy and CuPy, zero-copy through DLPack where layout allows.

A conversion is three steps: find what stops the buffer from being shared (``obstacle``), copy it
in the source framework if something does (or if ``copy=True``), then import it zero-copy into the
target (``_SHARE``). Imports hand the *array object* to the consumer's ``from_dlpack``, so the
consumer passes its stream to the producer's ``__dlpack__(stream=...)``: GPU ordering needs no
device-wide synchronize.

Traps handled here: torch's negative/conjugate bits (DLPack would drop the sign or refuse), negative
or non-compact strides (torch aborts on negative strides, JAX refuses non-compact ones), JAX-on-CPU
64-byte alignment, 64-bit dtypes entering JAX while x64 is off (JAX would truncate silently), JAX
tracers, and tensors requiring grad (detached).
"""

from __future__ import annotations

import numpy as np
import torch

from ._optional import loaded, require
from .internal.messages import message

_WIDE = {"int64", "uint64", "float64", "complex128"}


def framework(x) -> str | None:
    """``"torch"``, ``"jax"``, ``"numpy"`` or ``"cupy"`` for a dense array, else None."""
    if isinstance(x, torch.Tensor):
        return "torch" if x.layout == torch.strided else None
    if isinstance(x, np.ndarray):
        return "numpy"
    jax = loaded("jax")
    if jax is not None and isinstance(x, jax.Array):
        return "jax"
    cupy = loaded("cupy")
    if cupy is not None and isinstance(x, cupy.ndarray):
        return "cupy"
    return None


def refuse(copy, name: str, reason: str) -> None:
    """Raise the ``copy=False`` error for component ``name``; return quietly otherwise."""
    if copy is False:
        raise ValueError(
            f"{name}: expected data that converts without a copy (copy=False), got data that "
            f"cannot because {reason}; pass copy=None (copy only when needed) or copy=True."
        )


def check_concrete(x, fn: str) -> None:
    """Reject JAX tracers: the converters work on concrete arrays only."""
    jax = loaded("jax")
    if jax is not None and isinstance(x, jax.core.Tracer):
        raise TypeError(
            f"{fn}: expected a concrete array (converters cannot run inside jax.jit/vmap/grad), "
            f"got a JAX tracer ({type(x).__name__}); to call torch code from traced JAX code use "
            "bridge.jax_kernel."
        )


def dtype_name(x) -> str:
    return str(x.dtype).removeprefix("torch.")


def check_x64(x, name: str) -> None:
    """TypeError if ``x`` is 64-bit and JAX's x64 mode is off (JAX would truncate it silently)."""
    dt = dtype_name(x)
    if dt not in _WIDE:
        return
    jax = require("jax")
    kept = jax.dtypes.canonicalize_dtype(np.dtype(dt))
    if kept != np.dtype(dt):
        raise TypeError(
            f"{name}: expected data JAX can hold while its 64-bit mode is disabled, got {dt} data "
            f"(JAX would silently truncate it to {kept}). Enable 64-bit mode for the call with "
            f"`with jax.enable_x64(True): ...` (or JAX_ENABLE_X64=1 before starting Python), or "
            f"cast to a 32-bit dtype first."
        )


# ---------------------------------------------------------------- inspecting a source buffer
def _strides(x, src: str) -> tuple[int, ...] | None:
    """Strides in elements (None when a byte stride is not a multiple of the item size)."""
    if src == "torch":
        return tuple(x.stride())
    if src == "jax":
        return tuple(int(np.prod(x.shape[i + 1 :])) for i in range(x.ndim))  # always C order
    size = x.itemsize
    if any(s % size for s in x.strides):
        return None
    return tuple(s // size for s in x.strides)


def is_compact(shape, strides) -> bool:
    """True when strides describe a dense buffer, possibly with permuted axes (what JAX accepts)."""
    if strides is None:
        return False
    if 0 in shape:
        return True
    dims = sorted((s, n) for s, n in zip(strides, shape, strict=True) if n != 1)
    expected = 1
    for s, n in dims:
        if s != expected:
            return False
        expected *= n
    return True


def _pointer(x, src: str) -> int:
    if src == "torch":
        return x.data_ptr()
    if src == "jax":
        return x.unsafe_buffer_pointer()
    return int(x.data.ptr) if src == "cupy" else x.__array_interface__["data"][0]


def numel(x) -> int:
    return x.numel() if isinstance(x, torch.Tensor) else int(x.size)


def on_gpu(x, src: str) -> bool:
    if src == "torch":
        return x.device.type != "cpu"
    if src == "jax":
        return any(d.platform != "cpu" for d in x.devices())
    return src == "cupy"


def obstacle(x, src: str, target: str) -> str | None:
    """Why ``x`` cannot be shared with ``target`` as it is (None when it can)."""
    if src == "torch" and target != "torch":
        if x.is_conj():
            return "it carries torch's conjugate bit (a lazy conjugation that must be materialised)"
        if x.is_neg():
            return "it carries torch's negative bit (a lazy negation that must be materialised)"
    if target == "numpy" and on_gpu(x, src):
        return "it lives in GPU memory and NumPy arrays live in host memory"
    if target == "cupy" and not on_gpu(x, src):
        return "it lives in host memory and CuPy arrays live in GPU memory"
    strides = _strides(x, src)
    if strides is None or (target != "numpy" and any(s < 0 for s in strides)):
        return f"its strides {getattr(x, 'strides', strides)} (negative or uneven) cannot be shared"
    if target == "jax" and not is_compact(tuple(x.shape), strides):
        return f"JAX needs a compact buffer; its strides are {strides} for shape {tuple(x.shape)}"
    if target == "jax" and not on_gpu(x, src) and numel(x) and _pointer(x, src) % 64:
        return "JAX on CPU needs 64-byte-aligned buffers and this one (e.g. a slice) is not aligned"
    return None


# ---------------------------------------------------------------- copying and sharing
def _aligned_empty(shape, dtype) -> np.ndarray:
    """A C-contiguous NumPy array starting on a 64-byte boundary (shareable with JAX on CPU)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def _fresh_numpy(x: np.ndarray) -> np.ndarray:
    out = _aligned_empty(x.shape, x.dtype)
    np.copyto(out, x)
    return out


def _fresh_torch(x: torch.Tensor, target: str) -> torch.Tensor:
    y = x.cpu() if target == "numpy" else x  # a copy off the GPU, else the tensor itself
    y = y.resolve_conj().resolve_neg()
    if y.data_ptr() == x.data_ptr() or not y.is_contiguous():
        y = y.clone(memory_format=torch.contiguous_format)
    return y


def _fresh(x, src: str, target: str):
    """A private, compact, aligned copy of ``x`` that ``target`` can share."""
    if src == "torch":
        return _fresh_torch(x, target)
    if src == "numpy":
        return _fresh_numpy(x)
    if src == "jax":
        return np.array(x) if target == "numpy" else require("jax.numpy").array(x, copy=True)
    cupy = require("cupy")
    return cupy.asnumpy(x) if target == "numpy" else cupy.array(x, copy=True, order="C")


def _to_cupy(x):
    cupy = require("cupy")
    if isinstance(x, np.ndarray):
        return cupy.asarray(x)  # host -> device: only reached when copying was allowed
    return cupy.from_dlpack(x)


def _to_jax(x):
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        # NumPy exports read-only arrays only to DLPack >= 1.0 consumers; torch is one, JAX is not.
        x = torch.from_dlpack(x)
    return require("jax.dlpack").from_dlpack(x)


_SHARE = {
    "torch": lambda x: torch.from_dlpack(x),
    "jax": _to_jax,
    "numpy": lambda x: x if isinstance(x, np.ndarray) else np.from_dlpack(x),
    "cupy": _to_cupy,
}

_SAME = {
    "torch": lambda x, copy: x.clone() if copy else x,
    "jax": lambda x, copy: require("jax.numpy").array(x, copy=True) if copy else x,
    "numpy": lambda x, copy: x.copy() if copy else x,
    "cupy": lambda x, copy: x.copy() if copy else x,
}


def convert(x, target: str, *, copy: bool | None = None, name: str = "array", fn: str = "bridge"):
    """Dense ``x`` (any framework) as a ``target`` array; see the module docstring for ``copy``."""
    src = framework(x)
    if src is None:
        check_concrete(x, fn)
        raise TypeError(message(
            fn, f"{name} to be a dense torch/JAX/NumPy/CuPy array or a COO/CSR sparse tensor", x
        ))
    check_concrete(x, fn)
    if src == "torch":
        if x.device.type == "meta" and target != "torch":
            raise ValueError(message(name, "a tensor holding data (on a CPU or CUDA device)",
                                     "a meta tensor"))
        x = x.detach()
    if target == "jax" and src != "jax":
        check_x64(x, name)
    if src == target:
        return _SAME[target](x, copy)
    reason = obstacle(x, src, target)
    if reason is not None:
        refuse(copy, name, reason)
    if copy or reason is not None:
        x = _fresh(x, src, target)
    return _SHARE[target](x)


def torch_to_jax(t: torch.Tensor, copy: bool | None = None, name: str = "array"):
    """Dense torch tensor -> JAX array on the same device, zero-copy when the layout allows."""
    return convert(t, "jax", copy=copy, name=name, fn="torch_to_jax")


def jax_to_torch(a, copy: bool | None = None, name: str = "array") -> torch.Tensor:
    """Dense JAX array -> torch tensor on the same device, zero-copy."""
    return convert(a, "torch", copy=copy, name=name, fn="jax_to_torch")
