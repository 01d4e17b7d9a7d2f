"""Eager jax_api calls (not wrapped in ``jax.jit``) reuse their compiled programs: after the first
call, calls 2..10 with the same shapes compile nothing (counted from JAX's own compile log,
``jax.log_compiles``), for every public operation and the gradients of the differentiable ones.
"""

from __future__ import annotations

import logging
import warnings

import pytest

jax = pytest.importorskip("jax")

from tests.jax_api.eager_cases import cases  # noqa: E402

CASES = cases()


class _Compiles(logging.Handler):
    """The names of the XLA programs compiled while attached (JAX logs each one)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.names: list[str] = []

    def emit(self, record):
        text = record.getMessage()
        if text.startswith("Finished XLA compilation of "):
            self.names.append(text[len("Finished XLA compilation of "):].split(" in ")[0])


def _compiled_by(call, times: int) -> list[str]:
    handler, logger = _Compiles(), logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the log is also printed as warnings on stderr
            for _ in range(times):
                jax.block_until_ready(call())
    finally:
        logger.removeHandler(handler)
    return handler.names


def test_the_counter_sees_compilations():
    x = jax.numpy.ones(3)
    f = jax.jit(lambda x: x * 3 + 1)  # a fresh function: compiled on first use only
    assert _compiled_by(lambda: f(x), 2) == ["jit(<lambda>)"]


@pytest.mark.parametrize("name", list(CASES))
def test_repeated_eager_calls_compile_nothing(name):
    call = CASES[name]
    jax.block_until_ready(call())  # the first call compiles
    assert _compiled_by(call, 9) == [], f"{name}: calls 2..10 compiled again"


def test_a_solver_capturing_a_new_array_compiles_again():
    """The documented limit: a solver closing over a different array on each call is a
    different program (pass arrays through kwargs instead, which compiles once)."""
    import jax.numpy as jnp
    from jax.experimental.sparse import BCSR

    import jax_api as J

    S = BCSR.fromdense(4 * jnp.eye(3, dtype=jnp.float32))
    b = jnp.ones(3, jnp.float32)

    def call():
        x0 = jnp.zeros(3, jnp.float32)
        return J.sparse_generic_solve(S, b, lambda A, B: J.cg(A, B, x0=x0))

    jax.block_until_ready(call())
    assert len(_compiled_by(call, 2)) >= 2
    via_kwargs = lambda: J.sparse_generic_solve(S, b, J.cg, x0=jnp.zeros(3, jnp.float32))
    jax.block_until_ready(via_kwargs())
    assert _compiled_by(via_kwargs, 3) == []
