"""bridge.jax_kernel / torch_kernel: jit, vmap, zero-copy by pointer, no retrace, x64 scoping."""

from __future__ import annotations

import pytest
import torch

jax = pytest.importorskip("jax")
jnp = jax.numpy

import bridge  # noqa: E402


def _like(x):
    return jax.ShapeDtypeStruct(x.shape, x.dtype)


def _config():
    return dict(jax.config.values)


# ------------------------------------------------------------------------------ jax_kernel
def test_jax_kernel_matches_jax_under_jit():
    k = bridge.jax_kernel(lambda x, y: torch.sin(x) * y, lambda x, y: _like(x))
    x, y = jnp.linspace(0.0, 1.0, 7), jnp.arange(7.0)
    out = jax.jit(lambda x, y: k(x, y) + 1.0)(x, y)
    assert out.dtype == jnp.float32
    assert jnp.allclose(out, jnp.sin(x) * y + 1.0, rtol=1e-6)


def test_jax_kernel_inputs_are_zero_copy():
    seen = {}

    def probe(x, y):
        seen["x"], seen["y"] = x.data_ptr(), y.data_ptr()
        return x + y

    k = bridge.jax_kernel(probe, lambda x, y: _like(x))
    x, y = jnp.arange(64.0), jnp.ones(64)
    px, py = x.unsafe_buffer_pointer(), y.unsafe_buffer_pointer()

    jax.jit(k)(x, y).block_until_ready()  # the callback's operands are the jit's parameters
    assert (seen["x"], seen["y"]) == (px, py)
    k(x, y).block_until_ready()  # eager call
    assert (seen["x"], seen["y"]) == (px, py)
    # control: an operand computed inside jit lives in a new buffer, and the probe sees that
    jax.jit(lambda x, y: k(x + 1.0, y))(x, y).block_until_ready()
    assert seen["x"] != px and seen["y"] == py


def test_jax_kernel_writes_outputs_in_place():
    seen = {}

    def fill(out, x):
        seen["out"] = out.data_ptr()
        torch.mul(x, 3.0, out=out)

    k = bridge.jax_kernel(fill, lambda x: _like(x), writes_outputs=True)
    x = jnp.arange(16.0)
    r = jax.jit(k)(x)
    assert seen["out"] == r.unsafe_buffer_pointer()
    assert jnp.array_equal(r, 3.0 * x)


def test_jax_kernel_pytree_outputs_and_kwargs():
    shapes = (jax.ShapeDtypeStruct((4,), jnp.float32), jax.ShapeDtypeStruct((), jnp.int32))
    k = bridge.jax_kernel(lambda x, *, n: (x * n, n.sum().to(torch.int32).reshape(())), shapes)
    a, b = jax.jit(k)(jnp.ones(4), n=jnp.full(4, 2.0))
    assert jnp.array_equal(a, jnp.full(4, 2.0)) and int(b) == 8 and b.dtype == jnp.int32


def test_jax_kernel_vmap_sequential_calls_per_example():
    shapes_seen = []

    def f(x, w):
        shapes_seen.append((tuple(x.shape), tuple(w.shape)))
        return x @ w

    k = bridge.jax_kernel(f, lambda x, w: jax.ShapeDtypeStruct((w.shape[1],), x.dtype))
    xs = jax.random.normal(jax.random.key(0), (5, 3))
    w = jax.random.normal(jax.random.key(1), (3, 2))
    out = jax.jit(jax.vmap(k, in_axes=(0, None)))(xs, w)
    assert jnp.allclose(out, xs @ w, atol=1e-6)
    assert set(shapes_seen) == {((3,), (3, 2))}


def test_jax_kernel_vmap_expand_dims_sees_batch_axis():
    shapes_seen = []

    def f(x, w):
        shapes_seen.append((tuple(x.shape), tuple(w.shape)))
        return torch.matmul(x.unsqueeze(-2), w).squeeze(-2)  # w: (1, 3, 2) broadcasts

    k = bridge.jax_kernel(
        f,
        lambda x, w: jax.ShapeDtypeStruct(x.shape[:-1] + (w.shape[-1],), x.dtype),
        vmap_method="expand_dims",
    )
    xs = jax.random.normal(jax.random.key(0), (5, 3))
    w = jax.random.normal(jax.random.key(1), (3, 2))
    out = jax.vmap(k, in_axes=(0, None))(xs, w)
    assert jnp.allclose(out, xs @ w, atol=1e-6)
    assert shapes_seen == [((5, 3), (1, 3, 2))]


def test_jax_kernel_rejects_mismatched_result():
    k = bridge.jax_kernel(lambda x: x.double(), lambda x: _like(x))
    with pytest.raises(Exception, match="fn: expected result 0 of shape"):
        jax.jit(k)(jnp.ones(3)).block_until_ready()


def test_jax_kernel_bad_arguments():
    with pytest.raises(TypeError, match="fn: expected a callable"):
        bridge.jax_kernel(3, jax.ShapeDtypeStruct((3,), jnp.float32))
    with pytest.raises(ValueError, match="vmap_method"):
        bridge.jax_kernel(lambda x: x, jax.ShapeDtypeStruct((3,), jnp.float32), vmap_method="x")


def test_jax_kernel_float64_needs_x64_scope():
    before = _config()
    k = bridge.jax_kernel(lambda x: x * 2, lambda x: jax.ShapeDtypeStruct(x.shape, jnp.float64))
    with pytest.raises(TypeError, match="enable_x64"):
        k(jnp.ones(3))
    with jax.enable_x64(True):
        out = jax.jit(k)(jnp.arange(3, dtype=jnp.float64) / 3)
        assert out.dtype == jnp.float64
        assert float(out[1]) == 2.0 / 3.0
    assert _config() == before


def test_jax_kernel_empty_input():
    k = bridge.jax_kernel(lambda x: x.sum(0), lambda x: jax.ShapeDtypeStruct((3,), x.dtype))
    assert jnp.array_equal(k(jnp.zeros((0, 3))), jnp.zeros(3))


# ---------------------------------------------------------------------------- torch_kernel
def test_torch_kernel_matches_torch():
    k = bridge.torch_kernel(lambda a, b: (a @ b, jnp.tanh(b)))
    a, b = torch.randn(4, 3), torch.randn(3)
    y, t = k(a, b)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    torch.testing.assert_close(y, a @ b)
    torch.testing.assert_close(t, torch.tanh(b))


def test_torch_kernel_zero_copy_both_ways():
    seen = {}

    def fill(out, x):
        seen["x"], seen["out"] = x.data_ptr(), out.data_ptr()
        torch.add(x, 1.0, out=out)

    probe = bridge.jax_kernel(fill, lambda x: _like(x), writes_outputs=True)
    k = bridge.torch_kernel(probe)
    t = torch.arange(32.0)
    r = k(t)
    assert seen["x"] == t.data_ptr()  # the torch input reached the jitted program unchanged
    assert seen["out"] == r.data_ptr()  # the jitted program's output is the returned tensor
    torch.testing.assert_close(r, t + 1)


def test_torch_kernel_compiles_once_per_shape():
    traces = []

    def f(x, *, scale):
        traces.append(x.shape)
        return x * scale

    k = bridge.torch_kernel(f, static_argnames=("scale",))
    for i in range(5):
        out = k(torch.full((4,), float(i)), scale=2.0)
        torch.testing.assert_close(out, torch.full((4,), 2.0 * i))
    assert len(traces) == 1
    k(torch.ones(5), scale=2.0)
    assert len(traces) == 2
    k(torch.ones(5), scale=3.0)
    assert len(traces) == 3
    k(torch.ones(5, dtype=torch.float64), scale=3.0)
    k(torch.ones(5, dtype=torch.float64), scale=3.0)
    assert len(traces) == 4


def test_torch_kernel_float64_with_x64_off_scoped():
    before = _config()
    assert not jax.config.jax_enable_x64
    k = bridge.torch_kernel(lambda x, i: x[i] + 2**-40)  # lost if truncated to float32
    x = torch.arange(6, dtype=torch.float64)
    i = torch.tensor([5, 1], dtype=torch.int64)
    out = k(x, i)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, x[i] + 2**-40, rtol=0, atol=0)
    assert _config() == before


def test_torch_kernel_float64_with_x64_on(x64):
    before = _config()
    out = bridge.torch_kernel(lambda x: x * x)(torch.tensor([1.0 + 2**-40], dtype=torch.float64))
    assert out.dtype == torch.float64 and out.item() == (1.0 + 2**-40) ** 2
    assert _config() == before


def test_torch_kernel_plain_views_of_special_tensors():
    k = bridge.torch_kernel(lambda x: x + 0)
    base = torch.arange(12.0).reshape(3, 4)
    torch.testing.assert_close(k(base.t()), base.t())  # non-contiguous
    torch.testing.assert_close(k(-base._neg_view()), base)  # negative bit resolved
    torch.testing.assert_close(k(base.clone().requires_grad_()), base)  # requires grad


def test_torch_kernel_bad_fn():
    with pytest.raises(TypeError, match="fn: expected a callable"):
        bridge.torch_kernel("f")


# -------------------------------------------------------------------------------------- GPU
@pytest.mark.gpu
def test_jax_kernel_gpu_stream_and_zero_copy():
    gpu = jax.devices("gpu")[0]
    seen = {}

    def f(x):
        seen["x"], seen["dev"] = x.data_ptr(), x.device
        seen["stream"] = torch.cuda.current_stream().cuda_stream
        return x * 2

    k = bridge.jax_kernel(f, lambda x: _like(x))
    x = jax.device_put(jnp.arange(1024.0), gpu)
    out = jax.jit(k)(x)
    assert jnp.array_equal(out, 2 * x)
    assert seen["x"] == x.unsafe_buffer_pointer() and seen["dev"].type == "cuda"
    assert seen["stream"] != torch.cuda.default_stream().cuda_stream  # XLA's stream, not torch's


@pytest.mark.gpu
def test_torch_kernel_gpu_zero_copy():
    seen = {}

    def fill(out, x):
        seen["x"], seen["out"] = x.data_ptr(), out.data_ptr()
        torch.add(x, 1.0, out=out)

    k = bridge.torch_kernel(bridge.jax_kernel(fill, lambda x: _like(x), writes_outputs=True))
    t = torch.arange(256.0, device="cuda")
    r = k(t)
    assert r.device == t.device and seen["x"] == t.data_ptr() and seen["out"] == r.data_ptr()
    torch.testing.assert_close(r, t + 1)
