"""The original's tests that torch_api fails on purpose: marked ``xfail(strict=True)``.

Keys are ``(test file, test name)``: a function (all its parametrisations) or one parametrised
id. Each reason says what torch_api does instead and why. ``docs/compatibility.md`` is generated
from this table (``python -m tests.compat.report``).
"""

_TYPE = ("torch_api raises {got} where the original raises {want} (the project's rule: TypeError "
         "for a wrong type or layout, ValueError for a bad shape, dtype or value)")

# The tests that only differ in the exception type: (test file, test, got, want) of _TYPE.
_TYPE_RULE = [
    ("test_sparse_matmul.py", "test_sparse_mm_error[bad_tensor]",
     "TypeError for an A that is not a tensor", "ValueError"),
    ("test_sparse_matmul.py", "test_sparse_mm_error[bad_format]",
     "TypeError for a CSC A", "ValueError"),
    *((file, "test_dense_layout_raises", "TypeError for a dense input", "NotImplementedError")
      for file in ("test_sparse_logsumexp.py", "test_sparse_bidir_logsumexp.py")),
    *((file, "test_unsupported_rank_raises", "ValueError for a 4-D input", "NotImplementedError")
      for file in ("test_sparse_logsumexp.py", "test_sparse_bidir_logsumexp.py")),
    ("test_sparse_logsumexp.py", "test_dim_out_of_range_raises",
     "ValueError for an out-of-range dim", "IndexError"),
    ("test_sparse_logsumexp.py", "test_dim_empty_or_repeated_raises",
     "TypeError for dim=[] and ValueError for a repeated dim", "RuntimeError"),
    ("test_distributions.py", "test_native_csr_requirement",
     "TypeError for a COO scale_tril of SparseMultivariateNormalNative", "ValueError"),
    ("test_random.py", "test_make_spd_sparse_invalid_layout",
     "TypeError for a strided layout", "ValueError"),
    ("test_bicgstab.py", "test_bicgstab_validates_arguments_before_budget_return",
     "TypeError for an operator or preconditioner that is neither a tensor nor a callable",
     "RuntimeError"),
    ("test_linear_cg.py", "test_rhs_and_operator_output_validation",
     "ValueError for an integer rhs and for an operator or preconditioner output of the wrong "
     "shape or dtype", "TypeError / RuntimeError"),
]

EXPECTED_FAILURES: dict[tuple[str, str], str] = {
    **{(file, test): _TYPE.format(got=got, want=want) for file, test, got, want in _TYPE_RULE},
    **{("test_indexed_matmul.py", f"test_{op}_raises_on_old_pytorch"):
       "torch_api requires torch>=2.5 (its dependency), so it has no run-time guard for an "
       "older torch.__version__" for op in ("segment_mm", "gather_mm")},
    ("test_jax_bindings.py", "test_t2j_and_roundtrip"):
        "t2j refuses float64 data while JAX's x64 mode is off (a TypeError), rather than hand out "
        "an array that JAX's operations silently compute in float32 (bridge's rule)",
    **{("test_jax_bindings.py", f"test_t2j_and_j2t_{fmt}"):
       f"t2j_{fmt} refuses float64 data while JAX's x64 mode is off (a TypeError), as t2j does"
       for fmt in ("coo", "csr")},
    ("test_bicgstab.py", "test_bicgstab_nonzero_initial_guess[cpu-callable-True-True]"):
        "torch_api's bicgstab advances the k columns of a block together, one operator call per "
        "step on the whole (n, k) block; the original solves column by column and this test "
        "counts one call per column (the exact warm start is returned at once in both)",
    ("test_utils.py", "test_sparse_block_diag_errors"):
        "the test passes unittest.mock.Mock objects as sparse tensors; torch_api's ValueError "
        "describes the offending tensor (its shape), which a Mock cannot provide, so a TypeError "
        "escapes while building the message",
    ("test_lsmr.py", "test_identity_case3"):
        "torch_api's lsmr refuses a (1, n) right-hand side for an (n, n) operator (a ValueError "
        "naming b's shape) rather than reading it as the vector the original flattens it to",
    ("test_sparse_logsumexp.py", "test_batched_cannot_reduce_batch_dim"):
        "torch_api's sparse_logsumexp reduces any dimension of its input, the batch dimension "
        "of a batched COO tensor included (as torch.logsumexp does); the original refuses it "
        "with NotImplementedError",
    ("test_sparse_matmul.py", "test_sparse_mm_error[bad_dim_B]"):
        "torch_api's sparse_mm accepts a 1-D B (n,) as a vector and returns A @ B of shape (m,), "
        "as torch.mv does; the original refuses it",
    ("test_linear_cg.py", "test_preconditioner_and_breakdown_validation"):
        "torch_api reports a CG breakdown (p^T A p <= eps: A not SPD) through its convergence "
        "policy, a ConvergenceWarning naming it and the frozen iterate, or ConvergenceError (a "
        "RuntimeError) with raise_on_failure=True, where the original always raises "
        "RuntimeError; and with the negative definite preconditioner M = -I of this test "
        "torch_api's recurrence (invariant under M -> -M) converges to the solution, where the "
        "original refuses the negative r^T M^{-1} r",
    ("test_linear_cg.py", "test_user_eps_raises_instead_of_freezing_active_column"):
        "as for a breakdown: a column whose p^T A p falls below a user-given eps is frozen and "
        "reported (ConvergenceWarning, or ConvergenceError with raise_on_failure=True) rather "
        "than raised as RuntimeError",
    ("test_linear_cg.py", "test_recursive_convergence_is_distinguished_from_true_convergence"):
        "the test's operator changes on its third call, timed to the original's sequence of "
        "calls (it computes b - A x0 even for x0 = 0); torch_api takes r0 = b without a call, so "
        "the drift never happens and the solve truly converges",
    ("test_linear_cg.py", "test_tridiagonalization_can_return_info"):
        "torch_api does not call the operator for the initial residual of a zero initial guess "
        "(r0 = b), so CGInfo.matvecs is one less (4) than the original's count (5); the solution "
        "and the Lanczos matrix agree",
}
