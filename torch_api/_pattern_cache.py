"""The per-pattern cache: data that depends on a sparse matrix's indices alone, computed once.

What it holds (the ``kind`` of an entry; every one is derived from the caller's index tensors):

- ``"coo"``: the flat CSR row pointers (and batched columns) of a COO pattern (``Pattern.of``);
- ``"int32"``, ``"int32 transpose"``: int32 copies of CPU indices for MKL (``Pattern.csr/csr_t``);
- ``"transpose"``: the CSR pattern of ``A^T`` and its value permutation (``Pattern.transpose``);
- ``"valid <layout>"``: the verdict of the O(nnz) index-range check (``check_indices``);
- ``"triangular ..."``, ``"triangle lower=..."``: triangular structure verdicts (sorted columns,
  side of the diagonal, stored diagonal) of ``sparse_triangular_solve`` and the SciPy/CuPy solves;
- ``"canonical ..."``: SciPy/CuPy canonical-format checks; ``"coo indices ..."``: JAX BCOO indices.

How it cannot be fooled. Entries are grouped per *source*: the caller's index tensors, identified
by their storage (held through a weak reference: when the storage dies, its group is dropped and
its memory freed), offset, sizes, strides and dtype, plus the matrix shape. A group keeps an
exact copy of the index values it was computed from, and the first use of a group in each
operation compares the caller's indices with it (``torch.equal``: one O(nnz) pass). A mismatch
(indices refilled in place through ``copy_``, ``.data``, NumPy or another view) drops every
entry of the group, the index-range verdict included, so changed indices are checked again.
Version counters are not used: writes through ``.data`` and NumPy do not move them, and inference
tensors have none. An exact copy rather than a hash: a position-dependent hash with torch ops
reads as many bytes (a weight vector as long as the indices) and could collide.

Bounds: at most :data:`MAX_GROUPS` groups and :data:`MAX_BYTES` bytes of cached tensors (copies
included), evicted least recently used, a whole group at a time, so the entries of one pattern
never evict each other. Results sharing memory with the caller's tensors are not kept (they
would keep that memory alive). One lock guards the table; computations run outside it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch

MAX_GROUPS = 64
MAX_BYTES = 1 << 30

CACHE_NOTE = (
    "Caching: data derived from the sparse argument's indices alone (the index check, int32 "
    "copies, the transposed pattern, structure verdicts) is kept per pattern and rebuilt when "
    "the indices change; see ``torch_api.clear_caches``."
)

_lock = threading.RLock()
_table: OrderedDict[tuple, _Group] = OrderedDict()
_bytes = 0
_local = threading.local()  # .scope: groups validated in the current operation call


class _Group:
    """The cached entries of one source: ``results[kind]``, and the copy they were built from."""

    __slots__ = ("key", "refs", "copy", "results", "nbytes")

    def __init__(self, key: tuple, source: tuple[torch.Tensor, ...]):
        self.key = key
        drop = functools.partial(_drop, key)
        self.refs = tuple(weakref.ref(t.untyped_storage(), drop) for t in source)
        with torch.inference_mode(False):
            self.copy = tuple(t.clone() for t in source)
        self.results: dict[str, Any] = {}
        self.nbytes = sum(t.nbytes for t in self.copy)

    def matches(self, source: tuple[torch.Tensor, ...]) -> bool:
        return all(
            r() is t.untyped_storage() and torch.equal(c, t)
            for r, c, t in zip(self.refs, self.copy, source, strict=True)
        )


class _Source(tuple):
    """The index tensors of one :class:`Pattern`, remembering their validated group: the
    pattern's later lookups (in the same operation's forward and backward) skip the check."""

    group: _Group | None = None


def bind(source: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """``source`` as a tuple that remembers its group once validated (for ``Pattern.source``)."""
    return _Source(source)


def cached(kind: str, source: tuple[torch.Tensor, ...], shape: tuple[int, ...],
           compute: Callable[[], Any]) -> Any:
    """``compute()``, cached per ``(source, shape, kind)``; ``source`` holds the caller's index
    tensors. A result that raises is not cached (the check runs again on the next call)."""
    if source[0].device.type == "meta":
        return compute()
    group = _group(source, shape)
    with _lock:
        if kind in group.results:
            return group.results[kind]
    with torch.inference_mode(False):
        result = compute()
    _store(group, kind, result, source)
    return result


def clear() -> None:
    """Drop every cached entry (the public ``torch_api.clear_caches``)."""
    global _bytes
    with _lock:
        _table.clear()
        _bytes = 0


@contextlib.contextmanager
def scope():
    """Validate each source once within this block (one operation call; reentrant)."""
    if getattr(_local, "scope", None) is not None:
        yield
        return
    _local.scope = {}
    try:
        yield
    finally:
        _local.scope = None


def operation(fn: Callable, note: str | None = CACHE_NOTE) -> Callable:
    """Decorate a public operation: one validation per source per call; under ``torch.compile``
    a graph break around the call (Dynamo cannot trace sparse tensors' index views: it fails on
    them instead of breaking the graph). ``note`` is added after the docstring's summary."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if torch.compiler.is_compiling():
            return torch.compiler.disable(run)(*args, **kwargs)
        with scope():
            return fn(*args, **kwargs)

    if note and run.__doc__:
        summary, _, rest = run.__doc__.partition("\n\n")
        run.__doc__ = f"{summary}\n\n    {note}\n\n{rest}"
    return run


def dense_operation(fn: Callable) -> Callable:
    """:func:`operation` for an operation without a sparse argument (nothing cached)."""
    return operation(fn, note=None)


def stats() -> dict[str, int]:
    """``{"groups": ..., "bytes": ...}`` currently held (for tests and benchmarks)."""
    with _lock:
        return {"groups": len(_table), "bytes": _bytes}


# ----------------------------------------------------------------------------- internals
def _key(source: tuple[torch.Tensor, ...], shape: tuple[int, ...]) -> tuple:
    return (source[0].device, tuple(shape), *(
        (id(t.untyped_storage()), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
        for t in source
    ))


def _group(source: tuple[torch.Tensor, ...], shape: tuple[int, ...]) -> _Group:
    bound = source.group if isinstance(source, _Source) else None
    if bound is not None:
        return bound
    key = _key(source, shape)
    scoped = getattr(_local, "scope", None)
    group = scoped.get(key) if scoped is not None else None
    if group is None:
        with _lock:
            group = _table.get(key)
            if group is not None:
                _table.move_to_end(key)
        if group is None or not group.matches(source):
            group = _install(_Group(key, source))
        if scoped is not None:
            scoped[key] = group
    if isinstance(source, _Source):
        source.group = group
    return group


def _install(group: _Group) -> _Group:
    global _bytes
    with _lock:
        old = _table.pop(group.key, None)
        if old is not None:
            _bytes -= old.nbytes
        if group.nbytes <= MAX_BYTES:
            _table[group.key] = group
            _bytes += group.nbytes
            _evict()
    return group


def _store(group: _Group, kind: str, result: Any, source: tuple[torch.Tensor, ...]) -> None:
    global _bytes
    tensors = _tensors(result)
    storages = {t.untyped_storage().data_ptr() for t in source}
    if any(t.untyped_storage().data_ptr() in storages for t in tensors):
        return  # a view of the caller's indices: recomputed (cheaply) on each call instead
    size = sum(t.untyped_storage().nbytes() for t in tensors)
    with _lock:
        if kind in group.results:
            return
        group.results[kind] = result
        group.nbytes += size
        if _table.get(group.key) is group:
            _bytes += size
            _evict()


def _evict() -> None:
    global _bytes
    while _table and (len(_table) > MAX_GROUPS or _bytes > MAX_BYTES):
        _, old = _table.popitem(last=False)
        _bytes -= old.nbytes


def _drop(key: tuple, ref: weakref.ref) -> None:
    """A source storage died: forget its group (called by the weak reference)."""
    global _bytes
    with _lock:
        group = _table.get(key)
        if group is not None and ref in group.refs:
            del _table[key]
            _bytes -= group.nbytes


def _tensors(result: Any) -> list[torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in _tensors(item)]
    return []
