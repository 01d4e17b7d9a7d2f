"""Audit rows of the direct factorisations (issue 20), in both frontends: the argument batteries
plus the matrices each factorisation must refuse (not symmetric, not positive definite,
singular, NaN) and a correct result on a good one."""

from __future__ import annotations

import numpy as np

from .batteries import JAX, TORCH, dense_battery, sparse_battery
from .inputs import mat, rhs, sp, with_nan
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

    out = _frontend("torch_api", torch_api, TORCH, sp, lambda x: x, {})
    try:
        import jax_api
    except ImportError:
        return out
    return out + _frontend("jax_api", jax_api, JAX, JAX.sparse, JAX.dense, TOL32)



