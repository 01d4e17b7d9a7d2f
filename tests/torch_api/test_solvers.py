"""The pure-PyTorch iterative solvers of torch_api.utils against dense direct solves."""

from __future__ import annotations

import warnings

import pytest
import torch

from tests.helpers import solve_matrix, to_sparse
from torch_api.utils import (
    BICGSTABSettings,
    ConvergenceError,
    ConvergenceWarning,
    LinearCGSettings,
    MINRESSettings,
    bicgstab,
    linear_cg,
    lsmr,
    minres,
)

N = 24


def indefinite(n=N, dtype=torch.float64, seed=0):
    """Symmetric, nonsingular and indefinite: a dominant diagonal with alternating signs."""
    D = solve_matrix(n, "spd", dtype, seed)
    D.diagonal()[::2] *= -1
    return D


def as_kind(D: torch.Tensor, kind: str):
    """``D`` as the operator form a solver accepts."""
    if kind == "coo":
        return to_sparse(D, torch.sparse_coo)
    if kind == "csr32":
        return to_sparse(D, torch.sparse_csr, torch.int32)
    if kind == "csr64":
        return to_sparse(D, torch.sparse_csr, torch.int64)
    if kind == "dense":
        return D
    return lambda X: D @ X


KINDS = ["coo", "csr32", "csr64", "dense", "callable"]


def rhs(n, k, dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    B = torch.randn(n, k if k else 1, generator=g, dtype=torch.float64).to(dtype)
    return B[:, 0] if k == 0 else B


def close(dtype):
    return {"rtol": 1e-8, "atol": 1e-9} if dtype == torch.float64 else {"rtol": 1e-3, "atol": 1e-4}


def solver_tol(dtype):
    return 1e-11 if dtype == torch.float64 else 1e-6


# ------------------------------------------------------------------------------------ CG
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [0, 3], ids=["vector", "block"])
def test_cg_matches_direct_solve(kind, k, dtype):
    D = solve_matrix(N, "spd", dtype)
    B = rhs(N, k, dtype)
    X = linear_cg(as_kind(D, kind), B, tolerance=solver_tol(dtype))
    assert X.shape == B.shape and X.dtype == dtype
    torch.testing.assert_close(X, torch.linalg.solve(D, B), **close(dtype))


def test_cg_batched_sparse_operator_and_batched_rhs():
    D = torch.stack([solve_matrix(N, "spd", seed=s) for s in range(3)])
    B = torch.randn(3, N, 2, dtype=torch.float64)
    X = linear_cg(D.to_sparse(), B, tolerance=1e-11)
    torch.testing.assert_close(X, torch.linalg.solve(D, B), **close(torch.float64))
    X = linear_cg(D, B, tolerance=1e-11)  # dense batched operator broadcasts too
    torch.testing.assert_close(X, torch.linalg.solve(D, B), **close(torch.float64))


def test_cg_jacobi_preconditioner_needs_fewer_iterations():
    S = solve_matrix(N, "spd")
    scale = torch.logspace(0, 3, N, dtype=torch.float64)
    D = scale[:, None] * S * scale[None, :]  # SPD, badly scaled
    B = rhs(N, 2, torch.float64)
    inv_diag = 1 / D.diagonal()
    X0, info0 = linear_cg(D, B, tolerance=1e-10, return_info=True)
    X1, info1 = linear_cg(
        D, B, tolerance=1e-10, preconditioner=lambda R: inv_diag[:, None] * R, return_info=True
    )
    ref = torch.linalg.solve(D, B)
    torch.testing.assert_close(X1, ref, rtol=1e-7, atol=0)
    assert info1.reason == "converged"
    assert info1.iterations < info0.iterations


def test_cg_info_fields():
    D = solve_matrix(N, "spd")
    B = rhs(N, 3, torch.float64)
    X, info = linear_cg(D, B, tolerance=1e-9, return_info=True)
    assert info.reason == "converged" and info.tolerance == 1e-9
    assert info.converged.shape == (3,) and bool(info.converged.all())
    true = torch.linalg.vector_norm(B - D @ X, dim=0) / torch.linalg.vector_norm(B, dim=0)
    torch.testing.assert_close(info.true_relative_residual, true)
    assert bool((info.recursive_relative_residual <= 1e-9).all())
    assert info.matvecs == info.iterations + 1  # one per iteration + the final residual check
    assert 0 < info.iterations <= N


def test_cg_lanczos_tridiagonal():
    n = 8
    D = solve_matrix(n, "spd", seed=3)
    B = rhs(n, 2, torch.float64)
    X, T = linear_cg(D, B, n_tridiag=2, tolerance=1e-14, max_iter=50, max_tridiag_iter=n)
    for j in range(2):
        Tj = T[j]
        torch.testing.assert_close(Tj, Tj.T)
        assert torch.count_nonzero(torch.triu(Tj, 2)) == 0
        b = B[:, j]
        # first Lanczos vector is b / ||b||: T[0, 0] is its Rayleigh quotient
        torch.testing.assert_close(Tj[0, 0], b @ D @ b / (b @ b))
    # CG needs all n steps here, so the Lanczos matrix is full length: it has A's eigenvalues
    assert T.shape == (2, n, n)
    torch.testing.assert_close(
        torch.linalg.eigvalsh(T[0]), torch.linalg.eigvalsh(D), rtol=1e-6, atol=1e-6
    )
    torch.testing.assert_close(X, torch.linalg.solve(D, B), **close(torch.float64))


def test_cg_lanczos_extremal_eigenvalues_with_few_iterations():
    g = torch.Generator().manual_seed(5)
    Q, _ = torch.linalg.qr(torch.randn(40, 40, generator=g, dtype=torch.float64))
    D = Q @ torch.diag(torch.logspace(0, 3, 40, dtype=torch.float64)) @ Q.T  # spread spectrum
    b = rhs(40, 0, torch.float64)
    with pytest.warns(ConvergenceWarning):
        _, T = linear_cg(D, b, n_tridiag=1, tolerance=1e-14, max_iter=20, max_tridiag_iter=20)
    assert T.shape == (1, 20, 20)
    ritz, ev = torch.linalg.eigvalsh(T[0]), torch.linalg.eigvalsh(D)
    assert abs(ritz[-1] - ev[-1]) / ev[-1] < 1e-3  # the largest Ritz value converges first
    assert ritz[0] >= ev[0] - 1e-9 and ritz[-1] <= ev[-1] + 1e-9  # interlacing


def test_cg_min_iter_and_zero_iterations_for_exact_guess():
    D = solve_matrix(N, "spd")
    B = rhs(N, 2, torch.float64)
    X = torch.linalg.solve(D, B)
    _, info = linear_cg(D, B, initial_guess=X, return_info=True)
    assert info.iterations == 0 and info.reason == "converged"
    _, info = linear_cg(D, B, initial_guess=X, min_iter=3, return_info=True)
    assert info.iterations == 3


def test_cg_mean_reduction_stops_no_later_than_all():
    D = solve_matrix(N, "spd")
    B = torch.cat(
        [rhs(N, 0, torch.float64)[:, None], (D @ torch.ones(N, dtype=torch.float64))[:, None]], 1
    )
    _, info_all = linear_cg(D, B, tolerance=1e-8, return_info=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, info_mean = linear_cg(
            D, B, tolerance=1e-8, convergence_reduction="mean", return_info=True
        )
    assert info_mean.iterations <= info_all.iterations
    assert info_mean.reason in ("converged", "mean_converged")


def test_cg_stop_updating_after_is_reported():
    D = solve_matrix(N, "spd")
    B = rhs(N, 2, torch.float64)
    with pytest.warns(ConvergenceWarning, match="linear_cg did not converge"):
        _, info = linear_cg(D, B, tolerance=1e-12, stop_updating_after=1e-2, return_info=True)
    assert info.reason == "stopped_updating"
    assert bool((info.true_relative_residual <= 1e-2).all())
    assert not bool(info.converged.any())


def test_cg_nonconvergence_warns_or_raises():
    D = solve_matrix(N, "spd")
    B = rhs(N, 2, torch.float64)
    with pytest.warns(ConvergenceWarning, match=r"linear_cg did not converge.*after 2 iterations"):
        _, info = linear_cg(D, B, max_iter=2, return_info=True)
    assert info.reason == "max_iter"
    with pytest.raises(ConvergenceError, match="after 2 iterations"):
        linear_cg(D, B, max_iter=2, raise_on_failure=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning):
            linear_cg(D, B, settings=LinearCGSettings(max_cg_iterations=2))


def test_cg_on_indefinite_matrix_reports_breakdown():
    D = indefinite()
    with pytest.warns(ConvergenceWarning, match="SPD"):
        linear_cg(D, rhs(N, 2, torch.float64), tolerance=1e-10)


def test_cg_zero_rhs_column_gives_zero():
    D = solve_matrix(N, "spd")
    B = rhs(N, 2, torch.float64)
    B[:, 1] = 0
    X = linear_cg(D, B, tolerance=1e-11, initial_guess=torch.ones_like(B))
    assert torch.equal(X[:, 1], torch.zeros(N, dtype=torch.float64))


# -------------------------------------------------------------------------------- MINRES
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [0, 3], ids=["vector", "block"])
def test_minres_symmetric_indefinite(kind, k, dtype):
    D = indefinite(dtype=dtype)
    B = rhs(N, k, dtype)
    X = minres(as_kind(D, kind), B, settings=MINRESSettings(minres_tolerance=solver_tol(dtype)))
    assert X.shape == B.shape and X.dtype == dtype
    torch.testing.assert_close(X, torch.linalg.solve(D, B), **close(dtype))


@pytest.mark.parametrize("precondition", [False, True])
def test_minres_shifts_and_value(precondition):
    D = indefinite()
    B = rhs(N, 2, torch.float64)
    eye = torch.eye(N, dtype=torch.float64)
    shifts = torch.tensor([0.0, 0.7, -2.5], dtype=torch.float64)
    inv = 1 / D.diagonal().abs()
    pre = (lambda R: inv[:, None] * R) if precondition else None
    settings = MINRESSettings(minres_tolerance=1e-12)
    X = minres(D, B, shifts=shifts, preconditioner=pre, settings=settings)
    assert X.shape == (3, N, 2)
    for i, s in enumerate(shifts):
        torch.testing.assert_close(X[i], torch.linalg.solve(D + s * eye, B), **close(torch.float64))
    x = minres(D, B[:, 0], shifts=1.5, value=0.5, preconditioner=pre, settings=settings)
    assert x.shape == (N,)
    torch.testing.assert_close(
        x, torch.linalg.solve(0.5 * D + 1.5 * eye, B[:, 0]), **close(torch.float64)
    )


def test_minres_preconditioner_on_badly_scaled_matrix():
    scale = torch.logspace(0, 2, N, dtype=torch.float64)
    D = scale[:, None] * indefinite() * scale[None, :]
    B = rhs(N, 2, torch.float64)
    inv = 1 / D.diagonal().abs()
    X = minres(
        to_sparse(D, torch.sparse_csr),
        B,
        preconditioner=lambda R: inv[:, None] * R,
        settings=MINRESSettings(minres_tolerance=1e-12),
    )
    torch.testing.assert_close(X, torch.linalg.solve(D, B), rtol=1e-7, atol=0)


def test_minres_nonconvergence_warns_or_raises():
    D = indefinite()
    B = rhs(N, 2, torch.float64)
    with pytest.warns(ConvergenceWarning, match=r"minres did not converge.*after 3 iterations"):
        minres(D, B, max_iter=3)
    with pytest.raises(ConvergenceError, match="minres"):
        minres(D, B, settings=MINRESSettings(max_cg_iterations=3), raise_on_failure=True)


# ------------------------------------------------------------------------------ BiCGSTAB
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [0, 3], ids=["vector", "block"])
def test_bicgstab_nonsymmetric(kind, k, dtype):
    D = solve_matrix(N, "general", dtype)
    B = rhs(N, k, dtype)
    X = bicgstab(
        as_kind(D, kind), B, settings=BICGSTABSettings(abstol=0.0, reltol=solver_tol(dtype))
    )
    assert X.shape == B.shape and X.dtype == dtype
    torch.testing.assert_close(X, torch.linalg.solve(D, B), **close(dtype))


def test_bicgstab_batched_rhs_initial_guess_and_preconditioners():
    D = torch.stack([solve_matrix(N, "general", seed=s) for s in range(2)])
    B = torch.randn(2, N, 3, dtype=torch.float64)
    ref = torch.linalg.solve(D, B)
    tight = BICGSTABSettings(abstol=0.0, reltol=1e-12)
    torch.testing.assert_close(bicgstab(D, B, settings=tight), ref, **close(torch.float64))
    guess = ref + 1e-3 * torch.randn_like(ref)
    torch.testing.assert_close(
        bicgstab(D, B, initial_guess=guess, settings=tight), ref, **close(torch.float64)
    )
    inv = 1 / D.diagonal(dim1=-2, dim2=-1)
    for precon in (lambda R: inv[..., None] * R, torch.diag_embed(inv)):
        X = bicgstab(D, B, settings=tight._replace(precon=precon))
        torch.testing.assert_close(X, ref, **close(torch.float64))


def test_bicgstab_nonconvergence_warns_or_raises():
    D = solve_matrix(N, "general")
    B = rhs(N, 2, torch.float64)
    with pytest.warns(ConvergenceWarning, match=r"bicgstab did not converge.*after 2 iterations"):
        bicgstab(D, B, settings=BICGSTABSettings(matvec_max=4))
    with pytest.raises(ConvergenceError, match="bicgstab"):
        bicgstab(D, B, settings=BICGSTABSettings(matvec_max=4), raise_on_failure=True)


# ---------------------------------------------------------------------------------- LSMR
def tall(m=30, n=N, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    R = torch.randn(m, n, generator=g, dtype=torch.float64) * (torch.rand(m, n, generator=g) < 0.3)
    R[:n] += 3 * torch.eye(n, dtype=torch.float64)
    return R.to(dtype)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [0, 3], ids=["vector", "block"])
def test_lsmr_least_squares(kind, k, dtype):
    A = tall(dtype=dtype)
    B = rhs(30, k, dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-7
    extra = {"Armat": lambda U: A.T @ U, "n": N} if kind == "callable" else {}
    X, itn = lsmr(as_kind(A, kind), B, atol=tol, btol=tol, maxiter=200, **extra)
    ref = torch.linalg.lstsq(A, B if k else B[:, None]).solution
    assert X.shape == ((N, k) if k else (N,)) and 0 < itn <= 200
    torch.testing.assert_close(X, ref if k else ref[:, 0], **close(dtype))


def test_lsmr_minimum_norm_damping_and_x0():
    A = tall()
    B = rhs(N, 2, torch.float64)
    Z, _ = lsmr(
        to_sparse(A.T.contiguous(), torch.sparse_csr), B, atol=1e-13, btol=1e-13, maxiter=200
    )
    torch.testing.assert_close(Z, torch.linalg.pinv(A.T) @ B, **close(torch.float64))
    b = rhs(30, 0, torch.float64)
    x, _ = lsmr(A, b, damp=2.0, atol=1e-13, btol=1e-13, maxiter=200)
    ref = torch.linalg.solve(A.T @ A + 4.0 * torch.eye(N, dtype=torch.float64), A.T @ b)
    torch.testing.assert_close(x, ref, **close(torch.float64))
    exact = torch.linalg.lstsq(A, b[:, None]).solution[:, 0]
    x, itn = lsmr(A, b, x0=exact + 1e-4, atol=1e-13, btol=1e-13, maxiter=200)
    torch.testing.assert_close(x, exact, **close(torch.float64))


def test_lsmr_zero_rhs_and_nonconvergence():
    A = tall()
    x, itn = lsmr(A, torch.zeros(30, dtype=torch.float64))
    assert itn == 0 and torch.equal(x, torch.zeros(N, dtype=torch.float64))
    with pytest.warns(ConvergenceWarning, match=r"lsmr .*did not converge.*after 2 iterations"):
        lsmr(A, rhs(30, 2, torch.float64), maxiter=2)
    with pytest.raises(ConvergenceError, match="lsmr"):
        lsmr(A, rhs(30, 2, torch.float64), maxiter=2, raise_on_failure=True)


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs():
    D = solve_matrix(6, "spd")
    b = torch.ones(6, dtype=torch.float64)
    with pytest.raises(TypeError, match="matmul_closure: expected a sparse COO/CSR tensor"):
        linear_cg("not a matrix", b)
    with pytest.raises(TypeError, match="matmul_closure.*sparse CSC"):
        minres(D.to_sparse_csc(), b)
    with pytest.raises(ValueError, match="rhs: expected float32 or float64"):
        bicgstab(D, torch.ones(6, dtype=torch.int64))
    with pytest.raises(ValueError, match="rhs: expected dtype torch.float64"):
        linear_cg(to_sparse(D, torch.sparse_csr), b.float())
    with pytest.raises(ValueError, match="matmul_closure.*expected a tensor of shape"):
        linear_cg(lambda X: X[:3], b)
    with pytest.raises(ValueError, match="preconditioner.*expected a tensor of shape"):
        minres(D, b, preconditioner=lambda X: X.float())
    with pytest.raises(ValueError, match="Armat, n"):
        lsmr(lambda x: D @ x, b)
    with pytest.raises(ValueError, match="b: expected 6 rows"):
        lsmr(D, torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="convergence_reduction"):
        linear_cg(D, b, convergence_reduction="median")
    with pytest.raises(ValueError, match="max_tridiag_iter"):
        linear_cg(D, b, n_tridiag=1, max_iter=5, max_tridiag_iter=10)
    with pytest.raises(ValueError, match="matvec_max"):
        bicgstab(D, b, settings=BICGSTABSettings(matvec_max=-1))
