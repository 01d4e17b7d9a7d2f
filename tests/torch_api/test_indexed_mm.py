"""segment_mm / gather_mm against a per-row dense reference, in values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import torch_api._indexed_kernels as kernels
from tests.helpers import tol
from torch_api import gather_mm, segment_mm


def _reference(a, b, idx):
    """out[i] = a[i] @ b[idx[i]], computed row by row in float64."""
    a64, b64 = a.double(), b.double()
    return torch.stack([a64[i] @ b64[idx[i]] for i in range(a.shape[0])]).reshape(
        a.shape[0], b.shape[-1]
    )


def _ref_grads(a, b, idx, G):
    a64 = a.detach().double().requires_grad_()
    b64 = b.detach().double().requires_grad_()
    out = _reference(a64, b64, idx)
    return (out.detach(), *torch.autograd.grad(out, (a64, b64), G.double()))


def _operands(N, K, M, R, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(N, K, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    b = torch.randn(R, K, M, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    G = torch.randn(N, M, generator=g, dtype=torch.float64).to(dtype)
    return a, b, G


@pytest.fixture(autouse=True, params=["padded", "segments"])
def kernel(request, monkeypatch):
    """Every test runs on both kernel families: the padded bmm and the per-segment kernels."""
    force = request.param == "padded"
    monkeypatch.setattr(kernels, "use_padded", lambda R, L, N: force and N > 0)
    return request.param


SEGMENTS = {
    "plain": [3, 4, 5],
    "empty-middle": [3, 0, 7, 2],
    "empty-ends": [0, 6, 0, 4, 0],
    "single": [9],
    "one-nonempty": [0, 0, 7, 0],
}
SHAPES = {"aligned": (8, 12), "odd": (3, 5), "column": (4, 1)}


@pytest.mark.parametrize("seg", SEGMENTS.values(), ids=SEGMENTS.keys())
@pytest.mark.parametrize("KM", SHAPES.values(), ids=SHAPES.keys())
def test_segment_mm_values_and_grads(seg, KM, dtype):
    K, M = KM
    seglen = torch.tensor(seg)
    a, b, G = _operands(sum(seg), K, M, len(seg), dtype)
    out = segment_mm(a, b, seglen)
    da, db = torch.autograd.grad(out, (a, b), G)
    idx = torch.repeat_interleave(torch.arange(len(seg)), seglen)
    ref, ref_da, ref_db = _ref_grads(a, b, idx, G)
    assert out.dtype == dtype and out.shape == (sum(seg), M)
    torch.testing.assert_close(out.double(), ref, **tol(dtype))
    torch.testing.assert_close(da.double(), ref_da, **tol(dtype))
    torch.testing.assert_close(db.double(), ref_db, **tol(dtype))
    # an empty segment's weight gets an exact zero gradient
    for r, n in enumerate(seg):
        if n == 0:
            assert torch.count_nonzero(db[r]) == 0


@pytest.mark.parametrize("sorted_idx", [False, True], ids=["unsorted", "sorted"])
@pytest.mark.parametrize("KM", SHAPES.values(), ids=SHAPES.keys())
def test_gather_mm_values_and_grads(sorted_idx, KM, dtype, index_dtype):
    K, M = KM
    N, R = 17, 5
    a, b, G = _operands(N, K, M, R, dtype, seed=1)
    g = torch.Generator().manual_seed(2)
    idx = torch.randint(0, R - 1, (N,), generator=g)  # matrix R-1 is never used
    if sorted_idx:
        idx = idx.sort().values
    out = gather_mm(a, b, idx.to(index_dtype))
    da, db = torch.autograd.grad(out, (a, b), G)
    ref, ref_da, ref_db = _ref_grads(a, b, idx, G)
    torch.testing.assert_close(out.double(), ref, **tol(dtype))
    torch.testing.assert_close(da.double(), ref_da, **tol(dtype))
    torch.testing.assert_close(db.double(), ref_db, **tol(dtype))
    assert torch.count_nonzero(db[R - 1]) == 0


def test_bfloat16_matches_float64_reference():
    seg = torch.tensor([5, 0, 11])
    a, b, G = _operands(16, 8, 16, 3, torch.bfloat16)
    out = segment_mm(a, b, seg)
    da, db = torch.autograd.grad(out, (a, b), G)
    idx = torch.repeat_interleave(torch.arange(3), seg)
    ref, ref_da, ref_db = _ref_grads(a, b, idx, G)
    assert out.dtype == torch.bfloat16
    for got, want in ((out, ref), (da, ref_da), (db, ref_db)):
        torch.testing.assert_close(got.double(), want, rtol=3e-2, atol=5e-2)


def test_sum_backward_stride0_gradient(dtype):
    """out.sum() sends a stride-0 gradient into backward (grouped_mm rejects those)."""
    seg = torch.tensor([4, 0, 4])
    a, b, _ = _operands(8, 8, 8, 3, dtype)
    out = segment_mm(a, b, seg)
    da, db = torch.autograd.grad(out.sum(), (a, b))
    idx = torch.repeat_interleave(torch.arange(3), seg)
    _, ref_da, ref_db = _ref_grads(a, b, idx, torch.ones(8, 8, dtype=dtype))
    torch.testing.assert_close(da.double(), ref_da, **tol(dtype))
    torch.testing.assert_close(db.double(), ref_db, **tol(dtype))


def test_non_contiguous_operands(dtype):
    g = torch.Generator().manual_seed(3)
    a = torch.randn(8, 10, generator=g, dtype=dtype).t()  # (10, 8), column-major
    b = torch.randn(3, 12, 8, generator=g, dtype=dtype).transpose(1, 2)  # (3, 8, 12)
    seg = torch.tensor([2, 5, 3])
    idx = torch.repeat_interleave(torch.arange(3), seg)
    torch.testing.assert_close(segment_mm(a, b, seg).double(), _reference(a, b, idx), **tol(dtype))
    perm = torch.randperm(10, generator=g)
    torch.testing.assert_close(
        gather_mm(a, b, idx[perm]).double(), _reference(a, b, idx[perm]), **tol(dtype)
    )


B_VIEWS = {
    "expanded": lambda g: torch.randn(1, 8, 8, generator=g).expand(3, 8, 8),
    "unaligned-row-stride": lambda g: torch.randn(3, 8, 10, generator=g)[:, :, :8],
    "aligned-row-stride": lambda g: torch.randn(3, 8, 12, generator=g)[:, :, :8],
    "step-2": lambda g: torch.randn(3, 8, 16, generator=g)[:, :, ::2],
}


@pytest.mark.parametrize("make_b", B_VIEWS.values(), ids=B_VIEWS.keys())
def test_strided_views_of_b(make_b):
    g = torch.Generator().manual_seed(5)
    a = torch.randn(8, 8, generator=g, requires_grad=True)
    b = make_b(g).requires_grad_()
    seg = torch.tensor([3, 0, 5])
    G = torch.randn(8, 8, generator=g)
    out = segment_mm(a, b, seg)
    da, db = torch.autograd.grad(out, (a, b), G)
    idx = torch.repeat_interleave(torch.arange(3), seg)
    ref, ref_da, ref_db = _ref_grads(a, b, idx, G)
    torch.testing.assert_close(out.double(), ref, **tol(torch.float32))
    torch.testing.assert_close(da.double(), ref_da, **tol(torch.float32))
    torch.testing.assert_close(db.double(), ref_db, **tol(torch.float32))


def test_no_rows():
    a, b, _ = _operands(0, 4, 3, 2, torch.float32)
    out = segment_mm(a, b, torch.tensor([0, 0]))
    assert out.shape == (0, 3)
    db = torch.autograd.grad(out.sum(), b)[0]
    assert db.shape == b.shape and torch.count_nonzero(db) == 0
    out = gather_mm(a, b, torch.zeros(0, dtype=torch.int64))
    assert out.shape == (0, 3)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(4)
    a = torch.randn(7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    seg = torch.tensor([2, 0, 5])
    assert torch.autograd.gradcheck(lambda x, y: segment_mm(x, y, seg), (a, b))
    idx = torch.tensor([2, 0, 2, 1, 0, 2, 2])
    assert torch.autograd.gradcheck(lambda x, y: gather_mm(x, y, idx), (a, b))


@pytest.mark.parametrize(
    "dtype, expect_grouped",
    [(torch.float32, True), (torch.bfloat16, True), (torch.float64, False)],
    ids=["f32", "bf16", "f64"],
)
def test_grouped_kernel_used_where_available(monkeypatch, kernel, dtype, expect_grouped):
    calls = []
    real = F.grouped_mm

    def counting(*args, **kw):
        calls.append(args[0].dtype)
        return real(*args, **kw)

    monkeypatch.setattr(kernels.F, "grouped_mm", counting)
    a, b, G = _operands(12, 8, 8, 3, dtype)
    out = gather_mm(a, b, torch.tensor([2, 0, 1] * 4))
    torch.autograd.grad(out, (a, b), G)
    expected = 3 if expect_grouped and kernel == "segments" else 0  # forward, da, db
    assert len(calls) == expected


@pytest.mark.parametrize(
    "lens, padded",
    [([5, 4, 6], True), ([1, 0, 60], True), ([1] * 10 + [300], False), ([200, 1, 1], False)],
    ids=["balanced", "short-with-room", "one-long", "long-first"],
)
def test_padding_rule(monkeypatch, lens, padded):
    """Padding to the longest segment is chosen only when it adds at most N rows (or 64 per
    segment); the choice is made by the real rule here, and both results are right."""
    monkeypatch.undo()  # the real use_padded
    seg = torch.tensor(lens)
    plan = kernels.make_plan(seg, torch.zeros(1, dtype=torch.float64))  # no grouped_mm
    assert (plan.pad is not None) == padded
    a, b, G = _operands(sum(lens), 4, 3, len(lens), torch.float64)
    out = segment_mm(a, b, seg)
    idx = torch.repeat_interleave(torch.arange(len(lens)), seg)
    torch.testing.assert_close(out, _reference(a, b, idx))


def test_segment_mm_keeps_grouped_kernel_where_available(monkeypatch):
    monkeypatch.undo()  # the real use_padded
    seg = torch.tensor([5, 4, 6])
    assert kernels.make_plan(seg, torch.zeros(1)).pad is None  # float32: grouped_mm
    assert kernels.make_plan(seg, torch.zeros(1), idx=torch.arange(3)).pad is not None


def test_padded_layout_places_each_row_once():
    idx = torch.tensor([2, 0, 2, 1, 0, 2])
    counts = torch.bincount(idx, minlength=4)  # matrix 3 unused
    perm = kernels.stable_order(idx, 4)
    assert perm.tolist() == [1, 4, 3, 0, 2, 5]  # stable
    pad = kernels.padded_layout(idx, perm, counts, 3)
    assert pad.slots.tolist() == [6, 0, 7, 3, 1, 8]  # row i sits in block idx[i], in order
    assert sorted(pad.slots.tolist() + pad.empty.tolist()) == list(range(12))
    assert pad.src[pad.slots].tolist() == list(range(6))


def test_bad_inputs():
    a, b = torch.randn(5, 3), torch.randn(2, 3, 4)
    seg, idx = torch.tensor([2, 3]), torch.tensor([0, 1, 1, 0, 1])
    with pytest.raises(ValueError, match="seglen_a: expected lengths summing to a's 5 rows"):
        segment_mm(a, b, torch.tensor([2, 2]))
    with pytest.raises(ValueError, match="seglen_a: expected lengths >= 0"):
        segment_mm(a, b, torch.tensor([-1, 6]))
    with pytest.raises(ValueError, match=r"seglen_a: expected one length per matrix of b"):
        segment_mm(a, b, torch.tensor([5]))
    with pytest.raises(ValueError, match="seglen_a: expected an integer tensor"):
        segment_mm(a, b, seg.float())
    with pytest.raises(TypeError, match="seglen_a: expected a torch.Tensor"):
        segment_mm(a, b, [2, 3])
    with pytest.raises(ValueError, match="a: expected a 2-D tensor"):
        segment_mm(a[0], b, seg)
    with pytest.raises(ValueError, match="b: expected a 3-D tensor"):
        segment_mm(a, b[0], seg)
    with pytest.raises(ValueError, match=r"b: expected shape \(R, 3, D2\)"):
        segment_mm(a, torch.randn(2, 4, 4), seg)
    with pytest.raises(ValueError, match="b: expected dtype torch.float32 to match a"):
        segment_mm(a, b.double(), seg)
    with pytest.raises(ValueError, match="a: expected a floating-point tensor"):
        gather_mm(a.long(), b.long(), idx)
    with pytest.raises(TypeError, match="a: expected a dense"):
        gather_mm(a.to_sparse(), b, idx)
    with pytest.raises(ValueError, match=r"idx_b: expected indices in \[0, 2\)"):
        gather_mm(a, b, torch.tensor([0, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match=r"idx_b: expected indices in \[0, 2\)"):
        gather_mm(a, b, torch.tensor([0, -1, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"idx_b: expected one index per row of a"):
        gather_mm(a, b, idx[:4])
    with pytest.raises(ValueError, match="idx_b: expected a 1-D integer tensor"):
        gather_mm(a, b, idx[None])


@pytest.mark.gpu
@pytest.mark.parametrize("dt", [torch.float32, torch.bfloat16, torch.float64])
def test_cuda_matches_reference(dt):
    seg = torch.tensor([5, 0, 11, 0])
    a, b, G = _operands(16, 8, 16, 4, dt)
    a = a.detach().cuda().requires_grad_()
    b = b.detach().cuda().requires_grad_()
    idx = torch.repeat_interleave(torch.arange(4), seg)
    ref, ref_da, ref_db = _ref_grads(a.cpu(), b.cpu(), idx, G)
    k = dict(rtol=3e-2, atol=5e-2) if dt == torch.bfloat16 else dict(rtol=1e-4, atol=1e-4)
    for fn, arg in ((segment_mm, seg), (gather_mm, idx.cuda())):
        out = fn(a, b, arg)
        da, db = torch.autograd.grad(out, (a, b), G.cuda())
        for got, want in ((out, ref), (da, ref_da), (db, ref_db)):
            torch.testing.assert_close(got.double().cpu(), want, **k)
