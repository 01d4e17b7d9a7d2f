"""``encoder``: PairwiseEncoder -> SparseMultivariateNormal -> rsample -> backward, CSR against COO.

The pipeline of a model that predicts a sparse Gaussian over a volume: ``PairwiseEncoder(radius
2, volume (C, *spatial), upper=False)`` assembles a lower-triangular factor from per-offset voxel
values (the differentiated input, ``(len(offsets), C, *spatial)``), the factor parameterises a
``SparseMultivariateNormal`` with zero mean, one reparameterised sample is drawn from fixed noise
(the seed is reset in every call) and the gradient of ``<G, sample>`` reaches the values. One case
per parameterisation:

- ``scale_tril``: LL^T covariance, the zero offset included (``diag=True``, values 1 on it):
  the sample is a sparse product ``L eps``;
- ``precision_tril``: LDL^T precision, a strictly lower factor (``diag=False``; the unit
  diagonal is implicit) and ``diagonal=1``: the sample is a transposed unit triangular solve.

Off-diagonal values are ``0.05 * N(0, 1)``. Volume: the issue's ``(4, 32, 32, 32)`` in the full
suite (131,072 rows, about 2.2M nonzeros), ``(2, 12, 12, 12)`` in the quick one; ``--size k``
below those sides shrinks the volume to ``(C, k, k, k)``. Distributions are built with
``validate_args=False`` (the constraint checks are not part of the path being compared).

Implementations: torch_api and jax_api (``jax_api.PairwiseEncoder`` + its
``SparseMultivariateNormal``, jitted, a fixed PRNG key) and torchsparsegradutils 0.2.7's encoder
and distribution, each in COO and CSR (``--layout`` picks). tsgu's CSR path differentiates
through ``torch.sparse_csr_tensor``, whose backward densifies the factor's gradient (``S x S``):
it is recorded as ``oom`` ahead where that does not fit (the full suite's volume needs 64 GiB).
Memory counts the values, the mean and diagonal and the encoder's cached index arrays as inputs.

Goals (issue 5): the torch_api CSR path costs at most 1.2x the COO path's peak memory (inputs +
forward+backward peak) and time (forward+backward).

The build cases time and measure the encoder's construction alone (its index arrays), at the
size of torchsparsegradutils' README example in the full suite: ``PairwiseEncoder(radius=2,
volume_shape=(4, 64, 64, 64))`` (both triangles, no diagonal: 32 offsets, 1,048,576 rows,
32.5M stored entries; quick suite ``(2, 12, 12, 12)``; a ``--size k`` below the pipeline's
side shrinks it too), in COO and CSR, ours against tsgu
0.2.7's. Goal (issue 18): each torch_api layout builds at least as fast and as lean (the bytes
the build adds at its peak) as the better of tsgu's two layouts, its COO build (tsgu's CSR
build took 132 s and 11 GB there, recorded as ``oom`` ahead where that does not fit).

The memory method on the CPU sees only buffers above the mmap threshold (128 KiB), so the quick
suite's small volume gives a coarse memory ratio; the full suite's volume is the one the goals
are set on.
"""

from __future__ import annotations

import math

import torch

import bridge
from benchmarks._harness import Case, Goal, Impl, Runner, memory_ratio, time_ratio
from benchmarks._runners import jax_runner, torch_runner, tsgu

RADIUS = 2
CHANNELS_AND_SIDE = {"quick": (2, 12), "full": (4, 32)}
BUILD_CHANNELS_AND_SIDE = {"quick": (2, 12), "full": (4, 64)}  # full: the original's README
TSGU_CSR_BUILD_BYTES_PER_ENTRY = 340  # tsgu's CSR build: 11 GB for 32.5M entries (issue 18)
PARAMS = {
    "scale_tril": "LL^T scale_tril",
    "precision_tril": "LDL^T precision_tril",
}
LAYOUT_NAMES = {"coo": "COO", "csr": "CSR"}
TORCH_LAYOUTS = {"coo": torch.sparse_coo, "csr": torch.sparse_csr}
_INDEX_ATTRS = ("indices", "crow_indices", "col_indices", "csr_permutation", "value_index")


def volume_shape(cfg) -> tuple[int, ...]:
    channels, side = CHANNELS_AND_SIDE[cfg.suite]
    side = min(side, cfg.size)
    return (channels, side, side, side)


def _values(n_offsets: int, shape, llt: bool, cfg) -> torch.Tensor:
    """Per-offset values: ``0.05 * N(0, 1)``, and 1 on the zero offset (first) for LL^T."""
    g = torch.Generator().manual_seed(0)
    v = 0.05 * torch.randn((n_offsets, *shape), generator=g, dtype=torch.float64)
    if llt:
        v[0] = 1.0
    return v.to(cfg.dtype).to(cfg.device)


def _torch_impl(cfg, param: str, shape, layout: str, Encoder, Normal, index_dtype) -> Runner:
    """The pipeline with a torch encoder class and distribution class (ours or tsgu's)."""
    llt = param == "scale_tril"
    enc = Encoder(
        RADIUS, shape, diag=llt, upper=False, layout=TORCH_LAYOUTS[layout],
        indices_dtype=index_dtype, device=torch.device(cfg.device),
    )
    values = _values(len(enc.offsets), shape, llt, cfg)
    S = enc.volume_numel
    loc = torch.zeros(S, dtype=cfg.dtype, device=cfg.device)
    D = None if llt else torch.ones(S, dtype=cfg.dtype, device=cfg.device)

    def pipeline(values):
        torch.manual_seed(0)  # fixed noise: the same eps in every call
        dist = Normal(loc, diagonal=D, validate_args=False, **{param: enc(values)})
        return dist.rsample()

    runner = torch_runner(pipeline, (values,), (0,))
    cached = tuple(t for t in (getattr(enc, a, None) for a in _INDEX_ATTRS) if t is not None)
    runner.inputs = (*runner.inputs, loc, D, *cached)
    return runner


def _jax_impl(cfg, param: str, shape, layout: str) -> Runner:
    import jax
    import jax.numpy as jnp

    import jax_api

    llt = param == "scale_tril"
    enc = jax_api.PairwiseEncoder(
        RADIUS, shape, diag=llt, upper=False, layout=layout, indices_dtype=jnp.int32
    )
    # the encoder's index arrays are passed as arguments: closed over, XLA would fold them
    leaves, treedef = jax.tree_util.tree_flatten(enc)
    values = bridge.to_jax(_values(len(enc.offsets), shape, llt, cfg))
    S = enc.volume_numel
    loc = jnp.zeros(S, values.dtype)
    D = None if llt else jnp.ones(S, values.dtype)
    key = jax.random.PRNGKey(0)  # fixed noise

    def pipeline(values, loc, D, key, *leaves):
        L = jax.tree_util.tree_unflatten(treedef, leaves)(values)
        return jax_api.SparseMultivariateNormal(loc, diagonal=D, **{param: L}).sample(key)

    return jax_runner(pipeline, (values, loc, D, key, *leaves), (0,))


def impls(cfg, param: str, shape) -> list[Impl]:
    from torch_api.distributions import SparseMultivariateNormal
    from torch_api.encoders import PairwiseEncoder

    def theirs(layout):
        def make():
            tsgu()  # ImportError naming the package when it is missing
            from torchsparsegradutils.distributions import SparseMultivariateNormal as Normal
            from torchsparsegradutils.encoders import PairwiseEncoder as Encoder

            return _torch_impl(cfg, param, shape, layout, Encoder, Normal, _index(cfg, layout))

        return make

    out = []
    for layout in cfg.layouts:
        name = LAYOUT_NAMES[layout]
        out.append(Impl(
            f"torch_api {name}",
            lambda lay=layout: _torch_impl(cfg, param, shape, lay, PairwiseEncoder,
                                           SparseMultivariateNormal, _index(cfg, lay)),
            ours=True,
        ))
    for layout in cfg.layouts:
        out.append(Impl(f"jax_api {LAYOUT_NAMES[layout]}",
                        lambda lay=layout: _jax_impl(cfg, param, shape, lay), ours=True))
    S, item = math.prod(shape), torch.empty((), dtype=cfg.dtype).element_size()
    for layout in cfg.layouts:
        out.append(Impl(
            f"tsgu 0.2.7 {LAYOUT_NAMES[layout]}", theirs(layout),
            # its CSR encoder builds the factor with torch.sparse_csr_tensor, whose backward
            # forms the values' gradient through a dense S x S matrix
            needs_bytes=S * S * item if layout == "csr" else 0,
        ))
    return out


def _index(cfg, layout: str) -> torch.dtype:
    """The encoder's index dtype: torch keeps COO indices as int64 whatever is asked."""
    return torch.int64 if layout == "coo" else cfg.index_dtype


def cases(cfg) -> list[Case]:
    from torch_api._encoders import pairwise_indices, pairwise_offsets

    shape = volume_shape(cfg)
    S = math.prod(shape)
    out = []
    for param, label in PARAMS.items():
        llt = param == "scale_tril"
        offsets = pairwise_offsets(RADIUS, len(shape) - 1, shape[0], "indep", False, llt)
        nnz = len(pairwise_indices(shape, offsets).value_index)
        goals = []
        if {"coo", "csr"} <= set(cfg.layouts):
            goals = [
                Goal("torch_api CSR peak memory <= 1.2x COO's (fwd+bwd, inputs + peak)",
                     memory_ratio("torch_api CSR", "torch_api COO"), 1.2, "issue 5"),
                Goal("torch_api CSR time <= 1.2x COO's (fwd+bwd)",
                     time_ratio("torch_api CSR", "torch_api COO"), 1.2, "issue 5"),
            ]
        info = dict(
            n=S, nnz=nnz, volume="x".join(map(str, shape)), radius=RADIUS, offsets=len(offsets),
            parameterisation=label, dtype=cfg.dtype_name, index_dtype=cfg.index_name("csr"),
        )
        problem = f"{label}, volume {tuple(shape)} r={RADIUS}"
        out.append(Case("PairwiseEncoder+SparseMultivariateNormal.rsample", problem,
                        impls(cfg, param, shape), goals, info))
    return out + build_cases(cfg)


def _build_runner(Encoder, shape, layout: str, index_dtype, device) -> Runner:
    """The encoder's construction as the (non-differentiable) call being measured."""

    def build():
        return Encoder(RADIUS, shape, layout=TORCH_LAYOUTS[layout], indices_dtype=index_dtype,
                       device=torch.device(device))

    return Runner(build)


def build_cases(cfg) -> list[Case]:
    from torch_api._encoders import pairwise_nnz, pairwise_offsets
    from torch_api.encoders import PairwiseEncoder

    channels, side = BUILD_CHANNELS_AND_SIDE[cfg.suite]
    if cfg.size < CHANNELS_AND_SIDE[cfg.suite][1]:  # --size below the pipeline's side
        side = min(side, cfg.size)
    shape = (channels, side, side, side)
    offsets = pairwise_offsets(RADIUS, 3, channels)
    nnz = pairwise_nnz(shape, offsets)

    def theirs(layout):
        def make():
            tsgu()
            from torchsparsegradutils.encoders import PairwiseEncoder as Encoder

            return _build_runner(Encoder, shape, layout, _index(cfg, layout), cfg.device)

        return make

    impls = [Impl(f"torch_api {LAYOUT_NAMES[lay]}",
                  lambda lay=lay: _build_runner(PairwiseEncoder, shape, lay, _index(cfg, lay),
                                                cfg.device), ours=True)
             for lay in cfg.layouts]
    impls += [Impl(f"tsgu 0.2.7 {LAYOUT_NAMES[lay]}", theirs(lay),
                   needs_bytes=TSGU_CSR_BUILD_BYTES_PER_ENTRY * nnz if lay == "csr" else 0)
              for lay in cfg.layouts]
    goals = []
    if "coo" in cfg.layouts:
        for lay in cfg.layouts:
            ours = f"torch_api {LAYOUT_NAMES[lay]}"
            goals += [
                Goal(f"{ours} build time <= tsgu 0.2.7 COO's",
                     time_ratio(ours, "tsgu 0.2.7 COO", "fwd_s"), 1.0, "issue 18"),
                Goal(f"{ours} build peak memory <= tsgu 0.2.7 COO's",
                     memory_ratio(ours, "tsgu 0.2.7 COO", "fwd_peak"), 1.0, "issue 18"),
            ]
    info = dict(n=math.prod(shape), nnz=nnz, volume="x".join(map(str, shape)), radius=RADIUS,
                offsets=len(offsets), index_dtype=cfg.index_name("csr"))
    problem = f"README example, volume {shape} r={RADIUS}, both triangles"
    return [Case("PairwiseEncoder build", problem, impls, goals, info)]
