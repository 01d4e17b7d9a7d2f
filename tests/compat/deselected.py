"""The original's tests that do not test its public behaviour, deselected with the reason.

Keys are ``(test file, test function)``; every parametrisation of the function is deselected.
Tests of the original's private helpers (names with a leading underscore, and its ``_compat``
module) test internals torch_api does not have; the others test the original's own source
files and docstrings, which are not part of its API.
"""

_PRIVATE = "tests the original's private helper {}, which torch_api does not have"
_SOURCE = "tests the original's own {}, not its API"

DESELECTED: dict[tuple[str, str], str] = {
    ("test_distributions.py", "test_sparse_batch_mv"): _PRIVATE.format("_batch_sparse_mv"),
    ("test_encoders.py", "test_trim"): _PRIVATE.format("_trim_nd"),
    ("test_encoders.py", "test_gen_coords"): _PRIVATE.format("_gen_coords"),
    ("test_encoders.py", "test_gen_coords_nd_1d"): _PRIVATE.format("_gen_coords_nd"),
    ("test_encoders.py", "test_gen_coords_nd_2d"): _PRIVATE.format("_gen_coords_nd"),
    ("test_encoders.py", "test_gen_coords_nd_3d_consistency"): _PRIVATE.format(
        "_gen_coords / _gen_coords_nd"
    ),
    ("test_encoders.py", "test_gen_offsets"): _PRIVATE.format("_gen_offsets"),
    ("test_encoders.py", "test_gen_offsets_nd_consistency"): _PRIVATE.format(
        "_gen_offsets / _gen_offsets_nd"
    ),
    ("test_sparse_bidir_logsumexp.py", "test_bidir_returns_share_one_allocation"): _PRIVATE.format(
        "_bidir_2d / _bidir_batched"
    ),
    (
        "test_sparse_triangular_solve.py",
        "test_linalg_solve_triangular_compat_dispatches_dense_to_modern_backend",
    ): _PRIVATE.format("_compat.linalg_solve_triangular_compat"),
    ("test_utils.py", "test_unbatched_sort"): _PRIVATE.format("_sort_coo_indices"),
    ("test_utils.py", "test_batched_sort"): _PRIVATE.format("_sort_coo_indices"),
    ("test_utils.py", "test_demcompress_crow_indices"): _PRIVATE.format(
        "_demcompress_crow_indices"
    ),
    ("test_doctests.py", "test_doctest"): _SOURCE.format(
        "docstring examples (doctest of each of its modules)"
    ),
    ("test_doctests.py", "test_doctest_coverage"): _SOURCE.format(
        "docstring examples (that its modules have doctests)"
    ),
    ("test_deprecated_torch_apis.py", "test_deprecated_torch_calls_are_not_reintroduced"):
        _SOURCE.format("source files (no deprecated torch calls in them)"),
    ("test_deprecated_torch_apis.py", "test_documentation_does_not_use_deprecated_norm_apis"):
        _SOURCE.format("README and docs folder (absent from the wheel)"),
    ("test_release_version.py", "test_update_release_version_updates_every_location"):
        _SOURCE.format("release script (absent from the wheel)"),
    ("test_release_version.py", "test_update_release_version_rejects_inconsistent_metadata"):
        _SOURCE.format("release script (absent from the wheel)"),
    ("test_release_version.py", "test_update_release_version_rejects_non_increasing_version"):
        _SOURCE.format("release script (absent from the wheel)"),
    ("test_release_version.py", "test_update_release_version_rejects_invalid_stable_version"):
        _SOURCE.format("release script (absent from the wheel)"),
}
