"""Shared fixtures: dtype/layout parametrisations, a scoped JAX x64 switch, GPU skipping."""

from __future__ import annotations

import importlib.util

import pytest
import torch

HAS_JAX = importlib.util.find_spec("jax") is not None
HAS_CUDA = torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _torch_distribution_default_validation():
    """Restore torch's global default for distribution argument checks after each test.

    The first ``torch.compile`` in a process turns it off (torch._dynamo's patcher calls
    ``Distribution.set_default_validate_args(False)``), which would otherwise leak into the
    tests that check the default behaviour, depending on which worker ran what first.
    """
    saved = torch.distributions.Distribution._validate_args
    yield
    torch.distributions.Distribution.set_default_validate_args(saved)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture(params=[torch.int32, torch.int64], ids=["i32", "i64"])
def index_dtype(request):
    return request.param


@pytest.fixture(params=[torch.sparse_coo, torch.sparse_csr], ids=["coo", "csr"])
def layout(request):
    return request.param


@pytest.fixture(params=[None, 3], ids=["unbatched", "batch3"])
def batch(request):
    return request.param


@pytest.fixture
def x64():
    """Enable JAX's 64-bit mode for one test only (never globally)."""
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        yield
