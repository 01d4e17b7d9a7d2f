"""The one error-message template of the project: ``"{argument}: expected ..., got ..."``.

:func:`describe` names what a caller passed (a torch tensor, a JAX array or BCOO/BCSR, a NumPy
array, a SciPy sparse array, anything else) without importing any framework: a framework's
types are looked up only if it is already imported, since an object of that framework can only
exist then.
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np

_TORCH_LAYOUTS = {
    "torch.strided": "dense (strided)",
    "torch.sparse_coo": "sparse COO",
    "torch.sparse_csr": "sparse CSR",
    "torch.sparse_csc": "sparse CSC",
    "torch.sparse_bsr": "sparse BSR",
    "torch.sparse_bsc": "sparse BSC",
}


def layout_name(layout: object) -> str:
    """``"sparse CSR"`` for ``torch.sparse_csr`` (any other object: its ``str``)."""
    return _TORCH_LAYOUTS.get(str(layout), str(layout))


def _instance(x: object, module: str, *names: str) -> bool:
    mod = sys.modules.get(module)
    return mod is not None and any(isinstance(x, getattr(mod, n, ())) for n in names)


def _plural(count: int, what: str) -> str:
    return f"{count} {what}{'s' if count > 1 else ''}"


def describe(x: object) -> str:
    """A short description of ``x`` for error messages.

    Example: ``describe(torch.eye(2))`` is ``"a dense (strided) tensor of shape (2, 2),
    torch.float32 on cpu"``; ``describe("a")`` is ``"an object of type builtins.str"``.
    """
    if _instance(x, "torch", "Tensor"):
        layout = layout_name(x.layout)
        return f"a {layout} tensor of shape {tuple(x.shape)}, {x.dtype} on {x.device}"
    if _instance(x, "jax.experimental.sparse", "BCOO", "BCSR"):
        extra = [_plural(n, f"{kind} dim") for n, kind in ((x.n_batch, "batch"),
                                                             (x.n_dense, "dense")) if n]
        more = f" ({', '.join(extra)})" if extra else ""
        return f"a {type(x).__name__} matrix of shape {tuple(x.shape)}{more}, {x.dtype}"
    if _instance(x, "jax", "Array"):
        return f"a dense array of shape {tuple(x.shape)}, {x.dtype}"
    if isinstance(x, np.ndarray):
        return f"a NumPy array of shape {x.shape}, {x.dtype}"
    if _instance(x, "scipy.sparse", "sparray", "spmatrix"):
        return f"a SciPy sparse {type(x).__name__} of shape {x.shape}, {x.dtype}"
    if _instance(x, "cupy", "ndarray"):
        return f"a CuPy array of shape {x.shape}, {x.dtype}"
    return f"an object of type {type(x).__module__}.{type(x).__qualname__}"


def message(argument: str, expected: str, got: object) -> str:
    """``"{argument}: expected {expected}, got {got}."``; ``got`` that is not a string is
    :func:`describe`-d."""
    got_s = got if isinstance(got, str) else describe(got)
    return f"{argument}: expected {expected}, got {got_s}."


def type_error(argument: str, got: object, expected: str) -> TypeError:
    """A TypeError (wrong type or layout) in the template; ``got`` is always described."""
    return TypeError(f"{argument}: expected {expected}, got {describe(got)}.")


def value_error(argument: str, got: object, expected: str) -> ValueError:
    """A ValueError (wrong shape, dtype, value) in the template; a string ``got`` is kept."""
    return ValueError(message(argument, expected, got))


GAUSSIAN_MATRICES = ("precision_matrix", "covariance_matrix")


def exactly_one_parameterisation(named: list) -> str:
    """``SparseMultivariateNormal``'s message when ``named`` (the factor / matrix arguments
    given) is not exactly one of the four (both frontends)."""
    four = "scale_tril, precision_tril, precision_matrix, covariance_matrix"
    if not named:
        return (f"scale_tril, precision_tril: expected exactly one of them, got neither (or one "
                f"of precision_matrix, covariance_matrix: exactly one of {four}).")
    if named == ["scale_tril", "precision_tril"]:
        return (f"scale_tril, precision_tril: expected exactly one of them, got both (exactly "
                f"one of {four}).")
    return (f"{four}: expected exactly one of them, got "
            f"{'both' if len(named) == 2 else 'several'} ({', '.join(named)}).")


@contextlib.contextmanager
def renamed(name: str):
    """Re-raise a factorisation's ValueErrors (which name ``A``) naming ``name`` instead."""
    try:
        yield
    except ValueError as e:
        msg = str(e)
        if msg.startswith("A"):
            raise ValueError(name + msg[1:]) from None
        raise
