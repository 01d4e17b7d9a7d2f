"""Audit rows of jax_api: the operations get the same argument batteries as torch_api's (through
the ``JAX`` adapter, float32 in JAX's default mode), plus their own edge cases."""

from __future__ import annotations

import numpy as np
import torch

from tests import references

from .batteries import JAX, dense_battery, sparse_battery
from .inputs import inconsistent, mat, rhs, with_nan
from .table import TE, VE, Raises, Row, c, converge_warn, equals, err, propagates, shaped

F32 = np.float32
TOL32 = {"rtol": 1e-5, "atol": 1e-6}  # float32 results against float64 references


def _np(call_args):
    """The call's arguments as dense NumPy arrays (sparse ones densified)."""
    return [np.asarray(a.todense()) if hasattr(a, "todense") else np.asarray(a)
            for a in call_args]


def _ref(fn, **tol):
    return lambda call: fn(*_np(call.args), **tol)


def _empty(n):
    """An ``(n, n)`` float32 BCSR without stored entries."""
    import jax.numpy as jnp
    from jax.experimental.sparse import BCSR

    return BCSR((jnp.zeros(0, jnp.float32), jnp.zeros(0, jnp.int32),
                 jnp.zeros(n + 1, jnp.int32)), shape=(n, n))


def _zeros(*shape):
    return JAX.dense(torch.zeros(shape, dtype=torch.float64))


def rows() -> list[Row]:
    """Rows of the jax_api operations, solvers, models and constructors."""
    return _operation_rows() + _solver_rows() + _other_rows() + _index_rows() + _jit_rows()


# --------------------------------------------------- broken indices, eagerly and under jax.jit
def _jitted(fn, **static):
    """``fn(*arrays, **static)`` compiled by ``jax.jit`` with every array argument traced (run
    to completion, so a run-time check has reported before the row is judged)."""
    import jax

    f = jax.jit(lambda *args: fn(*args, **static))
    return lambda *args: jax.block_until_ready(f(*args))


def _bad_sparse(case: str):
    """3 x 3 float32 matrices with malformed indices (the general matrix's shape)."""
    import jax.numpy as jnp
    from jax.experimental.sparse import BCOO, BCSR

    data = jnp.asarray([2.0, 1.0, 3.0], jnp.float32)
    i32 = lambda x: jnp.asarray(x, jnp.int32)
    if case == "negative BCOO index":
        return BCOO((data, i32([[0, 0], [-1, 1], [2, 2]])), shape=(3, 3))
    if case == "BCSR column index past the shape":
        return BCSR((data, i32([0, 7, 2]), i32([0, 1, 2, 3])), shape=(3, 3))
    if case == "BCSR indptr decreasing":
        return BCSR((data, i32([0, 1, 2]), i32([0, 2, 1, 3])), shape=(3, 3))
    raise ValueError(case)


INDEX_CASES = {
    "negative BCOO index": "non-negative indices",
    "BCSR column index past the shape": r"column indices in \[0, 3\)",
    "BCSR indptr decreasing": "indptr rising from 0",
}


def _false_flags(D: torch.Tensor):
    """``D`` as a BCOO whose entries are reversed but flagged sorted and unique."""
    from jax.experimental.sparse import BCOO

    S = JAX.sparse(D, "bcoo")
    return BCOO((S.data[::-1], S.indices[::-1]), shape=S.shape, indices_sorted=True,
                unique_indices=True)


def _jit_error(arg: str, match: str):
    """Under ``jit`` the check runs with the program: JAX's run-time error carries the message."""
    from jax.errors import JaxRuntimeError

    return Raises(JaxRuntimeError, arg, match,
                  f"when the program runs, carrying `{arg}: expected {match}...`")


def _index_rows() -> list[Row]:
    import jax_api as J

    dn = JAX.dense
    ops = (("sparse_mm", J.sparse_mm, {}),
           ("sparse_triangular_solve", J.sparse_triangular_solve, {"upper": False}),
           ("sparse_generic_solve", J.sparse_generic_solve, {}),
           ("sparse_generic_lstsq", J.sparse_generic_lstsq, {}))
    out: list[Row] = []
    for name, fn, kw in ops:
        t = f"jax_api.{name}"
        for case, match in INDEX_CASES.items():
            out += [
                Row(t, f"A: {case}",
                    lambda fn=fn, kw=kw, case=case: c(fn, _bad_sparse(case), dn(rhs()), **kw),
                    err(VE, "A", match)),
                Row(t, f"under jax.jit: A: {case}",
                    lambda fn=fn, kw=kw, case=case: c(_jitted(fn, **kw), _bad_sparse(case),
                                                      dn(rhs())),
                    _jit_error("A", match)),
            ]
    return out


def _jit_rows() -> list[Row]:
    import jax.numpy as jnp

    import jax_api as J

    sp, dn = JAX.sparse, JAX.dense
    L = mat("lower")
    tri = J.sparse_triangular_solve
    out = [
        Row("jax_api.sparse_mm", "under jax.jit: indices_sorted/unique_indices flags false",
            lambda: c(_jitted(J.sparse_mm), _false_flags(mat()), dn(rhs())),
            equals(lambda call: mat().numpy() @ rhs().numpy(),
                   "correct result (the flags are not trusted)", **TOL32)),
        Row("jax_api.sparse_mm", "indices_sorted/unique_indices flags false",
            lambda: c(J.sparse_mm, _false_flags(mat()), dn(rhs())),
            equals(lambda call: mat().numpy() @ rhs().numpy(),
                   "correct result (the flags are not trusted)", **TOL32)),
        Row("jax_api.sparse_triangular_solve", "under jax.jit: A not triangular",
            lambda: c(_jitted(tri, upper=False), sp(mat()), dn(rhs())),
            _jit_error("A", "a lower-triangular matrix")),
        Row("jax_api.sparse_triangular_solve",
            "under jax.jit: diagonal stored with unitriangular=True",
            lambda: c(_jitted(tri, upper=False, unitriangular=True), sp(L), dn(rhs())),
            _jit_error("A", "a strictly triangular matrix")),
        Row("jax_api.sparse_triangular_solve", "under jax.jit: a diagonal entry missing",
            lambda: c(_jitted(tri, upper=False), sp(L - torch.diag(torch.tensor([0.0, 3, 0]))),
                      dn(rhs())),
            _jit_error("A", "a nonzero stored diagonal")),
        Row("jax_api.sparse_triangular_solve",
            "under jax.jit: check=False (the documented opt-out) on a valid factor",
            lambda: c(_jitted(tri, upper=False, check=False), sp(L), dn(rhs())),
            equals(_ref(np.linalg.solve), "correct result (a valid factor, unchecked)",
                   **TOL32)),
    ]
    t = "jax_api.SparseMultivariateNormal.log_prob"
    x = jnp.asarray([0.5, -1.0, 2.0], jnp.float32)
    for param, D, what, match in (
        ("precision_tril", mat("spd"), "not lower triangular", "a lower-triangular factor"),
        ("scale_tril", L - 2 * torch.diag(torch.diag(L)), "with a negative diagonal",
         "every diagonal entry stored and positive"),
    ):
        def log_prob(F, x, param=param):
            return J.SparseMultivariateNormal(jnp.zeros(3, jnp.float32), validate_args=True,
                                              **{param: F}).log_prob(x)

        out.append(Row(t, f"under jax.jit: {param} {what} (validate_args=True)",
                       lambda D=D, f=log_prob: c(_jitted(f), sp(D), x), _jit_error(param, match)))
    a, b = jnp.ones((3, 2), jnp.float32), jnp.ones((2, 2, 4), jnp.float32)
    out += [
        Row("jax_api.segment_mm", "under jax.jit: seglen_a does not sum to a's rows",
            lambda: c(_jitted(J.segment_mm), a, b, jnp.asarray([1, 1])),
            _jit_error("seglen_a", "lengths summing to a's 3 rows")),
        Row("jax_api.segment_mm", "under jax.jit: seglen_a has a negative length",
            lambda: c(_jitted(J.segment_mm), a, b, jnp.asarray([4, -1])),
            _jit_error("seglen_a", "non-negative lengths")),
        Row("jax_api.gather_mm", "under jax.jit: idx_b out of range",
            lambda: c(_jitted(J.gather_mm), a, b, jnp.asarray([0, 2, -1])),
            _jit_error("idx_b", r"indices in \[0, 2\)")),
    ]
    return out


def _operation_rows() -> list[Row]:
    import jax_api as J

    sp, dn = JAX.sparse, JAX.dense
    out: list[Row] = []
    # (name, call(A, B), valid A, rows of B, reference on dense NumPy, NaN in B expectation)
    ops = (
        ("sparse_mm", lambda A, B: c(J.sparse_mm, A, B), mat(), 3,
         references.stored_product, "propagates"),
        ("sparse_triangular_solve",
         lambda A, B: c(J.sparse_triangular_solve, A, B, upper=False), mat("lower"), 3,
         np.linalg.solve, "propagates"),
        ("sparse_generic_solve", lambda A, B: c(J.sparse_generic_solve, A, B), mat("spd"), 3,
         np.linalg.solve, "warns"),
        ("sparse_generic_lstsq", lambda A, B: c(J.sparse_generic_lstsq, A, B), mat("tall"), 4,
         lambda A, B: np.linalg.lstsq(A, B, rcond=None)[0], "warns"),
    )
    for name, call, D, m, ref, on_nan in ops:
        t = f"jax_api.{name}"
        out += sparse_battery(t, "A", lambda A, call=call, m=m: call(A, dn(rhs(m))), D,
                              adapter=JAX)
        out += dense_battery(t, "B", lambda B, call=call, D=D: call(sp(D), B), rhs(m),
                             adapter=JAX, rank_bad=rhs(m).expand(2, m, 2).clone(),
                             rows_bad=rhs(7 - m), match_name="A")
        nan = (propagates(_ref(ref), **TOL32) if on_nan == "propagates" else converge_warn())
        out += [
            Row(t, "B has a NaN", lambda call=call, D=D, m=m: call(sp(D), dn(with_nan(rhs(m)))),
                nan),
            Row(t, "correct on BCOO input",
                lambda call=call, D=D, m=m: call(sp(D, "bcoo"), dn(rhs(m))),
                equals(_ref(ref), "correct result (dense reference)", rtol=1e-4, atol=1e-5)),
        ]

    t = "jax_api.sparse_mm"
    out += [
        Row(t, "empty: n = 0", lambda: c(J.sparse_mm, _empty(0), _zeros(0, 2)), shaped((0, 2))),
        Row(t, "empty: nnz = 0", lambda: c(J.sparse_mm, _empty(3), dn(rhs())),
            equals(lambda call: np.zeros((3, 2), F32))),
        Row(t, "A has a NaN entry", lambda: c(J.sparse_mm, sp(with_nan(mat())), dn(rhs())),
            propagates(_ref(references.stored_product), **TOL32)),
    ]
    t = "jax_api.sparse_triangular_solve"
    L = mat("lower")
    out += [
        Row(t, "A not triangular",
            lambda: c(J.sparse_triangular_solve, sp(mat()), dn(rhs()), upper=False),
            err(VE, "A", "lower-triangular")),
        Row(t, "A lower, upper=True",
            lambda: c(J.sparse_triangular_solve, sp(L), dn(rhs()), upper=True),
            err(VE, "A", "upper-triangular")),
        Row(t, "diagonal stored with unitriangular=True",
            lambda: c(J.sparse_triangular_solve, sp(L), dn(rhs()), upper=False,
                      unitriangular=True),
            err(VE, "A", "unitriangular=True")),
        Row(t, "empty: n = 0", lambda: c(J.sparse_triangular_solve, _empty(0), _zeros(0)),
            shaped((0,))),
        Row(t, "empty: nnz = 0 with unitriangular=True",
            lambda: c(J.sparse_triangular_solve, _empty(3), dn(rhs(3, None)), unitriangular=True),
            equals(lambda call: rhs(3, None).numpy(), "correct result (the identity solve)")),
    ]
    t = "jax_api.sparse_generic_solve"
    out += [
        Row(t, "A not square", lambda: c(J.sparse_generic_solve, sp(mat("tall")), dn(rhs(4))),
            err(VE, "A", "square")),
        Row(t, "solve is not callable",
            lambda: c(J.sparse_generic_solve, sp(mat("spd")), dn(rhs()), solve="minres"),
            err(TE, "solve", "callable")),
        Row(t, "singular A, inconsistent B",
            lambda: c(J.sparse_generic_solve, sp(mat("singular")), dn(inconsistent())),
            converge_warn(), isolate=True),
        Row(t, "empty: n = 0", lambda: c(J.sparse_generic_solve, _empty(0), _zeros(0)),
            shaped((0,))),
    ]
    t = "jax_api.sparse_generic_lstsq"
    out += [
        Row(t, "A wide (m < n)",
            lambda: c(J.sparse_generic_lstsq, sp(mat("tall").T.contiguous()), dn(rhs())),
            err(VE, "A", "tall")),
        Row(t, "lstsq is not callable",
            lambda: c(J.sparse_generic_lstsq, sp(mat("tall")), dn(rhs(4)), lstsq=3),
            err(TE, "lstsq", "callable")),
    ]
    return out


def _solver_rows() -> list[Row]:
    import jax_api as J

    sp, dn = JAX.sparse, JAX.dense
    out: list[Row] = []
    for name in ("cg", "minres", "bicgstab", "gmres", "lsmr"):
        t, fn = f"jax_api.{name}", getattr(J, name)
        out += [
            Row(t, "A is a list", lambda fn=fn: c(fn, mat("spd").tolist(), dn(rhs(3, None))),
                err(TE, "A", "BCOO/BCSR")),
            Row(t, "B has 4 rows", lambda fn=fn: c(fn, sp(mat("spd")), _zeros(4)),
                err(VE, "B", "rows")),
        ]
        if name != "lsmr":  # LSMR gives the least-squares solution instead
            out.append(Row(t, "singular A, inconsistent B (maxiter=30)",
                           lambda fn=fn: c(fn, sp(mat("singular")), dn(inconsistent()),
                                           maxiter=30), converge_warn()))
    out.append(Row("jax_api.cg", "B has a NaN (maxiter=30)",
                   lambda: c(J.cg, sp(mat("spd")), dn(with_nan(rhs(3, None), 0)), maxiter=30),
                   converge_warn()))
    return out


def _other_rows() -> list[Row]:
    import jax
    import jax.numpy as jnp

    import jax_api as J

    sp = JAX.sparse
    out: list[Row] = []
    a, b = jnp.ones((3, 2), jnp.float32), jnp.ones((2, 2, 4), jnp.float32)
    t = "jax_api.segment_mm"
    out += [
        Row(t, "a is a list", lambda: c(J.segment_mm, [[1.0, 2.0]] * 3, b, jnp.asarray([1, 2])),
            err(TE, "a", "dense jax.Array")),
        Row(t, "seglen_a has a negative length",
            lambda: c(J.segment_mm, a, b, jnp.asarray([4, -1])),
            err(VE, "seglen_a", "non-negative")),
        Row(t, "seglen_a does not sum to a's rows",
            lambda: c(J.segment_mm, a, b, jnp.asarray([1, 1])),
            err(VE, "seglen_a", "summing to a's 3 rows")),
        Row(t, "seglen_a is float", lambda: c(J.segment_mm, a, b, jnp.asarray([1.0, 2.0])),
            err(VE, "seglen_a", "integer")),
        Row(t, "a has NaN and inf",
            lambda: c(J.segment_mm, a.at[0, 0].set(jnp.nan).at[2, 1].set(jnp.inf), b,
                      jnp.asarray([1, 2])),
            propagates(_ref(references.segment_mm), **TOL32)),
    ]
    t = "jax_api.gather_mm"
    out += [
        Row(t, "b is 2-D", lambda: c(J.gather_mm, a, b[0], jnp.asarray([0, 1, 1])),
            err(VE, "b", "3-D")),
        Row(t, "idx_b out of range", lambda: c(J.gather_mm, a, b, jnp.asarray([0, 2, 1])),
            err(VE, "idx_b", r"indices in \[0, 2\)")),
        Row(t, "a has NaN and inf",
            lambda: c(J.gather_mm, a.at[0, 0].set(jnp.nan).at[2, 1].set(jnp.inf), b,
                      jnp.asarray([1, 0, 1])),
            propagates(_ref(references.gather_mm), **TOL32)),
    ]
    t = "jax_api.sparse_logsumexp"
    out += sparse_battery(t, "input", lambda A: c(J.sparse_logsumexp, A, 1), mat(), adapter=JAX,
                          csc_ok=True)
    out += [
        Row(t, "dim out of range", lambda: c(J.sparse_logsumexp, sp(mat()), 2),
            err(VE, "dim", r"\[-2, 1\]")),
        Row(t, "dim repeated", lambda: c(J.sparse_logsumexp, sp(mat()), (1, -1)),
            err(VE, "dim", "at most once")),
        Row(t, "dim is a string", lambda: c(J.sparse_logsumexp, sp(mat()), "1"),
            err(TE, "dim", "int")),
        Row(t, "input has a NaN entry", lambda: c(J.sparse_logsumexp, sp(with_nan(mat())), 1),
            propagates(lambda call: references.logsumexp(with_nan(mat()), 1), **TOL32)),
    ]
    t = "jax_api.sparse_bidir_logsumexp"
    out += [
        Row(t, "input is a list", lambda: c(J.sparse_bidir_logsumexp, mat().tolist()),
            err(TE, "input", "BCOO or BCSR")),
        Row(t, "output_layout unknown",
            lambda: c(J.sparse_bidir_logsumexp, sp(mat()), output_layout="list"),
            err(VE, "output_layout", "one of")),
        Row(t, "keepdim=True with output_layout='padded'",
            lambda: c(J.sparse_bidir_logsumexp, sp(mat()), keepdim=True, output_layout="padded"),
            err(VE, "keepdim", "output_layout='tuple'")),
    ]
    t = "jax_api.PairwiseEncoder"
    out += [
        Row(t, "radius 0", lambda: c(J.PairwiseEncoder, 0, (1, 3)), err(VE, "radius", ">= 1")),
        Row(t, "volume_shape without a spatial dimension", lambda: c(J.PairwiseEncoder, 1, (3,)),
            err(VE, "volume_shape", "at least 2")),
        Row(t, "channel_voxel_relation unknown",
            lambda: c(J.PairwiseEncoder, 1, (2, 3), channel_voxel_relation="all"),
            err(VE, "channel_voxel_relation", "one of")),
        Row(t + ".__call__", "values of the wrong shape",
            lambda: c(J.PairwiseEncoder(1, (1, 3)), jnp.ones((5, 1, 3), jnp.float32)),
            err(VE, "values", "len")),
        Row(t + ".__call__", "values is a list", lambda: c(J.PairwiseEncoder(1, (1, 3)), [1.0]),
            err(TE, "values", "dense jax.Array")),
    ]
    spd = mat("spd")
    t = "jax_api.SparseMultivariateNormal"
    out += [
        Row(t, "neither scale_tril nor precision_tril",
            lambda: c(J.SparseMultivariateNormal, jnp.zeros(3)),
            err(VE, "scale_tril, precision_tril", "exactly one")),
        Row(t, "loc is a list", lambda: c(J.SparseMultivariateNormal, [0.0] * 3,
                                          scale_tril=sp(torch.tril(spd))),
            err(TE, "loc", "dense jax.Array")),
        Row(t, "scale_tril not lower triangular (validate_args=True)",
            lambda: c(J.SparseMultivariateNormal, _zeros(3), scale_tril=sp(spd),
                      validate_args=True),
            err(VE, "scale_tril", "lower-triangular")),
    ]
    key = jax.random.PRNGKey(0)
    out += [
        Row("jax_api.rand_sparse", "nnz larger than the matrix",
            lambda: c(J.rand_sparse, key, (2, 2), 5), err(VE, "nnz", "4")),
        Row("jax_api.make_spd_sparse", "n = 0", lambda: c(J.make_spd_sparse, key, 0),
            err(VE, "n", "positive")),
        Row("jax_api.mean_hotelling_t2_test", "n <= d",
            lambda: c(J.mean_hotelling_t2_test, jnp.zeros((1, 2)), jnp.zeros((1, 2)),
                      jnp.eye(2)[None], 2), err(VE, "n", ">= 3")),
        Row("jax_api.cov_nagao_test", "n = 1",
            lambda: c(J.cov_nagao_test, jnp.eye(2)[None], jnp.eye(2)[None], 1),
            err(VE, "n", ">= 2")),
    ]
    return out
