"""The known traps of zero-copy conversion, each handled: x64, torch's neg/conj bits, strides,
JAX-on-CPU alignment, requires_grad, tracers, empty arrays, honest sparse metadata, padding."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import bridge
from tests.helpers import aligned_numpy, data_ptr, dense_of, make_sparse, random_dense

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
jsparse = pytest.importorskip("jax.experimental.sparse")
sp = pytest.importorskip("scipy.sparse")

COO, CSR = torch.sparse_coo, torch.sparse_csr
M = np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]], dtype=np.float32)


# ---------------------------------------------------------------- 64-bit data while x64 is off
@pytest.mark.parametrize(
    "x",
    [
        torch.arange(3),
        torch.ones(3, dtype=torch.float64),
        np.arange(3, dtype=np.int64),
        np.ones(2, dtype=np.complex128),
        np.ones(2, dtype=np.uint64),
    ],
    ids=["torch-int64", "torch-float64", "numpy-int64", "numpy-complex128", "numpy-uint64"],
)
def test_64_bit_dense_into_jax_without_x64_is_a_type_error(x):
    assert not jax.config.jax_enable_x64
    with pytest.raises(TypeError, match=r"64-bit mode is disabled.*jax\.enable_x64\(True\)"):
        bridge.to_jax(x)


def test_64_bit_sparse_components_are_named():
    coo = torch.tensor(M).to_sparse_coo()  # torch COO indices are int64
    with pytest.raises(TypeError, match="indices: expected .*got int64 data.*enable_x64"):
        bridge.to_jax(coo)
    csr = sp.csr_array(M.astype(np.float64)).astype(np.float64)
    csr.indices, csr.indptr = csr.indices.astype(np.int32), csr.indptr.astype(np.int32)
    with pytest.raises(TypeError, match="values: expected .*got float64 data.*or cast to a 32-bit"):
        bridge.to_jax(csr)


def test_large_int64_indices_survive_under_x64(x64):
    big = torch.tensor([2**40 + 3, -(2**35)])
    assert np.asarray(bridge.to_jax(big)).tolist() == big.tolist()


# ---------------------------------------------------------------- torch's negative/conjugate bits
def _complex():
    return torch.tensor([1 + 2j, -3 + 0.5j, 4 - 1j], dtype=torch.complex64)


@pytest.mark.parametrize("convert", [bridge.to_jax, bridge.to_numpy])
def test_negative_bit_is_resolved(convert):
    z = _complex()
    imag_of_conj = z.conj().imag  # a view carrying torch's negative bit
    assert imag_of_conj.is_neg()
    np.testing.assert_array_equal(dense_of(convert(imag_of_conj)), -z.imag.numpy())
    with pytest.raises(ValueError, match="array.*negative bit"):
        convert(imag_of_conj, copy=False)


@pytest.mark.parametrize("convert", [bridge.to_jax, bridge.to_numpy])
def test_conjugate_bit_is_resolved(convert):
    z = _complex()
    assert z.conj().is_conj()
    np.testing.assert_array_equal(np.asarray(convert(z.conj())), np.conj(z.numpy()))
    with pytest.raises(ValueError, match="conjugate bit"):
        convert(z.conj(), copy=False)


def test_to_torch_keeps_lazy_bits_as_torch_handles_them():
    z = _complex()
    out = bridge.to_torch(z.conj())
    assert data_ptr(out) == data_ptr(z)
    torch.testing.assert_close(out, z.conj())


# ---------------------------------------------------------------- strides
@pytest.mark.parametrize("convert", [bridge.to_torch, bridge.to_jax])
def test_negative_numpy_strides_are_copied_never_aborting(convert):
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3)[::-1, ::-1]
    np.testing.assert_array_equal(dense_of(convert(a)), a)
    with pytest.raises(ValueError, match="array.*strides"):
        convert(a, copy=False)


def test_strided_numpy_is_shared_with_torch():
    base = aligned_numpy(np.arange(24.0).reshape(4, 6))
    view = base[::2, 1::2]
    t = bridge.to_torch(view, copy=False)
    assert data_ptr(t) == data_ptr(view) and t.stride() == (12, 2)
    np.testing.assert_array_equal(t.numpy(), view)


@pytest.mark.parametrize(
    "make", [lambda t: t[:, ::2], lambda t: t[:1].expand(3, 4)], ids=["step", "broadcast"]
)
def test_non_compact_torch_into_jax_is_copied(make):
    t = make(torch.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(np.asarray(bridge.to_jax(t)), t.numpy())
    with pytest.raises(ValueError, match="array.*compact"):
        bridge.to_jax(t, copy=False)


def test_transposed_torch_is_shared_with_jax():
    t = torch.arange(12.0).reshape(3, 4).T
    a = bridge.to_jax(t, copy=False)
    assert data_ptr(a) == data_ptr(t)
    np.testing.assert_array_equal(np.asarray(a), t.numpy())


def test_negative_strided_sparse_component_is_copied():
    S = sp.csr_array(M)
    S.data = S.data[::-1].copy()[::-1]  # same values, negative stride
    np.testing.assert_array_equal(bridge.to_torch(S).to_dense().numpy(), M)
    with pytest.raises(ValueError, match="values.*strides"):
        bridge.to_torch(S, copy=False)


# ---------------------------------------------------------------- JAX-on-CPU 64-byte alignment
def test_sliced_torch_buffer_is_copied_into_jax():
    base = torch.arange(17.0)
    t = base[1:]
    assert data_ptr(t) % 64
    a = bridge.to_jax(t)
    np.testing.assert_array_equal(np.asarray(a), t.numpy())
    assert data_ptr(a) != data_ptr(t)
    with pytest.raises(ValueError, match="64-byte"):
        bridge.to_jax(t, copy=False)


def test_unaligned_csr_column_indices_are_copied_into_jax():
    crow = torch.tensor([0, 1, 3], dtype=torch.int32)
    col = torch.tensor([7, 1, 0, 2], dtype=torch.int32)[1:]  # a slice: 4 bytes past alignment
    A = torch.sparse_csr_tensor(crow, col, torch.tensor([1.0, 2.0, 3.0]), (2, 3))
    out = bridge.to_jax(A)
    np.testing.assert_array_equal(np.asarray(out.todense()), M)
    assert data_ptr(out.data) == data_ptr(A.values())
    with pytest.raises(ValueError, match="col_indices.*64-byte"):
        bridge.to_jax(A, copy=False)


def test_unaligned_numpy_into_jax():
    raw = aligned_numpy(np.arange(9, dtype=np.float32))
    a = raw[1:]
    np.testing.assert_array_equal(np.asarray(bridge.to_jax(a)), a)
    with pytest.raises(ValueError, match="64-byte"):
        bridge.to_jax(a, copy=False)


# ---------------------------------------------------------------- autograd
@pytest.mark.parametrize("convert", [bridge.to_jax, bridge.to_numpy, bridge.to_torch])
def test_requires_grad_is_detached_and_shared(convert):
    t = torch.arange(4.0).requires_grad_()
    out = convert(t, copy=False)
    assert data_ptr(out) == data_ptr(t)
    assert not getattr(out, "requires_grad", False)


def test_sparse_requiring_grad_converts():
    A = torch.tensor(M).to_sparse_csr().requires_grad_()
    S = bridge.to_scipy(A)
    np.testing.assert_array_equal(S.toarray(), M)


# ---------------------------------------------------------------- tracers
@pytest.mark.parametrize("convert", [bridge.to_torch, bridge.to_numpy, bridge.to_jax])
@pytest.mark.parametrize("transform", [jax.jit, jax.vmap])
def test_tracers_are_a_clear_error(convert, transform):
    with pytest.raises(TypeError, match="JAX tracer.*bridge.jax_kernel"):
        transform(convert)(jnp.ones((2, 3)))


def test_sparse_tracers_are_a_clear_error():
    A = jsparse.BCOO.fromdense(jnp.asarray(M))
    with pytest.raises(TypeError, match="JAX tracer"):
        jax.jit(lambda data: bridge.to_scipy(jsparse.BCOO((data, A.indices), shape=A.shape)))(
            A.data
        )


def test_to_scipy_of_a_tracer_says_tracer():
    with pytest.raises(TypeError, match="JAX tracer"):
        jax.jit(bridge.to_scipy)(jnp.ones(2))


# ---------------------------------------------------------------- empty arrays
EMPTY_DENSE = {
    "torch": lambda s: torch.zeros(s),
    "jax": lambda s: jnp.zeros(s),
    "numpy": lambda s: np.zeros(s, np.float32),
}
DENSE_TO = {"torch": bridge.to_torch, "jax": bridge.to_jax, "numpy": bridge.to_numpy}


@pytest.mark.parametrize("shape", [(0,), (0, 3), (3, 0)])
@pytest.mark.parametrize("src,dst", list(itertools.permutations(DENSE_TO, 2)))
def test_empty_dense(src, dst, shape):
    out = DENSE_TO[dst](EMPTY_DENSE[src](shape), copy=False)
    assert tuple(out.shape) == shape and str(out.dtype).endswith("float32")


SPARSE_TO = {"torch": bridge.to_torch, "jax": bridge.to_jax, "scipy": bridge.to_scipy}


@pytest.mark.parametrize("layout", [COO, CSR], ids=["coo", "csr"])
@pytest.mark.parametrize("src,dst", list(itertools.permutations(SPARSE_TO, 2)))
def test_empty_sparse(src, dst, layout, x64):
    x = make_sparse(src, torch.zeros(3, 4, dtype=torch.float64), layout)
    out = SPARSE_TO[dst](x, copy=False)
    assert tuple(out.shape) == (3, 4)
    np.testing.assert_array_equal(dense_of(out), np.zeros((3, 4)))


# ---------------------------------------------------------------- honest sparse metadata
def _uncoalesced():
    idx = torch.tensor([[1, 0, 1], [2, 1, 2]])
    return torch.sparse_coo_tensor(idx, torch.tensor([1.0, 2.0, 4.0]), (2, 3))


def test_uncoalesced_torch_coo_is_not_marked_sorted(x64):
    A = _uncoalesced()
    J = bridge.to_jax(A, copy=False)
    assert not J.indices_sorted and not J.unique_indices
    np.testing.assert_array_equal(np.asarray(J.todense()), A.to_dense().numpy())
    assert not bridge.to_scipy(A, copy=False).has_canonical_format
    C = bridge.to_jax(A.coalesce())
    assert C.indices_sorted and C.unique_indices
    assert bridge.to_scipy(A.coalesce()).has_canonical_format


@pytest.mark.parametrize(
    "indices,coalesced",
    [([[0, 1], [1, 2]], True), ([[1, 2], [0, 1]], False), ([[0, 1], [0, 1]], False)],
    ids=["sorted", "unsorted", "duplicate"],
)
def test_torch_coo_marked_coalesced_only_when_it_is(indices, coalesced, x64):
    B = jsparse.BCOO((jnp.array([1.0, 2.0]), jnp.array(indices)), shape=(2, 3))
    assert not B.indices_sorted  # flags unknown: the converter checks
    T = bridge.to_torch(B)
    assert T.is_coalesced() == coalesced
    np.testing.assert_array_equal(T.to_dense().numpy(), np.asarray(B.todense()))
    S = sp.coo_array((np.array([1.0, 2.0]), tuple(np.array(indices).T)), shape=(2, 3))
    assert bridge.to_torch(S).is_coalesced() == coalesced


def test_torch_csr_becomes_sorted_bcsr():
    C = torch.tensor(M).to_sparse_csr()
    C = torch.sparse_csr_tensor(C.crow_indices().int(), C.col_indices().int(), C.values(), C.shape)
    J = bridge.to_jax(C)
    assert J.indices_sorted and J.unique_indices


def _unsorted_scipy_csr():
    S = sp.csr_array(
        (np.array([3.0, 2.0, 1.0, 5.0]), np.array([2, 0, 1, 1]), np.array([0, 1, 4])), shape=(2, 3)
    )
    S.data, S.indices = S.data.astype(np.float32), S.indices.astype(np.int32)
    S.indptr = S.indptr.astype(np.int32)
    return S  # row 1 has columns [0, 1, 1]: unsorted and a duplicate


def test_unsorted_csr_is_sorted_for_torch():
    S = _unsorted_scipy_csr()
    T = bridge.to_torch(S)
    torch.sparse_csr_tensor(
        T.crow_indices(), T.col_indices(), T.values(), T.shape, check_invariants=True
    )  # torch's own validation passes
    np.testing.assert_array_equal(T.to_dense().numpy(), S.toarray())
    assert T.col_indices().dtype == torch.int32
    with pytest.raises(ValueError, match="col_indices.*sorted"):
        bridge.to_torch(S, copy=False)
    B = jsparse.BCSR(
        (jnp.asarray(S.data), jnp.asarray(S.indices), jnp.asarray(S.indptr)), shape=S.shape
    )
    np.testing.assert_array_equal(bridge.to_torch(B).to_dense().numpy(), S.toarray())


def test_unsorted_csr_to_jax_is_not_marked_sorted():
    J = bridge.to_jax(_unsorted_scipy_csr())
    assert not J.indices_sorted and not J.unique_indices


# ---------------------------------------------------------------- padding and layouts
def test_bcoo_padding_is_dropped(x64):
    B = jax.jit(lambda m: jsparse.BCOO.fromdense(m, nse=5))(jnp.asarray(M, jnp.float64))
    assert B.nse == 5  # 2 padding entries at index == shape
    for out in (bridge.to_torch(B), bridge.to_scipy(B)):
        assert out._nnz() == 3 if isinstance(out, torch.Tensor) else out.nnz == 3
        np.testing.assert_array_equal(dense_of(out), M)
    with pytest.raises(ValueError, match="indices.*padding"):
        bridge.to_torch(B, copy=False)


def test_bcsr_padding_is_a_shared_prefix():
    B = jsparse.BCSR.fromdense(jnp.asarray(M), nse=5)
    T = bridge.to_torch(B, copy=False)
    assert T.values().shape == (3,) and data_ptr(T.values()) == data_ptr(B.data)
    np.testing.assert_array_equal(T.to_dense().numpy(), M)


def test_batched_bcoo_is_flattened_with_a_copy():
    D = jnp.asarray(random_dense((2, 3, 4), dtype=torch.float32).numpy())
    B = jsparse.BCOO.fromdense(D, n_batch=1)
    T = bridge.to_torch(B)
    np.testing.assert_array_equal(T.to_dense().numpy(), np.asarray(D))
    with pytest.raises(ValueError, match="n_batch=1"):
        bridge.to_torch(B, copy=False)


def test_int32_bcoo_indices_widen_for_torch():
    B = jsparse.BCOO.fromdense(jnp.asarray(M))
    assert B.indices.dtype == jnp.int32
    T = bridge.to_torch(B)
    assert T._indices().dtype == torch.int64 and data_ptr(T._values()) == data_ptr(B.data)
    with pytest.raises(ValueError, match="indices.*always int64"):
        bridge.to_torch(B, copy=False)


def test_separate_scipy_coordinates_must_be_stacked(x64):
    S = sp.coo_array(M.astype(np.float64))  # row and col in separate arrays
    np.testing.assert_array_equal(bridge.to_torch(S).to_dense().numpy(), M)
    with pytest.raises(ValueError, match="indices.*own array"):
        bridge.to_torch(S, copy=False)
