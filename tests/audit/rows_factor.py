"""Audit rows of the direct factorisations (issue 20), in both frontends: the argument batteries
plus the matrices each factorisation must refuse (not symmetric, not positive definite,
singular, NaN) and a correct result on a good one."""

from __future__ import annotations

import numpy as np
import torch

from .batteries import JAX, TORCH, dense_battery, sparse_battery
from .inputs import F64, mat, rhs, sp, with_nan
from .table import VE, Result, Row, assert_same, c, equals, err

TOL32 = {"rtol": 1e-5, "atol": 1e-6}


def _refusals(t, call, sparse, cholesky: bool) -> list[Row]:
    """``call(A)`` on the matrices the factorisation must refuse; ``sparse`` builds A."""
    out = [
        Row(t, "A is singular", lambda: call(sparse(mat("singular"))),
            err(VE, "A", "nonsingular" if not cholesky else "positive definite|nonsingular")),
        Row(t, "A has a NaN entry", lambda: call(sparse(with_nan(mat("spd"), (1, 1)))),
            err(VE, "A", "finite values")),
    ]
    if cholesky:
        out += [
            Row(t, "A is not symmetric", lambda: call(sparse(mat("general"))),
                err(VE, "A", "symmetric positive definite")),
            Row(t, "A is symmetric indefinite", lambda: call(sparse(mat("indefinite"))),
                err(VE, "A", "not positive definite")),
        ]
    return out


def _frontend(prefix: str, ops, adapter, sparse, dense, tol) -> list[Row]:
    out: list[Row] = []
    for name, kind in (("sparse_cholesky_solve", "spd"), ("sparse_lu_solve", "general")):
        t, op = f"{prefix}.{name}", getattr(ops, name)
        D = mat(kind)
        out += sparse_battery(t, "A", lambda A, op=op: c(op, A, dense(rhs())), D, adapter=adapter)
        out += dense_battery(t, "B", lambda B, op=op, D=D: c(op, sparse(D), B), rhs(),
                             adapter=adapter, rows_bad=rhs(4), match_name="A")
        out += _refusals(t, lambda A, op=op: c(op, A, dense(rhs())), sparse, kind == "spd")
        out.append(Row(t, "good A", lambda op=op, D=D: c(op, sparse(D), dense(rhs())),
                       equals(lambda call, D=D: np.linalg.solve(D.numpy(), rhs().numpy()),
                              **tol)))
    for name, kind in (("sparse_logdet", "spd"), ("sparse_slogdet", "general")):
        t, op = f"{prefix}.{name}", getattr(ops, name)
        D = mat(kind)
        out += sparse_battery(t, "A", lambda A, op=op: c(op, A), D, adapter=adapter)
        out += _refusals(t, lambda A, op=op: c(op, A), sparse, kind == "spd")
        ref = np.linalg.slogdet(D.numpy())
        want = ref[1] if name == "sparse_logdet" else (ref[0], ref[1])
        out.append(Row(t, "good A", lambda op=op, D=D: c(op, sparse(D)),
                       Result(lambda got, call, want=want: assert_same(got, want, **tol),
                              "correct result (dense reference)")))
    return out


def rows() -> list[Row]:
    """Rows of torch_api's and jax_api's direct solves and log-determinants."""
    import torch_api

    out = _frontend("torch_api", torch_api, TORCH, sp, lambda x: x, {}) + preconditioner_rows()
    try:
        import jax_api
    except ImportError:
        return out
    return out + _frontend("jax_api", jax_api, JAX, JAX.sparse, JAX.dense, TOL32)





def preconditioner_rows() -> list[Row]:
    """torch_api.utils.jacobi / ic0 / ilu0: the sparse battery, the refusals, a correct M^{-1}."""
    from torch_api import utils

    out: list[Row] = []
    zero_diag = torch.tensor([[0.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 5.0]], dtype=F64)
    for name, kind in (("jacobi", "spd"), ("ic0", "spd"), ("ilu0", "general")):
        t, op = f"torch_api.utils.{name}", getattr(utils, name)
        out += sparse_battery(t, "A", lambda A, op=op: c(op, A), mat(kind))
        out.append(Row(t, "A has a zero diagonal entry", lambda op=op: c(op, sp(zero_diag)),
                       err(VE, "A", "diagonal|pivot")))
        if name != "jacobi":
            out.append(Row(t, "A is not square",
                           lambda op=op: c(op, sp(torch.ones(3, 4, dtype=F64))),
                           err(VE, "A", "square")))
    D = mat("general")
    out.append(Row("torch_api.utils.jacobi", "good A",
                   lambda: c(lambda A: utils.jacobi(A)(rhs()), sp(D)),
                   equals(lambda call: rhs() / torch.diagonal(D)[:, None])))
    return out
