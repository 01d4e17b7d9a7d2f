"""The benchmark harness records what it measures and what it could not: failures are rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks import _memory
from benchmarks._harness import Case, Goal, Impl, Runner, Unsupported, measure, time_ratio
from benchmarks._problems import Config, as_layout, stencil
from benchmarks._runners import _cotangent_torch, torch_runner


def _measure(*impls, repeats=2):
    return measure(Case("op", "problem", list(impls)), device="cpu", repeats=repeats, budget_s=1)


def _unsupported():
    raise Unsupported("no such kernel")


def _missing():
    raise ImportError("somelib (pip install somelib)")


def _broken():
    raise RuntimeError("boom")


def test_failures_are_recorded_with_their_reason():
    called = []
    res = _measure(
        Impl("missing", _missing),
        Impl("unsupported", _unsupported),
        Impl("broken", _broken),
        Impl("huge", lambda: called.append(1), needs_bytes=2**62),
        Impl("fine", lambda: Runner(forward=lambda: torch.ones(3))),
    )
    assert list(res) == ["missing", "unsupported", "broken", "huge", "fine"]
    assert res["missing"].status == "not installed: somelib (pip install somelib)"
    assert res["unsupported"].status == "unsupported: no such kernel"
    assert res["broken"].status == "error: RuntimeError: boom"
    assert res["huge"].status.startswith("oom: needs about") and called == []
    assert res["fine"].ok and len(res["fine"].fwd_s) == 2 and res["fine"].fwdbwd_s == []


def test_unsupported_backward_keeps_the_forward():
    def backward(out):
        raise Unsupported("no gradient")

    runner = Runner(forward=lambda: torch.ones(2), backward=backward)
    res = _measure(Impl("fwd only", lambda: runner))
    r = res["fwd only"]
    assert r.ok and len(r.fwd_s) == 2 and r.fwdbwd_s == [] and r.step_peak is None


def test_torch_runner_gradients_are_those_of_the_fixed_cotangent():
    A = torch.randn(5, 4, dtype=torch.float64)
    B = torch.randn(4, 3, dtype=torch.float64)
    runner = torch_runner(torch.mm, (A, B), (0, 1))
    out = runner.forward()
    dA, dB = runner.backward(out)
    G = _cotangent_torch(out)  # the runner's upstream gradient: fixed seed, output's shape
    torch.testing.assert_close(dA, G @ B.T)
    torch.testing.assert_close(dB, A.T @ G)
    assert not A.requires_grad and not B.requires_grad  # the caller's tensors are left alone


def test_budget_stops_the_rounds_after_the_minimum_samples():
    import time

    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.02)
        return torch.ones(2)

    res = measure(Case("op", "p", [Impl("slow", lambda: Runner(forward=slow)),
                                    Impl("fast", lambda: Runner(forward=lambda: torch.ones(2)))]),
                  device="cpu", repeats=4, budget_s=0.01, one_thread=False)
    # warm-up, memory, one timed call: the memory run is not a sample (its allocator is slowed)
    assert len(res["slow"].fwd_s) == 1 and res["slow"].budget_hit
    assert len(calls) == 3 and res["slow"].fwd_s[0] >= 0.02
    assert len(res["fast"].fwd_s) == 4 and not res["fast"].budget_hit
    # past the budget, a minimum number of samples is still taken (the full suite asks for 3)
    calls.clear()
    res = measure(Case("op", "p", [Impl("slow", lambda: Runner(forward=slow))]),
                  device="cpu", repeats=5, budget_s=0.01, min_samples=3, one_thread=False)
    assert len(res["slow"].fwd_s) == 3 and res["slow"].budget_hit and len(calls) == 5


def test_a_very_slow_baseline_is_timed_by_its_warm_up_alone():
    import time

    calls = {"base": 0, "ours": 0}

    def make(name, seconds):
        def fwd():
            calls[name] += 1
            time.sleep(seconds)
            return torch.ones(2)

        return lambda: Runner(forward=fwd)

    res = measure(Case("op", "p", [Impl("ours", make("ours", 0.03), ours=True),
                                    Impl("base", make("base", 0.03))]),
                  device="cpu", repeats=3, budget_s=10, slow_s=0.02, one_thread=False)
    assert calls["base"] == 1 and len(res["base"].fwd_s) == 1 and res["base"].fwd_s[0] >= 0.03
    assert res["base"].ok and res["base"].fwd_peak is None and "warm-up" in res["base"].note
    # ours is always measured in full
    assert calls["ours"] == 5 and len(res["ours"].fwd_s) == 3 and res["ours"].fwd_peak is not None
    assert not res["ours"].note


def test_time_ratio_and_goal_need_both_sides():
    res = _measure(
        Impl("ours", lambda: Runner(forward=lambda: torch.ones(2)), ours=True),
        Impl("base", _unsupported),
    )
    assert time_ratio("ours", "base", "fwd_s")(res) is None
    assert time_ratio("ours", "ours", "fwd_s")(res) == pytest.approx(1.0)
    goal = Goal("x", time_ratio("ours", "missing"), 1.0)
    assert goal.value(res) is None


def test_nbytes_counts_shared_storage_once():
    A = as_layout(stencil(3, "general", torch.float32), "csr", torch.int32)
    dA = torch.sparse_csr_tensor(A.crow_indices(), A.col_indices(), A.values() * 2, A.shape)
    parts = 4 * (A.shape[0] + 1) + 4 * A._nnz() + 4 * A._nnz()
    assert _memory.nbytes(A) == parts
    assert _memory.nbytes((A, dA)) == parts + 4 * A._nnz()  # dA adds its values only
    assert _memory.nbytes([np.zeros(10), np.zeros(10)[:5]]) == 160


@pytest.mark.skipif(not _memory.rss_available(), reason="needs Linux /proc/self/clear_refs")
def test_cpu_peak_sees_a_large_allocation():
    out, peak = _memory._cpu_peak(lambda: torch.ones(2**24).sum())  # 64 MiB, freed
    assert float(out) == 2**24
    assert 60 * 2**20 <= peak <= 200 * 2**20
    # repeated buffers below 32 MiB stay with the allocator between measurements, and a
    # measurement still sees each call's own peak
    for _ in range(3):
        torch.ones(2**21).sum()  # 8 MiB
    _, peak = _memory._cpu_peak(lambda: torch.ones(2**21).sum())
    assert 7 * 2**20 <= peak <= 40 * 2**20


def test_built_in_matrices():
    A = stencil(4, "general", torch.float64)
    D = A.to_dense()
    inner = 1 + 4 + 16  # the voxel (1, 1, 1) has all 26 neighbours
    assert (D[inner] != 0).sum() == 27 and D[inner, inner] == 27
    L = stencil(4, "lower", torch.float64).to_dense()
    assert torch.equal(L, torch.tril(L)) and (L[inner] != 0).sum() == 14
    P = stencil(4, "spd", torch.float64).to_dense()
    assert torch.equal(P, P.T) and torch.linalg.eigvalsh(P).min() > 0
    assert (P[inner] != 0).sum() == 7
    assert torch.equal(stencil(4, "spd_lower", torch.float64).to_dense(), torch.tril(P))


def test_matrix_market_problems(tmp_path):
    import scipy.io
    import scipy.sparse as sp

    M = sp.random(30, 30, density=0.1, random_state=0, format="coo")
    path = tmp_path / "m.mtx"
    scipy.io.mmwrite(path, M)
    cfg = Config.for_suite("quick", matrix=path)
    G = cfg.matrix_for("general", "coo").to_dense().double()
    np.testing.assert_allclose(G.numpy(), M.toarray(), rtol=1e-6)
    L = cfg.matrix_for("lower", "csr").to_dense().double()
    assert torch.equal(L, torch.tril(L)) and (L.diagonal() >= 1).all()
    S = cfg.matrix_for("spd", "csr").to_dense().double()
    assert torch.allclose(S, S.T) and torch.linalg.eigvalsh(S).min() > 0
    S_lower = cfg.matrix_for("spd_lower", "coo").to_dense().double()
    torch.testing.assert_close(S_lower, torch.tril(S))
    scipy.io.mmwrite(tmp_path / "r.mtx", sp.random(3, 4, density=0.5, random_state=0))
    with pytest.raises(ValueError, match="square"):
        Config.for_suite("quick", matrix=tmp_path / "r.mtx").matrix_for("spd")


def test_memory_scaling_without_a_baseline_installed(tmp_path, monkeypatch):
    # CI installs only the `test` extra: torchsparsegradutils is absent and its rows carry no peak
    from benchmarks import _plots, memory_scaling

    monkeypatch.setitem(__import__("sys").modules, "torchsparsegradutils", None)
    cfg = Config.for_suite("quick", size=5, rhs=2)
    rows = memory_scaling.run(cfg, progress=lambda msg: None)
    tsgu_rows = [r for r in rows if r["impl"] == "tsgu 0.2.7"]
    assert tsgu_rows and all(r["status"] != "ok" and "peak_mb" not in r for r in tsgu_rows)
    fits = [r for r in rows if r["kind"] == "fit"]
    assert {r["impl"] for r in fits} == {"torch_api"}
    paths = _plots.write_all(tmp_path, "t", [], rows)
    assert [p.name for p in paths] == ["t-scaling.png"] and paths[0].stat().st_size > 0
