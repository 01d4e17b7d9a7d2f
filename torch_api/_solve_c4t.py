"""``sparse_solve_c4t``: solve ``A X = B`` for torch tensors with SciPy (CPU) or CuPy (CUDA).

Only the flat forward and transposed solves live here; gradients come from
:func:`torch_api._solve.implicit_solve` (``B.grad = A^{-T} G``, ``A.grad`` on A's pattern).

CPU tensors are solved by ``scipy.sparse.linalg`` on a ``csr_array`` built on the torch buffers
themselves (NumPy views: no copy of values or indices). CUDA tensors are solved by
``cupyx.scipy.sparse.linalg`` on the same device, with the arrays shared through DLPack and the
work ordered on torch's current stream (no device-wide synchronisation). CuPy's sparse matrices
and cuSPARSE kernels take int32 indices (older CuPy casts larger ones silently, wrapping them):
int64 indices are cast explicitly after checking they fit, and a matrix whose indices do not
fit raises ``ValueError``. The transposed solve uses the cached CSR pattern of ``A^T`` from
:class:`~torch_api._pattern.Pattern`; for ``"spsolve_triangular"`` it flips ``lower``.

Iterative solvers (``cg``, ``cgs``, ``minres``, ``gmres``, SciPy-signature callables) solve each
column of ``B`` separately; ``spsolve``/``spsolve_triangular`` take the whole ``(n, k)``
right-hand side. A nonzero ``info`` from a solver is reported through
:func:`~bridge.internal.convergence.report_nonconvergence` with the true relative residual.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable

import numpy as np
import torch

from bridge.internal.options import resolve_solvers

from ._convergence import report_nonconvergence, residual_failures
from ._pattern import _INT32_MAX, Pattern
from ._pattern_cache import cached, operation
from ._solve import implicit_solve
from ._triangular_solve import check_triangular_csr
from ._validate import check_rhs, check_sparse

ITERATIVE = ("cg", "cgs", "minres", "gmres")
DIRECT = ("spsolve", "spsolve_triangular")
NAMES = ITERATIVE + DIRECT
_TRIANGULAR_OPTIONS = ("lower", "unit_diagonal")
_TOLERANCES = ("tol", "tolerance", "atol", "rtol", "maxiter", "matvec_max")


def solver_keywords(fn: Callable, kw: dict, direct: bool) -> dict:
    """torchsparsegradutils' keywords for a named SciPy/CuPy solver: a direct solver ignores
    the iteration options; an iterative one takes the relative tolerance under the name its
    signature has (SciPy's ``rtol``, CuPy's ``tol``), given as ``tol`` or ``rtol``."""
    if direct:
        return {k: v for k, v in kw.items() if k not in _TOLERANCES}
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no signature to read: pass the keywords as given
        return kw
    out = dict(kw)
    for given, wanted in (("tol", "rtol"), ("rtol", "tol")):
        if given in out and given not in params and wanted in params and wanted not in out:
            out[wanted] = out.pop(given)
    return out


# ------------------------------------------------------------------------------- backends
class _SciPy:
    """CPU: scipy.sparse.linalg on NumPy views of the torch buffers."""

    def __init__(self, device: torch.device):
        import scipy.sparse
        import scipy.sparse.linalg

        self.sparse, self.linalg = scipy.sparse, scipy.sparse.linalg

    def matrix(self, crow, col, values, n):
        return self.sparse.csr_array(
            (values.detach().numpy(), col.numpy(), crow.numpy()), shape=(n, n), copy=False
        )

    def array(self, t: torch.Tensor):
        return t.detach().numpy()

    def tensor(self, x, like: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).to(like.dtype)

    def context(self):
        return contextlib.nullcontext()


class _CuPy:
    """CUDA: cupyx.scipy.sparse.linalg on the same device, sharing buffers through DLPack."""

    def __init__(self, device: torch.device):
        from bridge._optional import require

        self.cupy = require("cupy")
        self.sparse = require("cupyx.scipy.sparse")
        self.linalg = require("cupyx.scipy.sparse.linalg")
        self.device = device

    def matrix(self, crow, col, values, n):
        if n > _INT32_MAX or int(crow[-1]) > _INT32_MAX:
            raise ValueError(
                f"A: CuPy's sparse solvers need int32 indices, but A has {n} rows and "
                f"{int(crow[-1])} stored entries (the int32 limit is {_INT32_MAX}); "
                f"solve it on the CPU (SciPy) instead."
            )
        crow, col = crow.to(torch.int32), col.to(torch.int32)  # no-op when already int32
        return self.sparse.csr_matrix(
            (self.array(values), self.array(col), self.array(crow)), shape=(n, n)
        )

    def array(self, t: torch.Tensor):
        from bridge._dense import convert

        return convert(t.detach(), "cupy", name="tensor")

    def tensor(self, x, like: torch.Tensor) -> torch.Tensor:
        from bridge._dense import convert

        return convert(self.cupy.ascontiguousarray(x), "torch", name="solution").to(like.dtype)

    def context(self):
        stream = torch.cuda.current_stream(self.device)
        stack = contextlib.ExitStack()
        stack.enter_context(self.cupy.cuda.Device(self.device.index))
        stack.enter_context(self.cupy.cuda.ExternalStream(stream.cuda_stream, self.device.index))
        return stack


def _canonical(A, pattern: Pattern, transposed: bool):
    """``A`` in canonical format (sorted columns, no duplicates). SciPy and CuPy would sort and
    sum duplicates in place, writing into the torch buffers, so a matrix that is not gets a
    copy. Whether it is depends on the indices alone: the O(nnz) test runs once per pattern."""
    kind = "canonical" + (" transposed" if transposed else "")
    if cached(kind, pattern.source, pattern.shape, lambda: bool(A.has_canonical_format)):
        A.has_canonical_format = True  # known: skip the solvers' own pass
        return A
    A = A.copy()
    A.sum_duplicates()
    return A


def backend_for(device: torch.device):
    """The solver backend for ``device``: SciPy on CPU, CuPy on CUDA (ImportError without it)."""
    if device.type == "cpu":
        return _SciPy(device)
    if device.type == "cuda":
        return _CuPy(device)
    raise ValueError(f"A: expected a CPU or CUDA tensor, got one on {device}.")


# ------------------------------------------------------------------------------ flat solve
def _scipy_flat_solve(solve, kwargs: dict, raise_on_failure: bool, transposed: bool) -> Callable:
    """A :data:`~torch_api._solve.FlatSolve` ``(pattern, values, Bf (n, p)) -> X`` running the
    SciPy/CuPy ``solve`` (a name or a callable) on ``A`` (``A^T`` when ``transposed``)."""
    name = solve if isinstance(solve, str) else getattr(solve, "__name__", repr(solve))
    label = name + (" (transposed)" if transposed else "")
    tol = kwargs.get("rtol", kwargs.get("tol", 1e-5))
    kw = dict(kwargs)
    if solve != "spsolve_triangular":  # e.g. a different solver for the backward pass
        for k in _TRIANGULAR_OPTIONS:
            kw.pop(k, None)
    else:
        kw.update(overwrite_A=False, overwrite_b=False)  # never let SciPy/CuPy write into A or B
        if transposed:
            kw["lower"] = not kw.get("lower", True)

    def flat(pattern: Pattern, values: torch.Tensor, Bf: torch.Tensor) -> torch.Tensor:
        be = backend_for(Bf.device)
        if transposed:
            crow, col, perm = pattern.transpose()
            values = values[perm]
        else:
            crow, col = pattern.crow, pattern.col
        n = crow.numel() - 1
        with be.context():
            A = _canonical(be.matrix(crow, col, values, n), pattern, transposed)
            fn, kws = solve, kw
            if isinstance(solve, str):
                fn = getattr(be.linalg, solve)
                kws = solver_keywords(fn, kw, solve == "spsolve")
            if solve in DIRECT:
                X = fn(A, be.array(Bf), **kws)
                X = be.tensor(X, Bf).reshape(Bf.shape)
                infos = []
            else:
                cols, infos = [], []
                for j in range(Bf.shape[1]):
                    out = fn(A, be.array(Bf[:, j]), **kws)
                    x, info = (out[0], out[1]) if isinstance(out, tuple) else (out, 0)
                    cols.append(be.tensor(x, Bf).reshape(-1))
                    infos.append(info)
                X = torch.stack(cols, 1) if cols else Bf.new_zeros(Bf.shape)
        bad = [int(i) for i in infos if isinstance(i, (int, np.integer)) and int(i) != 0]
        if bad or solve != "spsolve_triangular":  # info == 0 is not trusted: SciPy's minres
            # returns 0 on singular systems, spsolve only warns (MatrixRankWarning) and gives NaN
            matrix = torch.sparse_csr_tensor(crow, col, values, (n, n), check_invariants=False)
            atol = kwargs.get("atol", 0.0) if solve in ITERATIVE else 0.0
            atol = float(atol) if isinstance(atol, (int, float)) else 0.0
            worst, failed = residual_failures(matrix, X, Bf, tol, atol)
            if bad or failed:
                its = max(bad) if bad and max(bad) > 0 else kwargs.get("maxiter") or 0
                report_nonconvergence(label, its, worst, tol, raise_on_failure=raise_on_failure)
        return X

    return flat


def _check_triangle(A: torch.Tensor, lower: bool) -> None:
    """SciPy's ``spsolve_triangular`` reads a non-triangular matrix without complaint (a wrong
    answer): refuse entries on the wrong side of the diagonal, in O(nnz) once per pattern (the
    check depends on the indices alone). A missing or zero diagonal SciPy and CuPy refuse."""
    pattern, values = Pattern.of(A.detach())

    def check() -> bool:
        check_triangular_csr(pattern.crow, pattern.col, values, shape=tuple(A.shape),
                             upper=not lower, unitriangular=False, ignore_diagonal=True)
        return True  # only a pattern that passed is remembered

    cached(f"triangle lower={lower}", pattern.source, tuple(A.shape), check)


def _zero_diagonal(A: torch.Tensor) -> torch.Tensor:
    """``A`` with its stored diagonal multiplied by zero (differentiably): with
    ``unit_diagonal=True`` the solver ignores those values, so their gradient must be zero."""
    if A.layout == torch.sparse_coo:
        A = A.coalesce()
        idx, values = A.indices(), A.values()
        off = (idx[-2] != idx[-1]).to(values.dtype)
        return torch.sparse_coo_tensor(idx, values * off, A.shape, is_coalesced=True)
    pattern, _ = Pattern.of(A.detach())
    values = A.values()
    off = (pattern.rows() != pattern.col).to(values.dtype).reshape(values.shape)
    return torch.sparse_csr_tensor(A.crow_indices(), A.col_indices(), values * off, A.shape)


@operation
def sparse_solve_c4t(
    A: torch.Tensor,
    B: torch.Tensor,
    solve: str | Callable | None = None,
    transpose_solve: str | Callable | None = None,
    **kwargs,
) -> torch.Tensor:
    """Solve ``A X = B`` with SciPy (CPU) or CuPy (CUDA) solvers; ``A.grad`` keeps A's sparsity.

    Args:
        A: sparse COO or CSR, square ``(n, n)`` (or batched ``(b, n, n)``, solved as one
            block-diagonal system), float32/float64, on CPU or CUDA.
        B: dense ``(n,)`` or ``(n, k)`` (``(b, n)`` / ``(b, n, k)`` when batched), same dtype
            and device as ``A``.
        solve: ``"cg"``, ``"cgs"``, ``"minres"``, ``"gmres"``, ``"spsolve"`` (default, unless
            ``transpose_solve`` is given: a direct sparse LU, exact for any nonsingular ``A``) or
            ``"spsolve_triangular"``
            (options ``lower=True``, ``unit_diagonal=False``; with ``unit_diagonal=True`` the
            stored diagonal is ignored and gets a zero gradient), or a callable with SciPy's
            signature ``f(A, b, **kwargs) -> x`` or ``-> (x, info, ...)``, called per column
            with a SciPy ``csr_array`` (CPU) or a CuPy ``csr_matrix`` (CUDA).
        transpose_solve: the solver for ``A^T`` in the backward pass (default: ``solve``).
        **kwargs: passed to both solvers (e.g. ``tol``/``rtol``, ``atol``, ``maxiter``: the
            relative tolerance reaches a named solver under its own name, SciPy's ``rtol`` or
            CuPy's ``tol``; ``"spsolve"`` ignores the iteration options, as in
            torchsparsegradutils); ``raise_on_failure=True`` raises ConvergenceError instead
            of warning.

    Returns:
        ``X`` shaped like ``B``.

    Example:
        >>> A = (2 * torch.eye(3, dtype=torch.float64)).to_sparse_csr().requires_grad_()
        >>> sparse_solve_c4t(A, torch.ones(3, dtype=torch.float64), "cg").sum().backward()
    """
    A = check_sparse("A", A, square=True)
    B = check_rhs("B", B, A)
    raise_on_failure = bool(kwargs.pop("raise_on_failure", False))
    solve, transpose_solve = resolve_solvers(
        solve, transpose_solve, "spsolve", what="a solver name or a callable", names=NAMES
    )
    if any(k in kwargs for k in _TRIANGULAR_OPTIONS) and solve != "spsolve_triangular":
        raise ValueError(
            f"{sorted(set(kwargs) & set(_TRIANGULAR_OPTIONS))}: options of "
            f"'spsolve_triangular' only, got solve={solve!r}."
        )
    if A.device.type not in ("cpu", "cuda"):
        raise ValueError(f"A: expected a CPU or CUDA tensor, got one on {A.device}.")
    if "spsolve_triangular" in (solve, transpose_solve):
        _check_triangle(A, bool(kwargs.get("lower", True)))
    if solve == "spsolve_triangular" and kwargs.get("unit_diagonal", False):
        A = _zero_diagonal(A)
    return implicit_solve(
        A,
        B,
        _scipy_flat_solve(solve, kwargs, raise_on_failure, transposed=False),
        _scipy_flat_solve(transpose_solve, kwargs, raise_on_failure, transposed=True),
    )
