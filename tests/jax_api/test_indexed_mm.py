"""jax_api.segment_mm / gather_mm: dense references, both kernels, jit/vmap/grad, every order."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from jax_api import gather_mm, segment_mm  # noqa: E402
from jax_api._grouped import (  # noqa: E402
    _batched,
    _seg_mm_cpu,
    _seg_mm_ragged,
    _seg_outer_cpu,
    _seg_outer_ragged,
    chunk_size,
)
from tests import references  # noqa: E402

SEGLENS = {
    "empty_segments": [4, 0, 9, 7, 0],
    "one_row_each": [1] * 12,
    "single_group": [23],
    "long_segments": [300, 0, 213],  # more rows per group than the largest chunk
}


def _operands(seglen, d1=3, d2=4, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    n, r = int(sum(seglen)), len(seglen)
    a = rng.standard_normal((n, d1)).astype(dtype)
    b = rng.standard_normal((r, d1, d2)).astype(dtype)
    return jnp.asarray(a), jnp.asarray(b), jnp.asarray(seglen, jnp.int32)


@pytest.mark.parametrize("case", SEGLENS)
@pytest.mark.parametrize(
    "impl",
    [segment_mm, _seg_mm_cpu, _seg_mm_ragged],
    ids=["public", "cpu_chunked", "ragged_dot"],
)
def test_segment_mm_matches_dense(case, impl):
    a, b, seglen = _operands(SEGLENS[case])
    out = impl(jnp.asarray(a), jnp.asarray(b), jnp.asarray(seglen))
    assert out.shape == (a.shape[0], b.shape[2]) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, references.segment_mm(a, b, seglen), rtol=1e-5, atol=1e-5)


def test_segment_mm_jit_traced_lengths():
    a, b, seglen = _operands(SEGLENS["empty_segments"])
    out = jax.jit(segment_mm)(a, b, seglen)
    np.testing.assert_allclose(out, references.segment_mm(a, b, seglen), rtol=1e-5, atol=1e-5)
    # under jit the lengths are traced: a wrong sum raises at run time, naming the argument
    short = np.array([4, 0, 5, 7, 0], np.int32)
    with pytest.raises(Exception, match=f"seglen_a: expected lengths summing to a's {a.shape[0]}"):
        jax.block_until_ready(jax.jit(segment_mm)(a, b, short))


def test_segment_mm_vmap_over_all_arguments():
    a, b, s = _operands(SEGLENS["empty_segments"])
    s2 = np.array([0, 10, 10, 0, 0], np.int32)
    A, B, S = np.stack([a, 2 * a]), np.stack([b, b - 1]), np.stack([s, s2])
    out = jax.jit(jax.vmap(segment_mm))(A, B, S)
    for i in range(2):
        want = references.segment_mm(A[i], B[i], S[i])
        np.testing.assert_allclose(out[i], want, rtol=1e-5, atol=1e-5)
    # vmap over a only, sharing b and the segments
    out = jax.vmap(segment_mm, in_axes=(0, None, None))(A, b, s)
    np.testing.assert_allclose(out[1], references.segment_mm(A[1], b, s), rtol=1e-5, atol=1e-5)


# every combination of shared (None) and mapped (axis 0) operands, and the batch axis elsewhere
# (last axis of a or b, axis 1 of the integer operand) with shared and mapped neighbours
AXES = [ax for ax in itertools.product((None, 0), repeat=3) if ax != (None, None, None)]
AXES += [(-1, None, None), (None, -1, 1), (-1, 0, 1)]


def _mapped_operands(op, L=3, seed=0):
    """Per-item operands of ``op`` (``segment_mm`` or ``gather_mm``): ``(a, b, third)`` with a
    leading axis of ``L`` items, the third argument differing per item."""
    rng = np.random.default_rng(seed)
    n, r = 7, 3
    a = rng.standard_normal((L, n, 3)).astype(np.float32)
    b = rng.standard_normal((L, r, 3, 2)).astype(np.float32)
    if op == "segment_mm":
        third = np.array([[2, 0, 5], [7, 0, 0], [1, 3, 3]], np.int32)[:L]
    else:
        third = rng.integers(0, r, (L, n)).astype(np.int32)
    return a, b, third


def _place(x, ax):
    """Item-major ``x (L, ...)`` as vmap's argument for ``ax``: item 0 when shared, else the item
    axis moved to ``ax``."""
    return x[0] if ax is None else np.moveaxis(x, 0, ax)


@pytest.mark.parametrize("op", ["segment_mm", "gather_mm"])
@pytest.mark.parametrize("axes", AXES, ids=str)
def test_vmap_under_jit_over_in_axes(op, axes):
    """``jit(vmap(...))`` with shared and mapped operands: every ``platform_dependent`` branch
    (the ragged_dot one too, on CPU) must trace and batch."""
    fn = {"segment_mm": segment_mm, "gather_mm": gather_mm}[op]
    ref = {"segment_mm": references.segment_mm, "gather_mm": references.gather_mm}[op]
    items = _mapped_operands(op)
    args = [jnp.asarray(_place(x, ax)) for x, ax in zip(items, axes, strict=True)]
    out = jax.jit(jax.vmap(fn, in_axes=axes))(*args)
    pick = lambda x, ax, i: x[0] if ax is None else x[i]
    for i in range(3):
        want = ref(*(pick(x, ax, i) for x, ax in zip(items, axes, strict=True)))
        np.testing.assert_allclose(out[i], want, rtol=1e-5, atol=1e-5)
    # gradients through the batched program: the per-item dense gradients (summed when shared)
    loss = lambda a, b: jnp.sum(jnp.sin(jax.vmap(fn, in_axes=axes)(a, b, args[2])))
    got = jax.jit(jax.grad(loss, (0, 1)))(args[0], args[1])
    per_item = [_dense_grads(op, *(pick(x, ax, i) for x, ax in zip(items, axes, strict=True)))
                for i in range(3)]
    for k in range(2):
        want = np.stack([g[k] for g in per_item])
        want = want.sum(0) if axes[k] is None else np.moveaxis(want, 0, axes[k])
        np.testing.assert_allclose(got[k], want, rtol=1e-4, atol=1e-5)


def _dense_grads(op, a, b, third):
    """``d/da, d/db`` of ``sum(sin(op(a, b, third)))`` in float64 NumPy."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    group = np.repeat(np.arange(len(third)), third) if op == "segment_mm" else third
    G = np.cos(np.einsum("nd,nde->ne", a, b[group]))
    db = np.zeros_like(b)
    np.add.at(db, group, np.einsum("nd,ne->nde", a, G))
    return np.einsum("ne,nde->nd", G, b[group]), db


@pytest.mark.parametrize("axes", [(None, 0, None), (0, None, 0), (None, None, 0)], ids=str)
def test_both_kernels_batch_with_shared_operands(axes):
    """``vmap`` with shared operands: the public op under ``jit`` (the primitive's batching
    rule puts every operand on a leading axis) and the GPU/TPU kernel (``ragged_dot``) run
    batched that way on this platform."""
    items = _mapped_operands("segment_mm")
    args = [jnp.asarray(_place(x, ax)) for x, ax in zip(items, axes, strict=True)]
    public = jax.jit(jax.vmap(segment_mm, in_axes=axes))(*args)
    leading = [jnp.broadcast_to(x, (3, *x.shape)) if ax is None else jnp.moveaxis(x, ax, 0)
               for x, ax in zip(args, axes, strict=True)]
    ragged = jax.jit(_batched(_seg_mm_ragged, 1))(*leading)
    for i in range(3):
        want = references.segment_mm(*(x[0] if ax is None else x[i]
                                       for x, ax in zip(items, axes, strict=True)))
        np.testing.assert_allclose(public[i], want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ragged[i], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", SEGLENS)
@pytest.mark.parametrize("impl", [_seg_outer_cpu, _seg_outer_ragged], ids=["cpu", "ragged_dot"])
def test_segment_outer_kernels_match_dense(case, impl):
    """The transpose's kernel ``out[r] = x[rows of r]^T y[rows of r]`` on both platforms."""
    x, _, seglen = _operands(SEGLENS[case])
    y = jnp.asarray(np.random.default_rng(1).standard_normal((x.shape[0], 5)), x.dtype)
    group = np.repeat(np.arange(len(seglen)), np.asarray(seglen))
    want = np.zeros((len(seglen), x.shape[1], 5), np.float32)
    np.add.at(want, group, np.einsum("nd,ne->nde", np.asarray(x), np.asarray(y)))
    np.testing.assert_allclose(jax.jit(impl)(x, y, seglen), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", ["segment_mm", "gather_mm"])
def test_every_order_and_mode_against_dense(x64, op):
    """Second-order checks in both modes (under jit too), the Hessian, jacfwd and
    linear_transpose against the dense per-row product."""
    rng = np.random.default_rng(7)
    a = jnp.asarray(rng.standard_normal((7, 3)))
    b = jnp.asarray(rng.standard_normal((3, 3, 2)))
    if op == "segment_mm":
        arg = jnp.asarray([2, 0, 5])
        group = np.repeat(np.arange(3), [2, 0, 5])
        f = lambda a, b: segment_mm(a, b, arg)
    else:
        arg = jnp.asarray([2, 0, 1, 1, 2, 0, 2])
        group = np.asarray(arg)
        f = lambda a, b: gather_mm(a, b, arg)
    dense = lambda a, b: jnp.einsum("nd,nde->ne", a, b[group])
    np.testing.assert_allclose(f(a, b), dense(a, b), atol=1e-12)
    check_grads(f, (a, b), order=2, modes=("fwd", "rev"))
    check_grads(jax.jit(f), (a, b), order=2, modes=("fwd", "rev"))
    loss = lambda g: (lambda a, b: jnp.sum(jnp.sin(g(a, b))))
    for i in (0, 1):
        np.testing.assert_allclose(jax.jit(jax.hessian(loss(f), i))(a, b),
                                   jax.hessian(loss(dense), i)(a, b), atol=1e-10)
    np.testing.assert_allclose(jax.jacfwd(f, 1)(a, b), jax.jacfwd(dense, 1)(a, b), atol=1e-12)
    G = jnp.asarray(rng.standard_normal((7, 2)))
    np.testing.assert_allclose(jax.linear_transpose(lambda x: f(x, b), a)(G)[0],
                               jax.linear_transpose(lambda x: dense(x, b), a)(G)[0], atol=1e-12)
    np.testing.assert_allclose(jax.linear_transpose(lambda x: f(a, x), b)(G)[0],
                               jax.linear_transpose(lambda x: dense(a, x), b)(G)[0], atol=1e-12)


@pytest.mark.parametrize(
    "impl",
    [segment_mm, _seg_mm_cpu, _seg_mm_ragged],
    ids=["public", "cpu_chunked", "ragged_dot"],
)
def test_segment_mm_check_grads(x64, impl):
    a, b, seglen = _operands(SEGLENS["empty_segments"], dtype=np.float64)
    s = jnp.asarray(seglen)
    check_grads(
        lambda a, b: impl(jnp.asarray(a), jnp.asarray(b), s), (a, b), order=1, modes=["rev"]
    )


def test_segment_mm_grad_matches_dense(x64):
    a, b, seglen = _operands(SEGLENS["empty_segments"], dtype=np.float64)
    idx = np.repeat(np.arange(len(seglen)), seglen)
    loss = lambda a, b: jnp.sum(jnp.sin(segment_mm(a, b, seglen)))
    dense = lambda a, b: jnp.sum(jnp.sin(jnp.einsum("nd,nde->ne", a, b[idx])))
    got = jax.jit(jax.grad(loss, argnums=(0, 1)))(a, b)
    want = jax.grad(dense, argnums=(0, 1))(a, b)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    # empty segments get an exactly zero gradient
    np.testing.assert_array_equal(got[1][1], 0.0)
    np.testing.assert_array_equal(got[1][4], 0.0)


@pytest.mark.parametrize("n,r", [(20, 5), (7, 1), (50, 50)])
def test_gather_mm_matches_dense(n, r):
    rng = np.random.default_rng(n + r)
    a = rng.standard_normal((n, 3)).astype(np.float32)
    b = rng.standard_normal((r, 3, 2)).astype(np.float32)
    idx = rng.integers(0, r, n)
    idx[: min(n, 3)] = r - 1  # repeated index, and (for r > 1) some unused ones
    out = gather_mm(jnp.asarray(a), jnp.asarray(b), jnp.asarray(idx))
    np.testing.assert_allclose(out, references.gather_mm(a, b, idx), rtol=1e-5, atol=1e-5)
    out = jax.jit(gather_mm)(a, b, idx)
    np.testing.assert_allclose(out, references.gather_mm(a, b, idx), rtol=1e-5, atol=1e-5)


def test_gather_mm_vmap_and_grads(x64):
    rng = np.random.default_rng(3)
    a = jnp.asarray(rng.standard_normal((2, 9, 3)))
    b = jnp.asarray(rng.standard_normal((2, 4, 3, 2)))
    idx = jnp.asarray(rng.integers(0, 4, (2, 9)))
    out = jax.vmap(gather_mm)(a, b, idx)
    for i in range(2):
        np.testing.assert_allclose(out[i], references.gather_mm(a[i], b[i], idx[i]), rtol=1e-12)
    f = lambda a, b: gather_mm(jnp.asarray(a), jnp.asarray(b), idx[0])
    check_grads(f, (a[0], b[0]), order=1, modes=["rev"])
    loss = lambda a, b: jnp.sum(gather_mm(a, b, idx[0]) ** 2)
    dense = lambda a, b: jnp.sum(jnp.einsum("nd,nde->ne", a, b[idx[0]]) ** 2)
    for g, w in zip(
        jax.grad(loss, (0, 1))(a[0], b[0]), jax.grad(dense, (0, 1))(a[0], b[0]), strict=True
    ):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_gather_mm_out_of_range_under_jit_raises():
    a = jnp.ones((3, 2))
    b = jnp.ones((2, 2, 2))
    for bad in ([0, 5, 1], [0, -1, 1]):
        with pytest.raises(Exception, match=r"idx_b: expected indices in \[0, 2\)"):
            jax.block_until_ready(jax.jit(gather_mm)(a, b, jnp.array(bad)))
    out = jax.jit(gather_mm)(a, b, jnp.array([0, 1, 1]))
    np.testing.assert_array_equal(out, np.full((3, 2), 2.0))


def test_chunk_size():
    assert chunk_size(8192, 256) == 32
    assert chunk_size(10, 10) == 1
    assert chunk_size(10**6, 2) == 256
    assert chunk_size(33, 1) == 64


def test_matches_torch_api(x64):
    torch = pytest.importorskip("torch")
    torch_api = pytest.importorskip("torch_api")
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((20, 3)), rng.standard_normal((5, 3, 4))
    seglen = np.array([4, 0, 9, 7, 0])
    want = torch_api.segment_mm(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(seglen))
    got = segment_mm(jnp.asarray(a), jnp.asarray(b), jnp.asarray(seglen))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)
    idx = np.array([4, 0, 0, 2, 3, 1, 4])
    want = torch_api.gather_mm(torch.from_numpy(a[:7]), torch.from_numpy(b), torch.from_numpy(idx))
    got = gather_mm(jnp.asarray(a[:7]), jnp.asarray(b), jnp.asarray(idx))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)


def test_bad_inputs():
    a, b, s = jnp.ones((5, 3)), jnp.ones((2, 3, 4)), jnp.array([2, 3])
    with pytest.raises(TypeError, match="a: expected a dense jax.Array"):
        segment_mm([[1.0]], b, s)
    with pytest.raises(ValueError, match="a: expected a 2-D array"):
        segment_mm(jnp.ones(5), b, s)
    with pytest.raises(ValueError, match="b: expected a 3-D array"):
        segment_mm(a, jnp.ones((3, 4)), s)
    with pytest.raises(ValueError, match="a: expected a floating dtype"):
        segment_mm(jnp.ones((5, 3), jnp.int32), b, s)
    with pytest.raises(ValueError, match="b: expected dtype float32 to match a"):
        segment_mm(a, jnp.ones((2, 3, 4), jnp.bfloat16), s)
    with pytest.raises(ValueError, match=r"b: expected shape \(R, 3, D2\)"):
        segment_mm(a, jnp.ones((2, 2, 4)), s)
    with pytest.raises(ValueError, match=r"seglen_a: expected shape \(2,\)"):
        segment_mm(a, b, jnp.array([5]))
    with pytest.raises(ValueError, match="seglen_a: expected an integer array"):
        segment_mm(a, b, jnp.array([2.0, 3.0]))
    with pytest.raises(ValueError, match="seglen_a: expected lengths summing to a's 5 rows"):
        segment_mm(a, b, jnp.array([2, 2]))
    with pytest.raises(ValueError, match="seglen_a: expected non-negative lengths"):
        segment_mm(a, b, jnp.array([6, -1]))
    with pytest.raises(ValueError, match=r"idx_b: expected indices in \[0, 2\)"):
        gather_mm(a, b, jnp.array([0, 1, 2, 0, 0]))
    with pytest.raises(ValueError, match=r"idx_b: expected shape \(5,\)"):
        gather_mm(a, b, jnp.array([0, 1]))
