"""The two bilinear primitives every jax_api derivative is made of, and the linear solve.

- ``mm(pattern, values, B, transpose)``: ``op(A) @ B`` for flat ``B``, ``op(A) = A`` or ``A^T``.
  Bilinear in ``(values, B)``: its JVP is ``mm(dv, B) + mm(values, dB)``; its transpose in
  ``B`` is ``mm`` with ``op`` flipped, in ``values`` the SDDMM ``G B^T`` (``B G^T`` for ``A^T``)
  at the pattern.
- ``sddmm(pattern, G, X)``: the flat values of ``G @ X^T`` at the pattern. Bilinear in
  ``(G, X)``: its transpose in ``G`` is ``mm(w, X)``, in ``X`` ``mm(w, G, transpose=True)``
  (``w`` the cotangent, read as values on the pattern).

Each is a JAX primitive with JVP, transpose and batching rules, so ``jvp``, ``grad`` of any
order, ``jacfwd``, ``hessian``, ``linear_transpose`` and ``vmap`` compose through them, under
``jit``, on every platform (the kernels are :class:`~jax_api._pattern.Pattern`'s: torch's MKL
CSR kernels through ``bridge.jax_kernel`` on CPU, XLA gathers/scatters elsewhere). A second
derivative in the values is again an SDDMM: it stays length nnz, never ``n x n``.

``linear_solve`` is ``jax.lax.custom_linear_solve`` with ``mm`` as the matrix: JAX's primitive
with JVP and transpose rules for implicitly differentiated solves (as lineax's
``linear_solve_p``); a solver supplies only a solve and a transposed solve.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from ._pattern import Pattern
from ._sharding import varying_axes

__all__ = ["mm", "sddmm", "linear_solve"]


def _pattern(rows, cols, crow, shape, layout) -> Pattern:
    return Pattern(crow, cols, rows, shape, layout)


def _vary(x, anchors):
    """``x`` typed as varying along every ``shard_map`` axis the anchors vary along, by a cast
    (no data dependence: a tangent anchor must not make ``x`` linear too)."""
    axes = frozenset().union(*(varying_axes(a) for a in anchors)) - varying_axes(x)
    return jax.lax.pcast(x, tuple(sorted(axes)), to="varying") if axes else x


def _bilinear_jvp(f, primals, tangents):
    """``f(x, y)`` and its tangent ``f(dx, y) + f(x, dy)`` (symbolic zeros skipped)."""
    (x, y), (dx, dy) = primals, tangents
    out = f(x, y)
    terms = []
    if type(dx) is not ad.Zero:
        terms.append(f(dx, y))
    if type(dy) is not ad.Zero:
        terms.append(f(x, dy))
    if not terms:
        return out, ad.Zero(jax.typeof(out))
    return out, terms[0] if len(terms) == 1 else terms[0] + terms[1]


def _zero(x):
    return ad.Zero(x.aval) if ad.is_undefined_primal(x) else ad.Zero(jax.typeof(x))


def _per_item(bind, args, dims):
    """A batching rule's general case: ``bind`` on each batch item in turn (``lax.map``), so
    the items go through the primitive again (an outer JVP still finds its rules)."""
    mapped = [i for i, d in enumerate(dims) if d is not None]

    def item(xs):
        full = list(args)
        for i, x in zip(mapped, xs, strict=True):
            full[i] = x
        return bind(*full)

    xs = [jnp.moveaxis(args[i], dims[i], 0) for i in mapped]
    return jax.lax.map(item, xs), 0


def _primitive(name: str, impl, abstract, jvp, transpose, batch) -> Primitive:
    """A primitive evaluated by ``impl`` (lowered by tracing it), with its abstract evaluation,
    JVP, transpose and batching rules."""
    p = Primitive(name)
    p.def_impl(impl)
    p.def_abstract_eval(abstract)
    mlir.register_lowering(p, mlir.lower_fun(impl, multiple_results=False))
    ad.primitive_jvps[p] = jvp
    ad.primitive_transposes[p] = transpose
    batching.primitive_batchers[p] = batch
    return p


# ------------------------------------------------------------------------------------ mm
def _mm_impl(rows, cols, crow, values, B, *, shape, layout, transpose):
    p = _pattern(rows, cols, crow, shape, layout)
    return p.rmatmul(values, B) if transpose else p.matmul(values, B)


def _mm_abstract(rows, cols, crow, values, B, *, shape, layout, transpose):
    p = _pattern(rows, cols, crow, shape, layout)
    out_rows = p.csr_shape[1] if transpose else p.csr_shape[0]
    return B.update(shape=(out_rows, B.shape[1]), weak_type=False)


def mm(pattern: Pattern, values: jax.Array, B: jax.Array, transpose: bool = False) -> jax.Array:
    """``op(A) @ B`` for flat ``B`` ``(csr_shape[1], p)`` (``(csr_shape[0], p)`` for ``A^T``)."""
    B = _vary(B, (pattern.rows, pattern.col, pattern.crow, values))
    return _mm_p.bind(pattern.rows, pattern.col, pattern.crow, values, B, shape=pattern.shape,
                      layout=pattern.layout, transpose=bool(transpose))


def _mm_jvp(primals, tangents, *, shape, layout, transpose):
    p = _pattern(*primals[:3], shape, layout)
    return _bilinear_jvp(lambda x, y: mm(p, x, y, transpose), primals[3:], tangents[3:])


def _mm_transpose(ct, rows, cols, crow, values, B, *, shape, layout, transpose):
    p = _pattern(rows, cols, crow, shape, layout)
    if ad.is_undefined_primal(values) == ad.is_undefined_primal(B):
        raise NotImplementedError("mm is bilinear: transpose it in values or in B, not both")
    if ad.is_undefined_primal(B):
        dB = _zero(B) if type(ct) is ad.Zero else mm(p, values, ct, not transpose)
        return None, None, None, None, dB
    if type(ct) is ad.Zero:
        return None, None, None, _zero(values), None
    return None, None, None, (sddmm(p, B, ct) if transpose else sddmm(p, ct, B)), None


def _mm_batch(args, dims, *, shape, layout, transpose):
    *matrix, B = args
    *matrix_dims, b_dim = dims
    params = dict(shape=shape, layout=layout, transpose=transpose)
    if all(d is None for d in matrix_dims):  # one matrix, many B: the batch becomes columns
        B = jnp.moveaxis(B, b_dim, -1)
        M, k, size = B.shape
        Y = mm(_pattern(*matrix[:3], shape, layout), matrix[3], B.reshape(M, k * size), transpose)
        return Y.reshape(Y.shape[0], k, size), 2
    return _per_item(partial(_mm_p.bind, **params), args, dims)


_mm_p = _primitive(
    "sparsegradutils_pattern_mm", _mm_impl, _mm_abstract, _mm_jvp, _mm_transpose, _mm_batch
)


# --------------------------------------------------------------------------------- sddmm
def _sddmm_impl(rows, cols, crow, G, X, *, shape, layout):
    return _pattern(rows, cols, crow, shape, layout).sddmm(G, X)


def _sddmm_abstract(rows, cols, crow, G, X, *, shape, layout):
    return G.update(shape=(cols.shape[0],), weak_type=False)


def sddmm(pattern: Pattern, G: jax.Array, X: jax.Array) -> jax.Array:
    """Flat values ``(nnz,)`` of ``G @ X^T`` at the pattern (``G (N, p)``, ``X (M, p)``)."""
    G = _vary(G, (pattern.rows, pattern.col, pattern.crow, X))
    return _sddmm_p.bind(pattern.rows, pattern.col, pattern.crow, G, X, shape=pattern.shape,
                         layout=pattern.layout)


def _sddmm_jvp(primals, tangents, *, shape, layout):
    p = _pattern(*primals[:3], shape, layout)
    return _bilinear_jvp(lambda x, y: sddmm(p, x, y), primals[3:], tangents[3:])


def _sddmm_transpose(ct, rows, cols, crow, G, X, *, shape, layout):
    p = _pattern(rows, cols, crow, shape, layout)
    if ad.is_undefined_primal(G) == ad.is_undefined_primal(X):
        raise NotImplementedError("sddmm is bilinear: transpose it in G or in X, not both")
    if ad.is_undefined_primal(G):
        dG = _zero(G) if type(ct) is ad.Zero else mm(p, ct, X)
        return None, None, None, dG, None
    dX = _zero(X) if type(ct) is ad.Zero else mm(p, ct, G, transpose=True)
    return None, None, None, None, dX


def _sddmm_batch(args, dims, *, shape, layout):
    return _per_item(partial(_sddmm_p.bind, shape=shape, layout=layout), args, dims)


_sddmm_p = _primitive(
    "sparsegradutils_sddmm", _sddmm_impl, _sddmm_abstract, _sddmm_jvp, _sddmm_transpose,
    _sddmm_batch,
)


# -------------------------------------------------------------------------- linear solve
def linear_solve(pattern: Pattern, values: jax.Array, B: jax.Array, solve, transpose_solve, *,
                 transposed: bool = False, args: Any = None) -> tuple[jax.Array, Any]:
    """``op(A)^{-1} B`` for flat ``B (N, p)``, differentiable to any order in values and B.

    ``solve(pattern, values, B, args) -> (X, aux)`` solves with ``op(A)`` (``A^T`` if
    ``transposed``), ``transpose_solve`` with its transpose; neither is differentiated (the
    derivative is implicit: ``dX = op(A)^{-1} (dB - op(dA) X)``, and its transpose a
    ``transpose_solve``). ``args`` (initial guesses, tolerances) pass through undifferentiated.
    """
    matvec = lambda x: mm(pattern, values, x, transposed)
    return jax.lax.custom_linear_solve(
        matvec, B,
        lambda _, b: solve(pattern, values, b, args),
        lambda _, b: transpose_solve(pattern, values, b, args),
        has_aux=True,
    )
