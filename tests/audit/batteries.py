"""Argument batteries of the bad-input audit, one per kind of argument, for either frontend.

A battery tries every way one argument can be wrong (type, layout, dtype, rank, device, broken
indices) and expects the error naming it. What differs between torch_api and jax_api (the
containers, the messages, the x64 switch) is an :class:`Adapter`: ``TORCH`` or ``JAX``. A
battery is given a valid dense float64 torch value; the adapter builds each framework's variants
from it, so both frontends get the same coverage from one list of cases.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from .inputs import coo_out_of_range, csr_bad_crow, csr_out_of_range, hybrid_coo, scipy_sparse, sp
from .table import TE, VE, Call, Row, err


class Variant(NamedTuple):
    case: str
    make: Callable[[], object]
    expect: object
    index: bool = False  # a broken-index case (isolated where the battery asks)
    x64: bool | None = None


class TorchAdapter:
    """torch_api: torch tensors (float64), CSR by default."""

    def sparse(self, D: torch.Tensor):
        return sp(D)

    def dense(self, x: torch.Tensor):
        return x.clone()

    def bad_sparse(self, name: str, D: torch.Tensor, csc_ok: bool) -> list[Variant]:
        csc = [] if csc_ok else [Variant(f"{name} is CSC", lambda: sp(D, "csc"),
                                         err(TE, name, "CSC"))]
        return csc + [
            Variant(f"{name} is a list", D.tolist, err(TE, name, "torch.Tensor")),
            Variant(f"{name} is a NumPy array", D.numpy, err(TE, name, "torch.Tensor")),
            Variant(f"{name} is dense", D.clone, err(TE, name, "sparse|strided")),
            Variant(f"{name} is BSR", lambda: D.to_sparse_bsr((1, 1)), err(TE, name, "BSR")),
            Variant(f"{name} is hybrid COO", lambda: hybrid_coo(D), err(TE, name, "hybrid")),
            Variant(f"{name} has int64 values", lambda: sp(D.long(), "coo"),
                    err(VE, name, "float32 or float64")),
            Variant(f"{name} has complex values", lambda: sp(D.to(torch.complex128)),
                    err(VE, name, "float32 or float64")),
            Variant(f"{name} is 1-D (wrong rank)", lambda: D[0].to_sparse(), err(VE, name, "-D")),
            Variant(f"{name}: COO column index out of range", lambda: coo_out_of_range(D),
                    err(VE, name, r"indices of dimension 1 in \[0, \d+\)"), True),
            Variant(f"{name}: negative COO row index", lambda: coo_out_of_range(D, 0, -1),
                    err(VE, name, r"indices of dimension 0 in \[0, \d+\), got indices in \[-1"),
                    True),
            Variant(f"{name}: CSR column index out of range", lambda: csr_out_of_range(D),
                    err(VE, name, r"column indices in \[0, \d+\)"), True),
            Variant(f"{name}: CSR row pointers not monotone", lambda: csr_bad_crow(D),
                    err(VE, name, "compressed indices"), True),
        ]

    def bad_dense(self, name: str, good: torch.Tensor, match_name: str | None) -> list[Variant]:
        out = [
            Variant(f"{name} is a list", good.tolist, err(TE, name, "torch.Tensor")),
            Variant(f"{name} is a NumPy array", good.numpy, err(TE, name, "torch.Tensor")),
            Variant(f"{name} is sparse", good.to_sparse, err(TE, name, "dense")),
            Variant(f"{name} has int64 values", good.long,
                    err(VE, name, "float32 or float64|dtype")),
            Variant(f"{name} has complex values", lambda: good.to(torch.complex128),
                    err(VE, name, "float32 or float64|dtype")),
        ]
        if match_name is not None:
            out += [
                Variant(f"{name} is float32 ({match_name} float64)", good.float,
                        err(VE, name, f"dtype torch.float64 to match {match_name}")),
                Variant(f"{name} on the meta device", lambda: good.to("meta"),
                        err(VE, name, f"device cpu to match {match_name}")),
            ]
        return out


class JaxAdapter:
    """jax_api: BCSR/BCOO and jax.Array, float32 (JAX's default mode), built from NumPy parts
    (``fromdense`` would compile a JAX program per shape)."""

    def sparse(self, D: torch.Tensor, kind: str = "bcsr", dtype=np.float32):
        from jax.experimental.sparse import BCOO, BCSR

        M = D.numpy().astype(dtype)
        if kind == "bcsr":
            S = scipy_sparse().csr_array(M)
            parts = (S.data, S.indices.astype(np.int32), S.indptr.astype(np.int32))
            return BCSR(tuple(self._jnp(p) for p in parts), shape=M.shape)
        S = scipy_sparse().coo_array(M)
        idx = np.stack([S.row, S.col], 1).astype(np.int32)
        return BCOO((self._jnp(S.data), self._jnp(idx)), shape=M.shape)

    def dense(self, x: torch.Tensor, dtype=np.float32):
        return self._jnp(x.numpy().astype(dtype))

    @staticmethod
    def _jnp(x):
        import jax.numpy as jnp

        return jnp.asarray(x)

    def bad_sparse(self, name: str, D: torch.Tensor, csc_ok: bool) -> list[Variant]:
        from jax.experimental.sparse import BCOO

        kinds = "BCOO or BCSR"
        M = D.numpy().astype(np.float32)

        def with_dense_dim():
            return BCOO((self._jnp(M), self._jnp(np.arange(M.shape[0], dtype=np.int32)[:, None])),
                        shape=M.shape)

        return [
            Variant(f"{name} is a list", M.tolist, err(TE, name, kinds)),
            Variant(f"{name} is a NumPy array", lambda: M, err(TE, name, kinds)),
            Variant(f"{name} is a torch tensor", lambda: torch.from_numpy(M).to_sparse(),
                    err(TE, name, kinds)),
            Variant(f"{name} is a SciPy CSR matrix", lambda: scipy_sparse().csr_array(M),
                    err(TE, name, kinds)),
            Variant(f"{name} is dense", lambda: self._jnp(M), err(TE, name, kinds)),
            Variant(f"{name} has a dense dimension", with_dense_dim,
                    err(TE, name, "dense dimensions")),
            Variant(f"{name} has int32 values", lambda: self.sparse(D, "bcoo", np.int32),
                    err(VE, name, "float32 or float64")),
            Variant(f"{name} has complex values", lambda: self.sparse(D, "bcsr", np.complex64),
                    err(VE, name, "float32 or float64")),
            Variant(f"{name} is 1-D (wrong rank)", lambda: _bcoo_1d(M[0]), err(VE, name, "-D")),
        ]

    def bad_dense(self, name: str, good: torch.Tensor, match_name: str | None) -> list[Variant]:
        from jax.experimental.sparse import BCOO

        g = good.numpy().astype(np.float32)
        out = [
            Variant(f"{name} is a list", g.tolist, err(TE, name, "dense jax.Array")),
            Variant(f"{name} is a torch tensor", lambda: torch.from_numpy(g),
                    err(TE, name, "dense jax.Array")),
            Variant(f"{name} is sparse", lambda: BCOO.fromdense(self._jnp(g)),
                    err(TE, name, "dense jax.Array")),
            Variant(f"{name} has int32 values", lambda: self._jnp(g.astype(np.int32)),
                    err(VE, name, "float32 or float64")),
            Variant(f"{name} has complex values", lambda: self._jnp(g.astype(np.complex64)),
                    err(VE, name, "float32 or float64")),
            Variant(f"{name} float64 NumPy while JAX's x64 mode is disabled",
                    lambda: g.astype(np.float64), err(VE, name, "x64|downcast"), x64=False),
        ]
        if match_name is not None:
            out.append(Variant(f"{name} is float64 ({match_name} float32)",
                               lambda: self._jnp(g.astype(np.float64)),
                               err(VE, name, f"dtype float32 to match {match_name}"), x64=True))
        return out


def _bcoo_1d(v: np.ndarray):
    import jax.numpy as jnp
    from jax.experimental.sparse import BCOO

    nz = np.nonzero(v)[0].astype(np.int32)
    return BCOO((jnp.asarray(v[nz]), jnp.asarray(nz[:, None])), shape=v.shape)


TORCH, JAX = TorchAdapter(), JaxAdapter()


# ---------------------------------------------------------------------- argument batteries
def sparse_battery(target: str, name: str, call: Callable[[object], Call], D: torch.Tensor, *,
                   adapter=TORCH, csc_ok: bool = False,
                   isolate_indices: bool = True) -> list[Row]:
    """Wrong type, layout, rank, dtype and invalid indices for the sparse argument ``name``.

    ``call(A)`` builds the call with ``A`` in place of the argument; ``D`` is a valid dense
    float64 torch value, which ``adapter`` turns into each framework's variants.
    """
    return [Row(target, v.case, lambda v=v: call(v.make()), v.expect,
                isolate=v.index and isolate_indices, x64=v.x64)
            for v in adapter.bad_sparse(name, D, csc_ok)]


def dense_battery(target: str, name: str, call: Callable[[object], Call], good: torch.Tensor, *,
                  adapter=TORCH, rank_bad: torch.Tensor | None = None,
                  rows_bad: torch.Tensor | None = None,
                  match_name: str | None = None) -> list[Row]:
    """Wrong type, dtype, device, rank and rows for the dense argument ``name`` (``good`` is a
    valid float64 torch value; ``match_name`` is the argument it must match in dtype/device)."""
    rows = [Row(target, v.case, lambda v=v: call(v.make()), v.expect, x64=v.x64)
            for v in adapter.bad_dense(name, good, match_name)]
    if rank_bad is not None:
        rows.append(Row(target, f"{name} of rank {rank_bad.dim()}",
                        lambda: call(adapter.dense(rank_bad)), err(VE, name, "-D")))
    if rows_bad is not None:
        rows.append(Row(target, f"{name} of shape {tuple(rows_bad.shape)} (rows mismatch)",
                        lambda: call(adapter.dense(rows_bad)), err(VE, name, "rows|size|shape")))
    return rows


def gpu_rows(target: str, call: Callable[[torch.device], Call], name: str) -> list[Row]:
    """``call(device)`` puts argument ``name`` on ``device`` and the rest on the CPU."""
    return [Row(target, f"{name} on CUDA, the rest on the CPU", lambda: call(torch.device("cuda")),
                err(VE, name, "device"), gpu=True)]
