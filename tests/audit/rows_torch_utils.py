"""Audit rows of torch_api.utils: iterative solvers, random constructors, block diagonals,
conversions and the statistical tests."""

from __future__ import annotations

import torch

from .inputs import (
    F64,
    coo_out_of_range,
    csr_out_of_range,
    few,
    hybrid_coo,
    inconsistent,
    mat,
    minres_settings,
    rhs,
    solved,
    sp,
    utils,
    with_nan,
)
from .table import TE, VE, Result, Row, c, converge_warn, equals, err


def rows() -> list[Row]:
    """Rows of torch_api.utils: solvers, constructors, conversions, statistical tests."""
    U = utils()
    out: list[Row] = []
    cw = converge_warn

    for solver, opname, rname in (("linear_cg", "matmul_closure", "rhs"),
                                  ("minres", "matmul_closure", "rhs"),
                                  ("bicgstab", "matmul_closure", "rhs"),
                                  ("lsmr", "A", "b")):
        t = f"torch_api.utils.{solver}"
        fn = getattr(U, solver)
        D = mat("spd")

        def solve_ref(call, D=D):
            return torch.linalg.solve(D, call.args[1])

        out += [
            Row(t, f"{opname} is a list", lambda fn=fn, D=D: c(fn, D.tolist(), rhs()),
                err(TE, opname, "a callable")),
            Row(t, f"{opname} is CSC", lambda fn=fn, D=D: c(fn, sp(D, "csc"), rhs()),
                err(TE, opname, "CSC")),
            Row(t, f"{opname} is hybrid COO", lambda fn=fn, D=D: c(fn, hybrid_coo(D), rhs()),
                err(TE, opname, "hybrid")),
            Row(t, f"{opname} has int64 values", lambda fn=fn,
                D=D: c(fn, sp(D.long(), "coo"), rhs()),
                err(VE, opname, "float32 or float64|dtype")),
            Row(t, f"{opname}: CSR column index out of range",
                lambda fn=fn, D=D: c(fn, csr_out_of_range(D), rhs()),
                err(VE, opname, "column indices"), isolate=True),
            Row(t, f"{rname} is a list", lambda fn=fn, D=D: c(fn, sp(D), rhs().tolist()),
                err(TE, rname, "torch.Tensor")),
            Row(t, f"{rname} is sparse", lambda fn=fn, D=D: c(fn, sp(D), rhs().to_sparse()),
                err(TE, rname, "dense")),
            Row(t, f"{rname} has int64 values", lambda fn=fn, D=D: c(fn, sp(D), rhs().long()),
                err(VE, rname, "float32,? (or )?float64")),
            Row(t, f"{rname} is float32 ({opname} float64)", lambda fn=fn,
                D=D: c(fn, sp(D), rhs().float()),
                err(VE, rname, "dtype")),
            Row(t, f"{rname} on the meta device", lambda fn=fn, D=D: c(fn, sp(D), rhs().to("meta")),
                err(VE, rname, "device")),
            Row(t, f"{rname} has 4 rows ({opname} 3 x 3)", lambda fn=fn, D=D: c(fn, sp(D), rhs(4)),
                err(VE, rname, "rows")),
            Row(t, f"{rname} has a NaN (30 iterations)", lambda fn=fn,
                D=D: c(fn, sp(D), with_nan(rhs()), **few(fn)), cw(),
                isolate=True),
            Row(t, "empty: n = 0", lambda fn=fn: c(fn, sp(torch.zeros(0, 0, dtype=F64)),
                                                   torch.zeros(0, dtype=F64)),
                equals(lambda call: (torch.zeros(0, dtype=F64), 0) if call.fn is U.lsmr
                       else torch.zeros(0, dtype=F64), "correct empty result")),
        ]
        if solver != "lsmr":
            out += [
                Row(t, f"{opname} not square", lambda fn=fn: c(fn, sp(mat("tall")), rhs(4)),
                    err(VE, opname, "square")),
                Row(t, "singular A, inconsistent rhs (30 iterations)",
                    lambda fn=fn: c(fn, sp(mat("singular")), inconsistent(), **few(fn)),
                    cw(), isolate=True),
            ]
    t = "torch_api.utils.linear_cg"
    cg = U.linear_cg
    out += [
        Row(t, "indefinite A (p^T A p = 0)", lambda: c(cg, sp(mat("indefinite")), rhs()),
            cw("ConvergenceWarning naming the breakdown (is A SPD?)"), isolate=True),
        Row(t, "tolerance negative", lambda: c(cg, sp(mat("spd")), rhs(), tolerance=-1.0),
            err(VE, "tolerance", "nonnegative")),
        Row(t, "settings.cg_tolerance is NaN",
            lambda: c(cg, sp(mat("spd")), rhs(),
                      settings=U.LinearCGSettings(cg_tolerance=float("nan"))),
            err(VE, "tolerance", "finite")),
        Row(t, "convergence_reduction unknown",
            lambda: c(cg, sp(mat("spd")), rhs(), convergence_reduction="max"),
            err(VE, "convergence_reduction", "'all' or 'mean'")),
        Row(t, "n_tridiag larger than the rhs columns",
            lambda: c(cg, sp(mat("spd")), rhs(), n_tridiag=3),
            err(VE, "n_tridiag", r"\[0, 2\]")),
    ]
    t = "torch_api.utils.minres"
    out += [
        Row(t, "indefinite A",
            lambda: c(U.minres, sp(mat("indefinite")), rhs(), settings=minres_settings()),
            equals(solved("indefinite"), rtol=1e-7, atol=1e-8)),
        Row(t, "shifts is an empty tensor",
            lambda: c(U.minres, sp(mat("spd")), rhs(), shifts=torch.zeros(0, dtype=F64)),
            err(VE, "shifts", "at least one")),
    ]
    t = "torch_api.utils.bicgstab"
    out += [
        Row(t, "settings.matvec_max negative",
            lambda: c(U.bicgstab, sp(mat()), rhs(), settings=U.BICGSTABSettings(matvec_max=-1)),
            err(VE, "settings.matvec_max", "nonnegative")),
    ]
    t = "torch_api.utils.lsmr"
    out += [
        Row(t, "A is a callable without Armat and n", lambda: c(U.lsmr, lambda x: x, rhs()),
            err(VE, "Armat", "callable A needs")),
        Row(t, "rank-deficient A, inconsistent b",
            lambda: c(U.lsmr, sp(mat("singular")), inconsistent(), atol=1e-12, btol=1e-12),
            equals(lambda call: (torch.linalg.pinv(mat("singular")) @ inconsistent(), 2),
                   "correct minimum-norm least-squares solution", rtol=1e-8, atol=1e-9)),
    ]

    # random constructors --------------------------------------------------------------------
    def nnz_is(n, shape):
        def check(out_, call):
            assert tuple(out_.shape) == shape and out_._nnz() == n, (tuple(out_.shape), out_._nnz())
        return Result(check, f"correct result: shape {shape}, nnz {n}")

    t = "torch_api.utils.rand_sparse"
    rs = U.rand_sparse
    out += [
        Row(t, "size is a string", lambda: c(rs, "3x3", 2), err(TE, "size", "tuple of ints")),
        Row(t, "size of rank 1", lambda: c(rs, (3,), 2), err(VE, "size", r"\(n, m\)")),
        Row(t, "size negative", lambda: c(rs, (3, -1), 0), err(VE, "size", "non-negative")),
        Row(t, "nnz larger than the matrix", lambda: c(rs, (2, 2), 5), err(VE, "nnz", "nnz <= 4")),
        Row(t, "nnz is a float", lambda: c(rs, (2, 2), 2.0), err(TE, "nnz", "int")),
        Row(t, "layout CSC", lambda: c(rs, (2, 2), 2, torch.sparse_csc),
            err(TE, "layout", "sparse_coo")),
        Row(t, "indices_dtype float", lambda: c(rs, (2, 2), 2, indices_dtype=torch.float32),
            err(VE, "indices_dtype", "int32 or")),
        Row(t, "values_dtype int", lambda: c(rs, (2, 2), 2, values_dtype=torch.int64),
            err(VE, "values_dtype", "float32 or")),
        Row(t, "well_conditioned with nnz < n", lambda: c(rs, (3, 3), 2, well_conditioned=True),
            err(VE, "nnz", "3 <= nnz")),
        Row(t, "min_diag_value 0 with well_conditioned",
            lambda: c(rs, (3, 3), 3, well_conditioned=True,
                                                                   min_diag_value=0.0),
            err(VE, "min_diag_value", "positive")),
        Row(t, "empty: size (0, 0)", lambda: c(rs, (0, 0), 0), nnz_is(0, (0, 0))),
    ]
    t = "torch_api.utils.rand_sparse_tri"
    rt = U.rand_sparse_tri
    out += [
        Row(t, "size not square", lambda: c(rt, (3, 2), 3), err(VE, "size", "square")),
        Row(t, "nnz below n (diagonal not strict)", lambda: c(rt, (3, 3), 2),
            err(VE, "nnz", "3 <= nnz")),
        Row(t, "value_range reversed", lambda: c(rt, (3, 3), 3, value_range=(1, 0)),
            err(VE, "value_range", "low <= high")),
        Row(t, "value_range not numbers", lambda: c(rt, (3, 3), 3, value_range="ab"),
            err(TE, "value_range", "pair")),
        Row(t, "empty: size (0, 0)", lambda: c(rt, (0, 0), 0), nnz_is(0, (0, 0))),
    ]
    t = "torch_api.utils.make_spd_sparse"
    ms = U.make_spd_sparse
    out += [
        Row(t, "n = 0", lambda: c(ms, 0, torch.sparse_csr, F64, torch.int64, "cpu"),
            err(VE, "n", "positive")),
        Row(t, "layout CSC", lambda: c(ms, 3, torch.sparse_csc, F64, torch.int64, "cpu"),
            err(TE, "layout", "sparse_coo")),
        Row(t, "value_dtype int",
            lambda: c(ms, 3, torch.sparse_csr, torch.int64, torch.int64, "cpu"),
            err(VE, "value_dtype", "float32 or")),
        Row(t, "index_dtype float", lambda: c(ms, 3, torch.sparse_csr, F64, F64, "cpu"),
            err(VE, "index_dtype", "int32 or")),
        Row(t, "sparsity_ratio 2", lambda: c(ms, 3, torch.sparse_csr, F64, torch.int64, "cpu", 2.0),
            err(VE, "sparsity_ratio", r"\[0, 1\]")),
        Row(t, "nz too large", lambda: c(ms, 3, torch.sparse_csr, F64, torch.int64, "cpu", nz=9),
            err(VE, "nz", "in")),
    ]

    # block diagonals, identities, stacking, conversions ---------------------------------------
    t = "torch_api.utils.sparse_block_diag"
    bd = U.sparse_block_diag
    I2 = torch.eye(2, dtype=F64)

    def wide_int32(cols):
        return torch.sparse_csr_tensor(torch.zeros(2, dtype=torch.int32),
                                       torch.zeros(0, dtype=torch.int32),
                                       torch.zeros(0, dtype=F64), (1, cols))

    def widened(out_, call):
        assert tuple(out_.shape) == (2, 2**31) and out_.col_indices().dtype == torch.int64

    out += [
        Row(t, "no arguments", lambda: c(bd), err(VE, "sparse_tensors", "at least one")),
        Row(t, "a dense block", lambda: c(bd, sp(I2), I2),
            err(TE, "sparse_tensors[1]", "sparse COO or CSR")),
        Row(t, "mixed layouts", lambda: c(bd, sp(I2), sp(I2, "coo")),
            err(TE, "sparse_tensors[1]", "layout")),
        Row(t, "a 3-D block", lambda: c(bd, sp(I2), sp(I2.expand(2, 2, 2))),
            err(VE, "sparse_tensors[1]", "2-D")),
        Row(t, "mixed dtypes", lambda: c(bd, sp(I2), sp(I2.float())),
            err(VE, "sparse_tensors[1]", "dtype")),
        Row(t, "a block with an out-of-range index", lambda: c(bd, sp(I2), csr_out_of_range(I2)),
            err(VE, "sparse_tensors[1]", "column indices"), isolate=True),
        Row(t, "an empty (0 x 0) block", lambda: c(bd, sp(torch.zeros(0, 0, dtype=F64)), sp(I2)),
            equals(lambda call: I2)),
        Row(t, "int32 CSR blocks whose columns exceed int32",
            lambda: c(bd, wide_int32(2**30), wide_int32(2**30)),
            Result(widened, "correct result with int64 indices (never wrapped)")),
    ]
    t = "torch_api.utils.sparse_block_diag_split"
    bds = U.sparse_block_diag_split
    blk = torch.block_diag(I2, 2 * torch.eye(3, dtype=F64))
    out += [
        Row(t, "input is dense", lambda: c(bds, blk, (2, 2), (3, 3)),
            err(TE, "sparse_block_diag_tensor", "sparse COO or CSR")),
        Row(t, "no shapes", lambda: c(bds, sp(blk)), err(VE, "shapes", "at least one")),
        Row(t, "shapes do not sum to the shape", lambda: c(bds, sp(blk), (2, 2), (2, 2)),
            err(VE, "shapes", "summing to")),
        Row(t, "a negative block shape", lambda: c(bds, sp(blk), (6, 6), (-1, -1)),
            err(VE, "shapes", "non-negative")),
        Row(t, "an entry outside the diagonal blocks",
            lambda: c(bds, sp(blk + torch.diag(torch.ones(4, dtype=F64), 1)), (2, 2), (3, 3)),
            err(VE, "sparse_block_diag_tensor", "outside the diagonal blocks")),
    ]
    t = "torch_api.utils.sparse_eye"
    eye = U.sparse_eye
    out += [
        Row(t, "size not square", lambda: c(eye, (2, 3)), err(VE, "size", "square")),
        Row(t, "size negative", lambda: c(eye, (-1, -1)), err(VE, "size", "non-negative")),
        Row(t, "size is an int", lambda: c(eye, 3), err(TE, "size", "tuple of ints")),
        Row(t, "layout CSC", lambda: c(eye, (2, 2), layout=torch.sparse_csc),
            err(TE, "layout", "sparse_coo")),
        Row(t, "values_dtype int", lambda: c(eye, (2, 2), values_dtype=torch.int64),
            err(VE, "values_dtype", "float32 or")),
        Row(t, "empty: size (0, 0)", lambda: c(eye, (0, 0)), nnz_is(0, (0, 0))),
    ]
    t = "torch_api.utils.stack_csr"
    st = U.stack_csr
    out += [
        Row(t, "tensors is a tensor", lambda: c(st, sp(I2)), err(TE, "tensors", "list or tuple")),
        Row(t, "tensors empty", lambda: c(st, []), err(VE, "tensors", "at least one")),
        Row(t, "a COO member", lambda: c(st, [sp(I2, "coo")]), err(TE, "tensors[0]", "CSR")),
        Row(t, "different nnz", lambda: c(st, [sp(I2), sp(torch.ones(2, 2, dtype=F64))]),
            err(VE, "tensors[1]", "stored entries")),
        Row(t, "different shapes", lambda: c(st, [sp(I2), sp(torch.eye(3, dtype=F64))]),
            err(VE, "tensors[1]", "shape")),
        Row(t, "dim = 1", lambda: c(st, [sp(I2)], dim=1), err(VE, "dim", "0")),
    ]
    t = "torch_api.utils.convert_coo_to_csr_indices_values"
    cv = U.convert_coo_to_csr_indices_values
    ij = torch.tensor([[1, 0], [0, 1]])
    out += [
        Row(t, "coo_indices float", lambda: c(cv, ij.double(), 2),
            err(TE, "coo_indices", "int32 or int64")),
        Row(t, "coo_indices of shape (4, nnz)",
            lambda: c(cv, torch.zeros(4, 2, dtype=torch.long), 2),
            err(VE, "coo_indices", r"shape \(2, nnz\)")),
        Row(t, "a negative index", lambda: c(cv, -ij, 2), err(VE, "coo_indices", "non-negative")),
        Row(t, "a row index >= num_rows", lambda: c(cv, ij, 1),
            err(VE, "coo_indices", "below num_rows")),
        Row(t, "duplicate indices", lambda: c(cv, torch.tensor([[0, 0], [1, 1]]), 2),
            err(VE, "coo_indices", "unique")),
        Row(t, "values of the wrong length", lambda: c(cv, ij, 2, torch.ones(3)),
            err(VE, "values", "2 values")),
        Row(t, "num_rows is a float", lambda: c(cv, ij, 2.0), err(TE, "num_rows", "int")),
        Row(t, "empty: nnz = 0", lambda: c(cv, torch.zeros(2, 0, dtype=torch.long), 2),
            equals(lambda call: (torch.zeros(3, dtype=torch.long), torch.zeros(0), torch.zeros(0)),
                   "correct empty result")),
    ]
    t = "torch_api.utils.convert_coo_to_csr"
    cc = U.convert_coo_to_csr
    out += [
        Row(t, "input is CSR", lambda: c(cc, sp(I2)), err(TE, "sparse_coo_tensor", "COO")),
        Row(t, "input is dense", lambda: c(cc, I2), err(TE, "sparse_coo_tensor", "COO")),
        Row(t, "input is hybrid COO", lambda: c(cc, hybrid_coo(I2)),
            err(VE, "sparse_coo_tensor", "dense dimensions")),
        Row(t, "batched with unequal nnz per batch item",
            lambda: c(cc, torch.stack([I2, torch.ones(2, 2, dtype=F64)]).to_sparse()),
            err(VE, "sparse_coo_tensor", "same number of entries")),
        Row(t, "a COO index out of range", lambda: c(cc, coo_out_of_range(I2)),
            err(VE, "sparse_coo_tensor", "indices"), isolate=True),
        Row(t, "empty: n = 0", lambda: c(cc, sp(torch.zeros(0, 0, dtype=F64), "coo")),
            nnz_is(0, (0, 0))),
    ]

    # statistical tests ----------------------------------------------------------------------
    m2 = torch.zeros(1, 2, dtype=F64)
    S2 = torch.eye(2, dtype=F64)[None]
    t = "torch_api.utils.mean_hotelling_t2_test"
    ht = U.mean_hotelling_t2_test

    def nan_stat(out_, call):
        passed, stat, _ = out_
        assert bool(torch.isnan(stat).all()) and not bool(passed.any()), (passed, stat)

    out += [
        Row(t, "sample_mean is a list", lambda: c(ht, m2.tolist(), m2, S2, 10),
            err(TE, "sample_mean", "torch.Tensor")),
        Row(t, "true_mean of another shape",
            lambda: c(ht, m2, torch.zeros(1, 3, dtype=F64), S2, 10),
            err(VE, "true_mean", r"shape \(1, 2\)")),
        Row(t, "true_mean float32", lambda: c(ht, m2, m2.float(), S2, 10),
            err(VE, "true_mean", "dtype")),
        Row(t, "sample_cov not positive definite", lambda: c(ht, m2, m2, -S2, 10),
            err(VE, "sample_cov", "positive-definite")),
        Row(t, "n <= d", lambda: c(ht, m2, m2, S2, 2), err(VE, "n", ">= 3")),
        Row(t, "n is a float", lambda: c(ht, m2, m2, S2, 10.5), err(TE, "n", "int")),
        Row(t, "confidence_level 1.5", lambda: c(ht, m2, m2, S2, 10, 1.5),
            err(VE, "confidence_level", r"\(0, 1\)")),
        Row(t, "sample_mean has a NaN", lambda: c(ht, with_nan(m2), m2, S2, 10),
            Result(nan_stat, "NaN statistic and passed=False")),
    ]
    t = "torch_api.utils.cov_nagao_test"
    nt = U.cov_nagao_test
    out += [
        Row(t, "emp_cov 2-D", lambda: c(nt, S2[0], S2, 10), err(VE, "emp_cov", "3-D")),
        Row(t, "ref_cov of another shape", lambda: c(nt, S2, torch.eye(3, dtype=F64)[None], 10),
            err(VE, "ref_cov", r"shape \(1, 2, 2\)")),
        Row(t, "ref_cov not positive definite", lambda: c(nt, S2, -S2, 10),
            err(VE, "ref_cov", "positive-definite")),
        Row(t, "ref_cov float32", lambda: c(nt, S2, S2.float(), 10), err(VE, "ref_cov", "dtype")),
        Row(t, "n = 1", lambda: c(nt, S2, S2, 1), err(VE, "n", ">= 2")),
        Row(t, "confidence_level 0", lambda: c(nt, S2, S2, 10, 0.0),
            err(VE, "confidence_level", r"\(0, 1\)")),
        Row(t, "emp_cov has a NaN", lambda: c(nt, with_nan(S2, (0, 0, 0)), S2, 10),
            Result(nan_stat, "NaN statistic and passed=False")),
    ]
    return out


