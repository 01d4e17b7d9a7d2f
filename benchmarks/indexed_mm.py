"""Grouped products for graph networks: ``gather_mm`` and ``segment_mm``, gradients for a and b.

- ``gather_mm(a (N, D1), b (R, D1, D2), idx_b (N,))``, row ``i`` times ``b[idx_b[i]]``: torch_api
  (rows sorted by index, one grouped product, unsorted), jax_api, torchsparsegradutils 0.2.7,
  ``bmm(a[:, None], b[idx_b])`` in torch and its einsum in JAX (both copy a ``(D1, D2)`` matrix
  per row). Goal (issue 5): torch_api at least 13x faster than the bmm on the CPU.
- ``segment_mm(a (N, D1), b (R, D1, D2), seglen_a (R,))``, consecutive row segments times one
  matrix each: torch_api, jax_api, tsgu 0.2.7, a Python loop of one ``torch.mm`` per segment and
  JAX's own grouped product ``jax.lax.ragged_dot``.

Problems: ``N`` rows with random group indices (segment lengths are their counts), ``D1 = D2 =
32``, float32; quick: ``N = 2000, R = 8``; full: ``N = 16384`` with ``R = 16`` and ``R = 256``.
"""

from __future__ import annotations

import torch

import bridge
from benchmarks._harness import Case, Goal, Impl, time_ratio
from benchmarks._runners import jax_runner, torch_runner, tsgu

SIZES = {"quick": [(2000, 32, 32, 8)], "full": [(16384, 32, 32, 16), (16384, 32, 32, 256)]}


def _bmm_gather(a, b, idx):
    return torch.bmm(a.unsqueeze(1), b[idx]).squeeze(1)


def _jax_gather(a, b, idx):
    import jax.numpy as jnp

    return jnp.einsum("nd,nde->ne", a, b[idx])


def _loop_segment(lens: list[int]):
    def fn(a, b):
        return torch.cat([x @ w for x, w in zip(torch.split(a, lens), b, strict=False)])

    return fn


def _ragged_dot(a, b, seglen):
    import jax

    return jax.lax.ragged_dot(a, b, seglen)


def _ours_jax(name: str):
    def fn(a, b, index):
        import jax_api

        return getattr(jax_api, name)(a, b, index)

    return fn


def _problem(cfg, N, D1, D2, R):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(N, D1, generator=g).to(cfg.dtype).to(cfg.device)
    b = torch.randn(R, D1, D2, generator=g).to(cfg.dtype).to(cfg.device)
    idx = torch.randint(0, R, (N,), generator=g)
    return a, b, idx.to(cfg.device), torch.bincount(idx, minlength=R).to(cfg.device)


def _cases_for(cfg, N: int, D1: int, D2: int, R: int) -> list[Case]:
    import torch_api

    a, b, idx, seglen = _problem(cfg, N, D1, D2, R)
    info = dict(N=N, D1=D1, D2=D2, R=R, dtype=cfg.dtype_name)
    problem = f"N={N} D1={D1} D2={D2} R={R}"

    def jax_args(index):
        return tuple(bridge.to_jax(x.contiguous()) for x in (a, b, index.int()))

    gather = [
        Impl("torch_api", lambda: torch_runner(torch_api.gather_mm, (a, b, idx), (0, 1)),
             ours=True),
        Impl("jax_api", lambda: jax_runner(_ours_jax("gather_mm"), jax_args(idx), (0, 1)),
             ours=True),
        Impl("torch bmm(b[idx])", lambda: torch_runner(_bmm_gather, (a, b, idx), (0, 1))),
        Impl("jax einsum(b[idx])", lambda: jax_runner(_jax_gather, jax_args(idx), (0, 1))),
        Impl("tsgu 0.2.7", lambda: torch_runner(tsgu().gather_mm, (a, b, idx), (0, 1))),
    ]
    goals = []
    if cfg.device == "cpu":
        goals = [Goal("torch_api >= 13x faster than bmm(b[idx]) (fwd+bwd)",
                      time_ratio("torch_api", "torch bmm(b[idx])"), 1 / 13, "issue 5")]

    lens = seglen.tolist()
    segment = [
        Impl("torch_api", lambda: torch_runner(torch_api.segment_mm, (a, b, seglen), (0, 1)),
             ours=True),
        Impl("jax_api", lambda: jax_runner(_ours_jax("segment_mm"), jax_args(seglen), (0, 1)),
             ours=True),
        Impl("torch loop of mm", lambda: torch_runner(_loop_segment(lens), (a, b), (0, 1))),
        Impl("jax.lax.ragged_dot", lambda: jax_runner(_ragged_dot, jax_args(seglen), (0, 1))),
        Impl("tsgu 0.2.7", lambda: torch_runner(tsgu().segment_mm, (a, b, seglen), (0, 1))),
    ]
    return [Case("gather_mm", problem, gather, goals, info),
            Case("segment_mm", problem, segment, [], info)]


def cases(cfg) -> list[Case]:
    return [case for size in SIZES[cfg.suite] for case in _cases_for(cfg, *size)]
