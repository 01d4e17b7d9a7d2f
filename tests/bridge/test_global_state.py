"""No package changes global state: importing and using bridge, torch_api and jax_api leaves
``jax.config`` and ``os.environ`` as they were, imports nothing optional, prints and warns nothing.

Runs in a fresh interpreter, so that what the rest of the test session imported does not count.
"""

from __future__ import annotations

import json
import os
import textwrap

from tests.helpers import run_python

SCRIPT = textwrap.dedent(
    r"""
    import contextlib, io, json, os, sys, warnings

    report = {}
    env_before = dict(os.environ)

    def quiet_import(name):
        out, err = io.StringIO(), io.StringIO()
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            warnings.simplefilter("always")
            module = __import__(name)
        report[f"noise:{name}"] = [out.getvalue(), err.getvalue(), [str(w.message) for w in caught]]
        return module

    bridge = quiet_import("bridge")
    torch_api = quiet_import("torch_api")
    report["jax_after_torch_api"] = sorted(m for m in ("jax", "cupy") if m in sys.modules)

    report["env_changed_by_imports"] = sorted(
        k for k in set(env_before) | set(os.environ) if env_before.get(k) != os.environ.get(k)
    )
    import jax  # jax itself sets TF_CPP_MIN_LOG_LEVEL at import and TPU_* at backend start
    jax.numpy.zeros(1).block_until_ready()
    env_before = dict(os.environ)
    config_before = dict(jax.config.values)
    jax_api = quiet_import("jax_api")
    report["cupy_after_jax_api"] = "cupy" in sys.modules

    import numpy as np
    import torch
    import jax.numpy as jnp
    from jax.experimental import sparse as jsparse

    warnings.simplefilter("ignore")  # torch's own beta warnings while *using* the packages
    D = torch.tensor([[4.0, 1.0, 0.0], [1.0, 5.0, 2.0], [0.0, 2.0, 6.0]], dtype=torch.float64)
    A = D.to_sparse_csr()
    B = torch.ones(3, 2, dtype=torch.float64)
    called = []

    errors = []

    def call(module, name, *args, **kwargs):
        # other suites test these functions; here only their effect on global state matters
        if hasattr(module, name):
            try:
                getattr(module, name)(*args, **kwargs)
                called.append(f"{module.__name__}.{name}")
            except Exception as exc:
                errors.append(f"{module.__name__}.{name}: {exc!r}")

    call(bridge, "to_jax", torch.ones(3))
    call(bridge, "to_numpy", jnp.ones(3))
    call(bridge, "to_torch", np.ones(3))
    call(bridge, "to_scipy", A)
    with jax.enable_x64(True):
        call(bridge, "to_jax", A)
    call(torch_api, "sparse_mm", A, B)
    call(torch_api, "sparse_generic_solve", A, B)
    call(torch_api, "sparse_solve_j4t", A, B)
    a, b = torch.ones(4, 2), torch.ones(2, 2, 3)
    call(torch_api, "segment_mm", a, b, torch.tensor([1, 3]))
    call(torch_api, "gather_mm", a, b, torch.tensor([0, 1, 1, 0]))
    J = jsparse.BCOO.fromdense(jnp.asarray(D.float().numpy()))
    call(jax_api, "sparse_mm", J, jnp.ones((3, 2)))
    call(jax_api, "segment_mm", jnp.ones((4, 2)), jnp.ones((2, 2, 3)), jnp.array([1, 3]))
    call(jax_api, "gather_mm", jnp.ones((4, 2)), jnp.ones((2, 2, 3)), jnp.array([0, 1, 1, 0]))

    config_after = dict(jax.config.values)
    report["config_changed"] = sorted(
        k for k in set(config_before) | set(config_after)
        if repr(config_before.get(k)) != repr(config_after.get(k))
    )
    env_after = dict(os.environ)
    report["env_changed"] = sorted(
        k for k in set(env_before) | set(env_after) if env_before.get(k) != env_after.get(k)
    )
    report["called"], report["errors"] = called, errors
    report["cupy_at_end"] = "cupy" in sys.modules
    print(json.dumps(report))
    """
)


def _run() -> dict:
    # no JAX_* / XLA_* settings and only the repository on PYTHONPATH
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JAX_", "XLA_")) and k != "PYTHONPATH"}
    proc = run_python(SCRIPT, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_packages_leave_global_state_alone():
    report = _run()
    needed = {"bridge.to_jax", "bridge.to_scipy", "torch_api.sparse_mm"}
    assert needed <= set(report["called"]), report
    assert report["jax_after_torch_api"] == [], "importing bridge/torch_api imported jax or cupy"
    assert not report["cupy_after_jax_api"], "importing jax_api imported cupy"
    for name in ("bridge", "torch_api", "jax_api"):
        assert report[f"noise:{name}"] == ["", "", []], f"importing {name} printed or warned"
    assert report["config_changed"] == [], "jax.config values changed"
    assert report["env_changed_by_imports"] == [], "importing bridge/torch_api changed os.environ"
    assert report["env_changed"] == [], "os.environ changed"
    assert not report["cupy_at_end"]
