"""The original's module paths and its ``jax``/``cupy`` sub-packages, as torch_api names."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import torch_api
import torch_api.cupy as tcupy
import torch_api.jax as tjax

# original module path -> the public namespace its names come from
PATHS = {
    "utils.random_sparse": "utils", "utils.utils": "utils", "utils.dist_stats_helpers": "utils",
    "utils.linear_cg": "utils", "utils.minres": "utils", "utils.bicgstab": "utils",
    "utils.lsmr": "utils", "distributions.sparse_multivariate_normal": "distributions",
    "distributions.constraints": "distributions", "encoders.pairwise_encoder": "encoders",
    "encoders.pairwise_voxel_encoder": "encoders", "sparse_matmul": "", "sparse_solve": "",
    "sparse_lstsq": "", "indexed_matmul": "", "sparse_logsumexp": "", "jax.jax_bindings": "jax",
    "jax.jax_sparse_solve": "", "cupy.cupy_bindings": "cupy", "cupy.cupy_sparse_solve": "",
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_module_path_re_exports_the_public_objects(path):
    module = importlib.import_module(f"torch_api.{path}")
    home = importlib.import_module("torch_api" + (f".{PATHS[path]}" if PATHS[path] else ""))
    for name in module.__all__:
        assert getattr(module, name) is getattr(home, name), name
        assert name in home.__all__
    own = module.__name__
    defined = [n for n, v in vars(module).items() if getattr(v, "__module__", None) == own]
    assert defined == []  # a re-export, never a second home for code


def test_importing_a_module_path_keeps_the_function_of_that_name():
    for name in ("bicgstab", "linear_cg", "lsmr", "minres"):
        module = importlib.import_module(f"torch_api.utils.{name}")
        assert getattr(torch_api.utils, name) is getattr(module, name)
        assert callable(getattr(torch_api.utils, name))


def test_sub_packages_import_without_jax_or_cupy():
    code = textwrap.dedent("""
        import sys
        sys.modules["jax"] = None; sys.modules["cupy"] = None  # as if not installed
        import torch, torch_api.jax as j, torch_api.cupy as c
        import importlib.util
        assert j.sparse_solve_j4t is __import__("torch_api").sparse_solve_j4t
        for f in (lambda: j.t2j(torch.ones(2)), lambda: j.spmm_t4j(torch.eye(2).to_sparse())):
            try:
                f()
            except ImportError as e:
                assert "sparsegradutils[jax]" in str(e), e
            else:
                raise AssertionError("no ImportError")
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr


def test_have_flags_report_installation():
    assert tjax.have_jax is (importlib.util.find_spec("jax") is not None)
    assert tcupy.have_cupy is (importlib.util.find_spec("cupy") is not None)


@pytest.fixture
def A():
    g = torch.Generator().manual_seed(0)
    return torch.randn(5, 4, generator=g, dtype=torch.float64).relu()


@pytest.mark.parametrize("x64", [True, False])
def test_t2j_j2t_round_trip(x64):
    jax = pytest.importorskip("jax")
    dtype = torch.float64 if x64 else torch.float32
    x = torch.randn(4, 3, dtype=dtype)
    with jax.enable_x64(x64):
        y = tjax.t2j(x)
        assert y.shape == (4, 3) and str(y.dtype) == str(dtype).removeprefix("torch.")
        assert torch.equal(tjax.j2t(y), x)


def test_t2j_refuses_float64_without_x64():
    jax = pytest.importorskip("jax")
    with jax.enable_x64(False), pytest.raises(TypeError):
        tjax.t2j(torch.ones(2, dtype=torch.float64))


def test_sparse_round_trips_keep_values(A):
    jax = pytest.importorskip("jax")
    from jax.experimental import sparse

    with jax.enable_x64(True):
        coo = tjax.t2j_coo(A.to_sparse_coo())
        assert isinstance(coo, sparse.COO)
        np.testing.assert_array_equal(np.asarray(coo.todense()), A.numpy())
        back = tjax.j2t_coo(coo)
        assert back.layout == torch.sparse_coo and back._nnz() == int((A != 0).sum())
        assert torch.equal(back.to_dense(), A)
        csr = tjax.t2j_csr(A.to_sparse_csr())
        assert isinstance(csr, sparse.CSR)
        back = tjax.j2t_csr(csr)
        assert back.layout == torch.sparse_csr and torch.equal(back.to_dense(), A)
        assert torch.equal(tjax.j2t_coo(sparse.BCOO.fromdense(tjax.t2j(A))).to_dense(), A)


def test_sparse_converters_refuse_the_wrong_layout(A):
    pytest.importorskip("jax")
    with pytest.raises(TypeError, match="x_torch"):
        tjax.t2j_coo(A.to_sparse_csr())
    with pytest.raises(TypeError, match="x_torch"):
        tjax.t2j_csr(A)
    with pytest.raises(TypeError, match="x_jax"):
        tjax.j2t_csr(np.ones(2))


def test_spmm_t4j_matches_torch_and_jits(A):
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        matvec = tjax.spmm_t4j(A.to_sparse_csr())
        X = torch.randn(4, 2, dtype=torch.float64)
        torch.testing.assert_close(tjax.j2t(matvec(tjax.t2j(X))), A @ X)
        torch.testing.assert_close(tjax.j2t(jax.jit(matvec)(tjax.t2j(X[:, 0]))), A @ X[:, 0])
        with pytest.raises(ValueError, match="x"):
            matvec(tjax.t2j(torch.ones(5, dtype=torch.float64)))


@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr], ids=["coo", "csr"])
def test_cupy_names_use_scipy_on_cpu(A, layout):
    to_c, to_t = ((tcupy.t2c_coo, tcupy.c2t_coo) if layout == torch.sparse_coo
                  else (tcupy.t2c_csr, tcupy.c2t_csr))
    M = to_c(A.to_sparse(layout=layout))
    kind = "coo" if layout == torch.sparse_coo else "csr"
    assert sp.issparse(M) and M.format == kind
    np.testing.assert_array_equal(M.toarray(), A.numpy())
    back = to_t(M)
    assert back.layout == layout and torch.equal(back.to_dense(), A)
    with pytest.raises(TypeError, match="x_cupy"):
        to_t(sp.random(3, 3, format="csc" if kind == "coo" else "coo"))
