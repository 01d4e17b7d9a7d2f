"""The original's tests that torch_api fails on purpose: marked ``xfail(strict=True)``.

Keys are ``(test file, test name)``: a function (all its parametrisations) or one parametrised
id. Each reason says what torch_api does instead and why. ``docs/compatibility.md`` is generated
from this table (``python -m tests.compat.report``).
"""

_TYPE = ("torch_api raises {got} where the original raises {want} (the project's rule: TypeError "
         "for a wrong type or layout, ValueError for a bad shape, dtype or value)")

EXPECTED_FAILURES: dict[tuple[str, str], str] = {
    ("test_sparse_matmul.py", "test_sparse_mm_error[bad_tensor]"): _TYPE.format(
        got="TypeError for an A that is not a tensor", want="ValueError"
    ),
    ("test_sparse_matmul.py", "test_sparse_mm_error[bad_format]"): _TYPE.format(
        got="TypeError for a CSC A", want="ValueError"
    ),
    ("test_sparse_logsumexp.py", "test_dense_layout_raises"): _TYPE.format(
        got="TypeError for a dense input", want="NotImplementedError"
    ),
    ("test_sparse_bidir_logsumexp.py", "test_dense_layout_raises"): _TYPE.format(
        got="TypeError for a dense input", want="NotImplementedError"
    ),
    ("test_sparse_logsumexp.py", "test_unsupported_rank_raises"): _TYPE.format(
        got="ValueError for a 4-D input", want="NotImplementedError"
    ),
    ("test_sparse_bidir_logsumexp.py", "test_unsupported_rank_raises"): _TYPE.format(
        got="ValueError for a 4-D input", want="NotImplementedError"
    ),
    ("test_sparse_logsumexp.py", "test_dim_out_of_range_raises"): _TYPE.format(
        got="ValueError for an out-of-range dim", want="IndexError"
    ),
    ("test_sparse_logsumexp.py", "test_dim_empty_or_repeated_raises"): _TYPE.format(
        got="TypeError for dim=[] and ValueError for a repeated dim", want="RuntimeError"
    ),
    ("test_distributions.py", "test_native_csr_requirement"): _TYPE.format(
        got="TypeError for a COO scale_tril of SparseMultivariateNormalNative", want="ValueError"
    ),
    ("test_random.py", "test_make_spd_sparse_invalid_layout"): _TYPE.format(
        got="TypeError for a strided layout", want="ValueError"
    ),
    ("test_bicgstab.py", "test_bicgstab_validates_arguments_before_budget_return"):
        _TYPE.format(got="TypeError for an operator or preconditioner that is neither a tensor "
                     "nor a callable", want="RuntimeError"),
    ("test_indexed_matmul.py", "test_segment_mm_raises_on_old_pytorch"):
        "torch_api requires torch>=2.5 (its dependency), so it has no run-time guard for an "
        "older torch.__version__",
    ("test_indexed_matmul.py", "test_gather_mm_raises_on_old_pytorch"):
        "torch_api requires torch>=2.5 (its dependency), so it has no run-time guard for an "
        "older torch.__version__",
    ("test_jax_bindings.py", "test_t2j_and_roundtrip"):
        "t2j refuses float64 data while JAX's x64 mode is off (a TypeError), rather than hand out "
        "an array that JAX's operations silently compute in float32 (bridge's rule)",
    ("test_jax_bindings.py", "test_t2j_and_j2t_coo"):
        "t2j_coo refuses float64 data while JAX's x64 mode is off (a TypeError), as t2j does",
    ("test_jax_bindings.py", "test_t2j_and_j2t_csr"):
        "t2j_csr refuses float64 data while JAX's x64 mode is off (a TypeError), as t2j does",
}
