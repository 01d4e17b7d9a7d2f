"""Audit rows of the torch_api operations (products, solves, grouped products, log-sum-exp)."""

from __future__ import annotations

import torch

from tests import references
from tests.references import stored_product

from .batteries import dense_battery, gpu_rows, sparse_battery
from .inputs import (
    F64,
    csr_out_of_range,
    dense_of,
    inconsistent,
    mat,
    math_log_sum_exp,
    minres_settings,
    rhs,
    solved,
    sp,
    unsorted_csr,
    utils,
    with_nan,
)
from .table import (
    TE,
    VE,
    Result,
    Row,
    assert_same,
    c,
    converge_warn,
    equals,
    err,
    propagates,
    shaped,
)


def _operand_batteries(t, op, A, B, *, rows_bad, rank_bad=None, **kw) -> list[Row]:
    """The sparse battery of ``op``'s argument A and the dense battery of its B, each around the
    valid call ``op(sp(A), B, **kw)`` (``A``, ``B``: dense float64)."""
    return (sparse_battery(t, "A", lambda A_: c(op, A_, B.clone(), **kw), A)
            + dense_battery(t, "B", lambda B_: c(op, sp(A), B_, **kw), B, rank_bad=rank_bad,
                            rows_bad=rows_bad, match_name="A"))


def rows() -> list[Row]:
    """Rows of the torch_api operations."""
    import torch_api as T

    out: list[Row] = []

    # sparse_mm ----------------------------------------------------------------------------
    t = "torch_api.sparse_mm"
    out += _operand_batteries(t, T.sparse_mm, mat(), rhs(), rows_bad=rhs(4),
                              rank_bad=rhs().expand(2, 2, 3, 2).clone())

    def mm_grad(out_, call):
        A, B = call.args
        assert_same(out_, mat() @ rhs())
        out_.sum().backward()
        assert_same(A.grad.to_dense(), (torch.ones(3, 2, dtype=F64) @ B.T) * (mat() != 0))

    out += [
        Row(t, "B is a vector", lambda: c(T.sparse_mm, sp(mat()), rhs(3, None)),
            equals(lambda call: mat() @ rhs(3, None), "correct vector result (as jax_api)")),
        Row(t, "A batch 3, B batch 2", lambda: c(T.sparse_mm, sp(mat().expand(3, 3, 3)),
                                                 rhs().expand(2, 3, 2).clone()),
            err(VE, "B", "batch size 3")),
        Row(t, "A: unsorted CSR column indices",
            lambda: c(T.sparse_mm, unsorted_csr(mat()).requires_grad_(), rhs()),
            Result(mm_grad, "correct result and sparse gradient")),
        Row(t, "A: uncoalesced COO with a duplicate entry",
            lambda: c(T.sparse_mm, torch.sparse_coo_tensor([[0, 0, 2], [1, 1, 0]],
                                                            [1.0, 2.0, 3.0], (3, 3), dtype=F64),
                                                                rhs()),
            equals(lambda call: call.args[0].to_dense() @ call.args[1],
                   "correct result (duplicates summed)")),
        Row(t, "A has a NaN entry", lambda: c(T.sparse_mm, sp(with_nan(mat())), rhs()),
            propagates(lambda call: stored_product(call.args[0], call.args[1]))),
        Row(t, "B has inf and NaN", lambda: c(T.sparse_mm, sp(mat()), with_nan(
            with_nan(rhs(), (0, 0), float("inf")), (2, 1))),
            propagates(lambda call: stored_product(call.args[0], call.args[1]),
                       "NaN/inf propagate through stored entries only (as torch.sparse.mm)")),
        Row(t, "empty: n = 0", lambda: c(T.sparse_mm, sp(torch.zeros(0, 0, dtype=F64)),
                                         torch.zeros(0, 2, dtype=F64)), shaped((0, 2), F64)),
        Row(t, "empty: nnz = 0", lambda: c(T.sparse_mm, sp(torch.zeros(3, 3, dtype=F64)), rhs()),
            equals(lambda call: torch.zeros(3, 2, dtype=F64))),
        Row(t, "A: int32 CSR indices", lambda: c(T.sparse_mm, torch.sparse_csr_tensor(
            sp(mat()).crow_indices().int(), sp(mat()).col_indices().int(), sp(mat()).values(),
            (3, 3)), rhs()), equals(lambda call: mat() @ rhs())),
        Row(t, "A: batched int32 CSR whose flat pattern exceeds int32 (b * m > 2^31)",
            lambda: c(T.sparse_mm, torch.sparse_csr_tensor(
                torch.tensor([[0, 1, 1]] * 3, dtype=torch.int32),
                torch.tensor([[2**30 - 1]] * 3, dtype=torch.int32),
                torch.ones(3, 1, dtype=F64), (3, 2, 2**30)), torch.zeros(3, 2**30, 0, dtype=F64)),
            shaped((3, 2, 0), F64, "correct (empty) result, indices widened to int64"),
            isolate=True),
    ]
    out += gpu_rows(t, lambda d: c(T.sparse_mm, sp(mat()), rhs().to(d)), "B")

    # sparse_triangular_solve ------------------------------------------------------------------
    t = "torch_api.sparse_triangular_solve"
    L = mat("lower")

    def tri(A, B=None, **kw):
        return c(T.sparse_triangular_solve, A, rhs() if B is None else B, **{"upper": False, **kw})

    def tri_ref(call):
        A, B = call.args
        return torch.linalg.solve_triangular(dense_of(A), B, upper=False)

    zero_diag = torch.sparse_csr_tensor(sp(L).crow_indices(), sp(L).col_indices(),
                                        torch.tensor([2.0, 1.0, 0.0, 1.0, 4.0], dtype=F64), (3, 3))
    out += _operand_batteries(t, T.sparse_triangular_solve, L, rhs(), rows_bad=rhs(4),
                              rank_bad=rhs().expand(2, 3, 2).clone(), upper=False)
    out += [
        Row(t, "A not triangular", lambda: tri(sp(mat())), err(VE, "A", "lower-triangular")),
        Row(t, "A lower, upper=True", lambda: tri(sp(L), upper=True),
            err(VE, "A", "upper-triangular")),
        Row(t, "diagonal stored with unitriangular=True", lambda: tri(sp(L), unitriangular=True),
            err(VE, "A", "unitriangular=True")),
        Row(t, "a diagonal entry missing", lambda: tri(sp(with_nan(L, (1, 1), 0.0))),
            err(VE, "A", "nonzero stored diagonal.*1 missing")),
        Row(t, "a stored zero on the diagonal", lambda: tri(zero_diag),
            err(VE, "A", "nonzero stored diagonal.*1 zero")),
        Row(t, "upper is a string", lambda: tri(sp(L), upper="yes"), err(TE, "upper", "bool")),
        Row(t, "A batch 3, B batch 2", lambda: tri(sp(L.expand(3, 3, 3)), rhs().expand(2, 3, 2)),
            err(VE, "B", "batch size 3")),
        Row(t, "A has a NaN entry", lambda: tri(sp(with_nan(L, (2, 1)))), propagates(tri_ref)),
        Row(t, "B has a NaN", lambda: tri(sp(L), with_nan(rhs(), (1, 0))), propagates(tri_ref)),
        Row(t, "A: unsorted CSR column indices", lambda: tri(unsorted_csr(L)),
            err(VE, "A", "sorted and distinct")),
        Row(t, "A: unsorted CSR, transpose=True", lambda: tri(unsorted_csr(L), transpose=True),
            err(VE, "A", "sorted and distinct")),
        Row(t, "empty: n = 0",
            lambda: tri(sp(torch.zeros(0, 0, dtype=F64)), torch.zeros(0, dtype=F64)),
            shaped((0,), F64)),
        Row(t, "empty: nnz = 0 with unitriangular=True",
            lambda: tri(sp(torch.zeros(3, 3, dtype=F64)), unitriangular=True),
            equals(lambda call: rhs(), "correct result (the identity solve)")),
    ]
    out += gpu_rows(t, lambda d: tri(sp(L), rhs().to(d)), "B")

    # sparse_generic_solve -------------------------------------------------------------------
    t = "torch_api.sparse_generic_solve"
    gs = T.sparse_generic_solve
    out += _operand_batteries(t, gs, mat("spd"), rhs(), rows_bad=rhs(4),
                              rank_bad=rhs().expand(2, 3, 2).clone())
    out += [
        Row(t, "A batched (3-D)", lambda: c(gs, sp(mat("spd").expand(2, 3, 3)), rhs()),
            err(VE, "A", "2-D")),
        Row(t, "A not square", lambda: c(gs, sp(mat("tall")), rhs(4)), err(VE, "A", "square")),
        Row(t, "solve is not callable", lambda: c(gs, sp(mat("spd")), rhs(), solve="minres"),
            err(TE, "solve", "callable")),
        Row(t, "solve returns the wrong shape",
            lambda: c(gs, sp(mat("spd")), rhs(), solve=lambda A, B: B[:2]),
            err(VE, "solve", "expected the solver to return shape")),
        Row(t, "indefinite A (default MINRES)", lambda: c(gs, sp(mat("indefinite")), rhs(),
                                                        settings=minres_settings()),
            equals(solved("indefinite"), rtol=1e-7, atol=1e-8)),
        Row(t, "indefinite A with linear_cg", lambda: c(gs, sp(mat("indefinite")), rhs(),
                                                      solve=utils().linear_cg),
            converge_warn(), isolate=True),
        Row(t, "singular A, inconsistent B (max_iter=30)",
            lambda: c(gs, sp(mat("singular")), inconsistent(), max_iter=30),
            converge_warn(), isolate=True),
        Row(t, "B has a NaN (max_iter=30)",
            lambda: c(gs, sp(mat("spd")), with_nan(rhs()), max_iter=30), converge_warn(),
            isolate=True),
        Row(t, "A has a NaN entry (max_iter=30)",
            lambda: c(gs, sp(with_nan(mat("spd"))), rhs(), max_iter=30),
            converge_warn(), isolate=True),
        Row(t, "empty: n = 0",
            lambda: c(gs, sp(torch.zeros(0, 0, dtype=F64)), torch.zeros(0, dtype=F64)),
            shaped((0,), F64)),
        Row(t, "empty: nnz = 0 (zero matrix)",
            lambda: c(gs, sp(torch.zeros(3, 3, dtype=F64)), rhs()),
            converge_warn(), isolate=True),
    ]

    # sparse_generic_lstsq -------------------------------------------------------------------
    t = "torch_api.sparse_generic_lstsq"
    ls = T.sparse_generic_lstsq
    out += _operand_batteries(t, ls, mat("tall"), rhs(4), rows_bad=rhs(3),
                              rank_bad=rhs(4).expand(2, 4, 2).clone())
    out += [
        Row(t, "A wide (m < n)", lambda: c(ls, sp(mat("tall").T.contiguous()), rhs(3)),
            err(VE, "A", "tall")),
        Row(t, "lstsq is not callable", lambda: c(ls, sp(mat("tall")), rhs(4), lstsq=3),
            err(TE, "lstsq", "callable")),
        Row(t, "rank-deficient A, inconsistent B",
            lambda: c(ls, sp(mat("singular")), inconsistent(), atol=1e-12, btol=1e-12),
            equals(lambda call: torch.linalg.pinv(mat("singular")) @ inconsistent(),
                   "correct minimum-norm least-squares solution", rtol=1e-8, atol=1e-9)),
        Row(t, "B has a NaN", lambda: c(ls, sp(mat("tall")), with_nan(rhs(4))), converge_warn(),
            isolate=True),
        Row(t, "empty: n = 0",
            lambda: c(ls, sp(torch.zeros(0, 0, dtype=F64)), torch.zeros(0, dtype=F64)),
            shaped((0,), F64)),
        Row(t, "empty: nnz = 0", lambda: c(ls, sp(torch.zeros(4, 3, dtype=F64)), rhs(4)),
            equals(lambda call: torch.zeros(3, 2, dtype=F64),
                   "correct minimum-norm least-squares solution (zero)")),
    ]

    # sparse_solve_j4t -----------------------------------------------------------------------
    t = "torch_api.sparse_solve_j4t"
    j4t = T.sparse_solve_j4t
    out += _operand_batteries(t, j4t, mat(), rhs(), rows_bad=rhs(4))
    out += [
        Row(t, "solve is not callable", lambda: c(j4t, sp(mat()), rhs(), solve="cg"),
            err(TE, "solve", "JAX solver")),
        Row(t, "static option is a tensor (x0)", lambda: c(j4t, sp(mat()), rhs(), x0=rhs()),
            err(TE, "x0", "hashable")),
        Row(t, "float64 while JAX's x64 mode is disabled",
            lambda: c(j4t, sp(mat()), rhs(), tol=1e-12),
            equals(solved(), "correct result (x64 enabled in a scope for the call)",
                   rtol=1e-8, atol=1e-9), x64=False),
        Row(t, "singular A, inconsistent B", lambda: c(j4t, sp(mat("singular")), inconsistent()),
            converge_warn(), x64=False),
        Row(t, "B has a NaN", lambda: c(j4t, sp(mat()), with_nan(rhs())), converge_warn(),
            x64=False),
    ]

    # sparse_solve_c4t -----------------------------------------------------------------------
    t = "torch_api.sparse_solve_c4t"
    c4t = T.sparse_solve_c4t
    out += _operand_batteries(t, c4t, mat(), rhs(), rows_bad=rhs(4))
    out += [
        Row(t, "solve is an unknown name", lambda: c(c4t, sp(mat()), rhs(), "lu"),
            err(VE, "solve", "expected one of")),
        Row(t, "solve is not callable", lambda: c(c4t, sp(mat()), rhs(), 3),
            err(TE, "solve", "solver name or a callable")),
        Row(t, "lower= given with solve='cg'",
            lambda: c(c4t, sp(mat("spd")), rhs(), "cg", lower=True),
            err(VE, "lower", "spsolve_triangular")),
        Row(t, "spsolve_triangular with a non-triangular A",
            lambda: c(c4t, sp(mat()), rhs(), "spsolve_triangular"),
            err(VE, "A", "lower-triangular")),
        Row(t, "spsolve_triangular with a missing diagonal entry",
            lambda: c(c4t, sp(with_nan(L, (1, 1), 0.0)), rhs(), "spsolve_triangular"),
            err(VE, "A", "singular")),
        Row(t, "singular A (spsolve)", lambda: c(c4t, sp(mat("singular")), rhs()),
            converge_warn(), isolate=True),
        Row(t, "singular A, inconsistent B (minres)",
            lambda: c(c4t, sp(mat("singular")), inconsistent(), "minres"),
            converge_warn(), isolate=True),
        Row(t, "singular A, inconsistent B (cg)",
            lambda: c(c4t, sp(mat("singular")), inconsistent(), "cg"),
            converge_warn(), isolate=True),
        Row(t, "indefinite A (minres)",
            lambda: c(c4t, sp(mat("indefinite")), rhs(), "minres", rtol=1e-12),
            equals(solved("indefinite"), rtol=1e-8, atol=1e-9)),
        Row(t, "B has a NaN (spsolve)", lambda: c(c4t, sp(mat()), with_nan(rhs())),
            converge_warn()),
        Row(t, "empty: n = 0",
            lambda: c(c4t, sp(torch.zeros(0, 0, dtype=F64)), torch.zeros(0, dtype=F64)),
            shaped((0,), F64)),
    ]
    out += gpu_rows(t, lambda d: c(c4t, sp(mat()), rhs().to(d)), "B")

    # segment_mm / gather_mm ------------------------------------------------------------------
    a = torch.arange(6, dtype=F64).reshape(3, 2) - 2.0
    b = torch.arange(16, dtype=F64).reshape(2, 2, 4) / 4.0

    def seg_ref(call):
        return references.segment_mm(*call.args)

    def gat_ref(call):
        return references.gather_mm(*call.args)

    for t, fn, third, name, ref in (
        ("torch_api.segment_mm", T.segment_mm, torch.tensor([1, 2]), "seglen_a", seg_ref),
        ("torch_api.gather_mm", T.gather_mm, torch.tensor([1, 0, 1]), "idx_b", gat_ref),
    ):
        def call3(a_=None, b_=None, i_=None, fn=fn, third=third):
            return c(fn, a.clone() if a_ is None else a_, b.clone() if b_ is None else b_,
                     third.clone() if i_ is None else i_)

        out += [
            Row(t, "a is a list", lambda call3=call3: call3(a_=a.tolist()),
                err(TE, "a", "torch.Tensor")),
            Row(t, "a is a NumPy array", lambda call3=call3: call3(a_=a.numpy()),
                err(TE, "a", "torch.Tensor")),
            Row(t, "a is sparse", lambda call3=call3: call3(a_=a.to_sparse()),
                err(TE, "a", "dense")),
            Row(t, "a is 1-D", lambda call3=call3: call3(a_=a[0]), err(VE, "a", "2-D")),
            Row(t, "a has int64 values", lambda call3=call3: call3(a_=a.long()),
                err(VE, "a", "floating-point")),
            Row(t, "a has complex values", lambda call3=call3: call3(a_=a.to(torch.complex128)),
                err(VE, "a", "floating-point")),
            Row(t, "b is 2-D", lambda call3=call3: call3(b_=b[0]), err(VE, "b", "3-D")),
            Row(t, "b's D1 does not match a", lambda call3=call3: call3(b_=b[:, :1]),
                err(VE, "b", "columns")),
            Row(t, "b is float32 (a float64)", lambda call3=call3: call3(b_=b.float()),
                err(VE, "b", "dtype torch.float64 to match a")),
            Row(t, "b on the meta device", lambda call3=call3: call3(b_=b.to("meta")),
                err(VE, "b", "device cpu to match a")),
            Row(t, f"{name} is a list", lambda call3=call3, third=third: call3(i_=third.tolist()),
                err(TE, name, "torch.Tensor")),
            Row(t, f"{name} is float", lambda call3=call3, third=third: call3(i_=third.double()),
                err(VE, name, "integer")),
            Row(t, f"{name} has the wrong length", lambda call3=call3,
                third=third: call3(i_=third[:1]),
                err(VE, name, "shape")),
            Row(t, f"{name} on the meta device", lambda call3=call3,
                third=third: call3(i_=third.to("meta")),
                err(VE, name, "CPU or CUDA|device")),
            Row(t, "a has NaN and inf",
                lambda call3=call3: call3(a_=with_nan(with_nan(a), (2, 1), float("inf")))
                , propagates(ref)),
            Row(t, "empty: N = 0 rows", lambda call3=call3, third=third: call3(
                a_=torch.zeros(0, 2, dtype=F64), i_=third[:0] if third.numel() == 3 else third * 0),
                shaped((0, 4), F64)),
        ]
    out += [
        Row("torch_api.segment_mm", "seglen_a has a negative length",
            lambda: c(T.segment_mm, a.clone(), b.clone(), torch.tensor([4, -1])),
            err(VE, "seglen_a", "lengths >= 0")),
        Row("torch_api.segment_mm", "seglen_a does not sum to a's rows",
            lambda: c(T.segment_mm, a.clone(), b.clone(), torch.tensor([1, 1])),
            err(VE, "seglen_a", "summing to a's 3 rows")),
        Row("torch_api.segment_mm", "empty: R = 0 segments",
            lambda: c(T.segment_mm, torch.zeros(0, 2, dtype=F64), torch.zeros(0, 2, 4, dtype=F64),
                      torch.zeros(0, dtype=torch.long)), shaped((0, 4), F64)),
        Row("torch_api.gather_mm", "idx_b out of range",
            lambda: c(T.gather_mm, a.clone(), b.clone(),
                                                               torch.tensor([0, 2, 1])),
            err(VE, "idx_b", r"indices in \[0, 2\)")),
        Row("torch_api.gather_mm", "idx_b negative", lambda: c(T.gather_mm, a.clone(), b.clone(),
                                                           torch.tensor([0, -1, 1])),
            err(VE, "idx_b", r"indices in \[0, 2\)")),
    ]

    # sparse_logsumexp / sparse_bidir_logsumexp ----------------------------------------------
    t = "torch_api.sparse_logsumexp"
    lse = T.sparse_logsumexp

    def lse_ref(dim):
        return lambda call: torch.logsumexp(dense_of(call.args[0]), dim)

    inf_mat = torch.tensor([[1.0, float("inf"), 0.0], [0.0, -float("inf"), 0.0], [2.0, 0.0, 3.0]],
                           dtype=F64)
    out += sparse_battery(t, "input", lambda A: c(lse, A, 1), mat(), csc_ok=True)
    out += [
        Row(t, "dim out of range", lambda: c(lse, sp(mat()), 2), err(VE, "dim", r"\[-2, 1\]")),
        Row(t, "dim is a string", lambda: c(lse, sp(mat()), "1"), err(TE, "dim", "int")),
        Row(t, "dim repeated", lambda: c(lse, sp(mat()), (1, -1)), err(VE, "dim", "at most once")),
        Row(t, "dim empty", lambda: c(lse, sp(mat()), ()), err(TE, "dim", "non-empty")),
        Row(t, "input has a NaN entry", lambda: c(lse, sp(with_nan(mat())), 1),
            propagates(lse_ref(1))),
        Row(t, "input has +inf and -inf entries (rows)", lambda: c(lse, sp(inf_mat), 1),
            propagates(lse_ref(1))),
        Row(t, "input has +inf and -inf entries (columns)", lambda: c(lse, sp(inf_mat, "coo"), 0),
            propagates(lse_ref(0))),
        Row(t, "include_zeros=False with an empty row",
            lambda: c(lse, sp(with_nan(mat("lower"), (0, 0), 0.0)), 1, include_zeros=False),
            equals(lambda call: torch.tensor([-float("inf"), math_log_sum_exp([1.0, 3.0]),
                                              math_log_sum_exp([1.0, 4.0])], dtype=F64),
                   "correct result (-inf for a row without stored entries)")),
        Row(t, "input is CSC", lambda: c(lse, sp(mat(), "csc"), 0), equals(lse_ref(0))),
        Row(t, "input: unsorted CSR column indices", lambda: c(lse, unsorted_csr(mat()), 1),
            equals(lse_ref(1))),
        Row(t, "empty: n = 0", lambda: c(lse, sp(torch.zeros(0, 0, dtype=F64)), 1),
            shaped((0,), F64)),
        Row(t, "empty: nnz = 0", lambda: c(lse, sp(torch.zeros(3, 3, dtype=F64)), 1),
            equals(lse_ref(1))),
    ]
    t = "torch_api.sparse_bidir_logsumexp"
    bidir = T.sparse_bidir_logsumexp
    out += [
        Row(t, "input is a list", lambda: c(bidir, mat().tolist()),
            err(TE, "input", "torch.Tensor")),
        Row(t, "input is dense", lambda: c(bidir, mat()), err(TE, "input", "sparse")),
        Row(t, "input has int64 values", lambda: c(bidir, sp(mat().long(), "coo")),
            err(VE, "input", "float32 or float64")),
        Row(t, "input: CSR column index out of range", lambda: c(bidir, csr_out_of_range(mat())),
            err(VE, "input", "column indices"), isolate=True),
        Row(t, "output_layout unknown", lambda: c(bidir, sp(mat()), output_layout="list"),
            err(VE, "output_layout", "one of")),
        Row(t, "keepdim=True with output_layout='padded'",
            lambda: c(bidir, sp(mat()), keepdim=True, output_layout="padded"),
            err(VE, "keepdim", "output_layout='tuple'")),
        Row(t, "input has a NaN entry", lambda: c(bidir, sp(with_nan(mat()))),
            propagates(lambda call: (torch.logsumexp(with_nan(mat()), 0),
                                     torch.logsumexp(with_nan(mat()), 1)))),
        Row(t, "empty: n = 0", lambda: c(bidir, sp(torch.zeros(0, 0, dtype=F64))),
            equals(lambda call: (torch.zeros(0, dtype=F64), torch.zeros(0, dtype=F64)),
                   "correct empty results")),
    ]
    return out
