"""Runners for the three kinds of implementation: torch autograd, jitted JAX, forward-only.

Each takes the operation as a function of its inputs and the positions of the inputs to
differentiate; the upstream gradient ``G`` is a fixed random array of the output's shape, and
the backward computes the gradients of ``<G, f(inputs)>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from benchmarks._harness import Runner


def _cotangent_torch(out: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    G = torch.randn(out.shape, generator=g, dtype=torch.float64)
    return G.to(dtype=out.dtype, device=out.device)


def torch_runner(fn: Callable, inputs: Sequence, grad: Sequence[int] = ()) -> Runner:
    """``fn(*inputs)`` with torch autograd for ``inputs[i], i in grad`` (fresh leaf copies)."""
    inputs = [
        x.detach().clone().requires_grad_(True) if i in grad else x for i, x in enumerate(inputs)
    ]
    if not grad:
        return Runner(forward=lambda: fn(*inputs), inputs=tuple(inputs))
    wrt = [inputs[i] for i in grad]
    with torch.no_grad():
        G = _cotangent_torch(fn(*inputs))

    def backward(out):
        return torch.autograd.grad(out, wrt, G)

    return Runner(forward=lambda: fn(*inputs), backward=backward, inputs=tuple(inputs),
                  cotangent=G)


def jax_runner(fn: Callable, inputs: Sequence, grad: Sequence[int] = ()) -> Runner:
    """``jax.jit(fn)(*inputs)`` and ``jit(value_and_grad(<G, fn>))`` for ``inputs[i], i in grad``,
    both compiled ahead. Sparse inputs (BCOO/BCSR) are pytrees: their index arrays are passed as
    arguments, not closed over (XLA would fold them into constants)."""
    import jax
    import jax.numpy as jnp

    inputs = tuple(inputs)
    fwd = jax.jit(fn).lower(*inputs).compile()
    xla = {"forward": _xla_bytes(fwd)}
    if not grad:
        return Runner(forward=lambda: fwd(*inputs), inputs=inputs, xla_bytes=xla)
    shape = jax.eval_shape(fn, *inputs)
    key = jax.random.key(2)
    G = jax.random.normal(key, shape.shape, dtype=shape.dtype)

    def loss(*args):
        *xs, G = args
        return jnp.vdot(G, fn(*xs))

    # value_and_grad: a linear op's gradient does not need its output, and XLA would otherwise
    # drop the forward from a gradient-only program
    vg = jax.value_and_grad(loss, argnums=tuple(grad), allow_int=True)
    step = jax.jit(vg).lower(*inputs, G).compile()
    xla["step"] = _xla_bytes(step)
    return Runner(
        forward=lambda: fwd(*inputs), step=lambda: step(*inputs, G), inputs=inputs,
        xla_bytes=xla, cotangent=G,
    )


def _xla_bytes(compiled) -> int | None:
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes)


def to_jax_sparse(A: torch.Tensor):
    """A torch COO/CSR matrix as BCOO/BCSR with int32 indices (JAX's default without x64)."""
    import bridge

    csr = A.to_sparse_csr() if A.layout == torch.sparse_coo else A
    csr = torch.sparse_csr_tensor(
        csr.crow_indices().int(), csr.col_indices().int(), csr.values(), csr.shape
    )
    M = bridge.to_jax(csr)
    if A.layout != torch.sparse_coo:
        return M
    from jax.experimental.sparse import BCOO

    C = M.to_bcoo()
    return BCOO((C.data, C.indices), shape=C.shape, indices_sorted=True, unique_indices=True)


def plain_runner(fn: Callable, inputs: Sequence) -> Runner:
    """A forward-only call (SciPy, CuPy): no gradient to time."""
    inputs = tuple(inputs)
    return Runner(forward=lambda: fn(*inputs), inputs=inputs)


def tsgu():
    """torchsparsegradutils 0.2.7 (the ``bench`` extra), or ImportError naming it."""
    try:
        import torchsparsegradutils
    except ImportError as exc:
        raise ImportError(
            "torchsparsegradutils 0.2.7 (pip install -e '.[bench]' in a checkout)"
        ) from exc
    return torchsparsegradutils


# a dense LU costs about n^3 flops: above this size it would take the suite's whole budget
DENSE_SOLVE_MAX = {"cpu": 3000, "cuda": 32768}


def dense_solve_cap(cfg, n: int) -> None:
    """Dense ``n x n`` factorisations run only up to ``DENSE_SOLVE_MAX[device]`` rows."""
    from benchmarks._harness import Unsupported

    cap = DENSE_SOLVE_MAX[cfg.device]
    if n > cap:
        raise Unsupported(f"a dense {n} x {n} factorisation is run only for n <= {cap}")


def on_cpu(device: str, what: str) -> None:
    """SciPy baselines run on the CPU only."""
    from benchmarks._harness import Unsupported

    if device != "cpu":
        raise Unsupported(f"{what} runs on the CPU only")
