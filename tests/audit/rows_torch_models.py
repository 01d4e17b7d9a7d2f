"""Audit rows of torch_api.distributions and torch_api.encoders."""

from __future__ import annotations

import numpy as np
import torch

from tests.references import pairwise_dense

from .inputs import F64, coo_out_of_range, mat, sp, with_nan
from .table import TE, VE, Call, Result, Row, assert_same, c, equals, err, propagates


def rows() -> list[Row]:
    """Rows of torch_api.distributions and torch_api.encoders."""
    from torch_api.distributions import SparseMultivariateNormal as MVN
    from torch_api.distributions import SparseMultivariateNormalNative as Native
    from torch_api.encoders import PairwiseEncoder, pairwise_indices, pairwise_offsets

    out: list[Row] = []
    L = mat("lower")
    loc = torch.zeros(3, dtype=F64)

    def mvn(loc_=None, **kw):
        return c(MVN, loc.clone() if loc_ is None else loc_, **kw)

    def log_density(**kw):
        return MVN(loc.clone(), **kw).log_prob(loc)

    def used(**kw):
        return c(log_density, **kw)

    t = "torch_api.distributions.SparseMultivariateNormal"
    out += [
        Row(t, "neither scale_tril nor precision_tril", lambda: mvn(),
            err(VE, "scale_tril, precision_tril", "exactly one")),
        Row(t, "both factors", lambda: mvn(scale_tril=sp(L), precision_tril=sp(L)),
            err(VE, "scale_tril, precision_tril", "exactly one")),
        Row(t, "loc is a list", lambda: mvn(loc.tolist(), scale_tril=sp(L)),
            err(TE, "loc", "torch.Tensor")),
        Row(t, "loc has int64 values", lambda: mvn(loc.long(), scale_tril=sp(L)),
            err(VE, "loc", "float32 or")),
        Row(t, "loc float32, scale_tril float64", lambda: mvn(loc.float(), scale_tril=sp(L)),
            err(VE, "scale_tril", "dtype torch.float32 to match loc")),
        Row(t, "scale_tril is dense", lambda: mvn(scale_tril=L), err(TE, "scale_tril", "sparse")),
        Row(t, "scale_tril is CSC", lambda: mvn(scale_tril=sp(L, "csc")),
            err(TE, "scale_tril", "CSC")),
        Row(t, "scale_tril on the meta device", lambda: mvn(scale_tril=sp(L).to("meta")),
            err(VE, "scale_tril", "device")),
        Row(t, "scale_tril of another size", lambda: mvn(scale_tril=sp(torch.eye(2, dtype=F64))),
            err(VE, "scale_tril", "event size 3")),
        # structure is checked at first use under default validation (the original's README
        # builds such a factor before sampling), so these rows use the distribution
        Row(t, "scale_tril not lower triangular", lambda: used(scale_tril=sp(mat("spd"))),
            err(VE, "scale_tril", "expected a factor satisfying")),
        Row(t, "scale_tril with a negative diagonal entry", lambda: used(scale_tril=sp(-L)),
            err(VE, "scale_tril", "expected a factor satisfying")),
        Row(t, "precision_tril with a missing diagonal entry",
            lambda: used(precision_tril=sp(with_nan(L, (1, 1), 0.0))),
                err(VE, "precision_tril", "expected a factor satisfying")),
        Row(t, "LDL^T: diagonal negative",
            lambda: mvn(diagonal=-torch.ones(3, dtype=F64), scale_tril=sp(mat("strict"))),
            err(VE, "diagonal", "constraint")),
        Row(t, "LDL^T: diagonal of another size",
            lambda: mvn(diagonal=torch.ones(2, dtype=F64), scale_tril=sp(mat("strict"))),
            err(VE, "diagonal", "event size 3")),
        Row(t, "loc has a NaN", lambda: mvn(with_nan(loc, 0), scale_tril=sp(L)),
            err(VE, "loc", "constraint")),
        Row(t, "scale_tril: COO index out of range",
            lambda: mvn(scale_tril=coo_out_of_range(L, 0, 5)),
            err(VE, "scale_tril", "indices"), isolate=True),
    ]

    def log_prob(value):
        d = MVN(loc.clone(), scale_tril=sp(L))
        return Call(d.log_prob, (value,), watch=(d.loc, d.scale_tril))

    def mvn_ref(call):
        return torch.distributions.MultivariateNormal(loc,
                                                      scale_tril=L).log_prob(call.args[0].to(F64))

    t = "torch_api.distributions.SparseMultivariateNormal.log_prob"
    out += [
        Row(t, "value is a list", lambda: log_prob([0.0, 0.0, 0.0]), err(VE, "value", "Tensor")),
        Row(t, "value of another event size", lambda: log_prob(torch.zeros(4, dtype=F64)),
            err(VE, "value", "event_shape")),
        Row(t, "value has a NaN", lambda: log_prob(with_nan(torch.zeros(3, dtype=F64), 0)),
            err(VE, "value", "support")),
        Row(t, "value float32 (distribution float64)", lambda: log_prob(torch.ones(3)),
            equals(mvn_ref,
                   "correct result (value promoted to float64, as torch's MultivariateNormal)")),
    ]

    t = "torch_api.distributions.SparseMultivariateNormalNative"
    out += [
        Row(t, "loc 2-D", lambda: c(Native, loc[None].clone(), sp(L)), err(VE, "loc", "1-D")),
        Row(t, "scale_tril is COO", lambda: c(Native, loc.clone(), sp(L, "coo")),
            err(TE, "scale_tril", "CSR")),
        Row(t, "scale_tril of another size",
            lambda: c(Native, loc.clone(), sp(torch.eye(2, dtype=F64))),
            err(VE, "scale_tril", "match loc")),
        Row(t, "scale_tril not lower triangular", lambda: c(Native, loc.clone(), sp(mat("spd"))),
            err(VE, "scale_tril", "constraint")),
        Row(t, "scale_tril float32, loc float64", lambda: c(Native, loc.clone(), sp(L.float())),
            err(VE, "scale_tril", "dtype")),
    ]

    t = "torch_api.encoders.PairwiseEncoder"
    PE = PairwiseEncoder
    out += [
        Row(t, "radius 0", lambda: c(PE, 0, (1, 3)), err(VE, "radius", ">= 1")),
        Row(t, "radius is a string", lambda: c(PE, "1", (1, 3)), err(VE, "radius", ">= 1")),
        Row(t, "volume_shape without a spatial dimension", lambda: c(PE, 1, (3,)),
            err(VE, "volume_shape", "at least 2")),
        Row(t, "volume_shape with a zero", lambda: c(PE, 1, (1, 0)),
            err(VE, "volume_shape", "positive")),
        Row(t, "channel_voxel_relation unknown",
            lambda: c(PE, 1, (2, 3), channel_voxel_relation="all"),
            err(VE, "channel_voxel_relation", "one of")),
        Row(t, "channel_voxel_relation 'intra' with C = 1",
            lambda: c(PE, 1, (1, 3), channel_voxel_relation="intra"),
            err(VE, "channel_voxel_relation", "more than one channel")),
        Row(t, "layout CSC", lambda: c(PE, 1, (1, 3), layout=torch.sparse_csc),
            err(VE, "layout", "sparse_coo")),
        Row(t, "indices_dtype float", lambda: c(PE, 1, (1, 3), indices_dtype=torch.float32),
            err(VE, "indices_dtype", "int32 or")),
        Row(t, "upper is a string", lambda: c(PE, 1, (1, 3), upper="x"),
            err(VE, "upper", "True, False or None")),
        Row(t, "int32 indices for 2^32 voxels",
            lambda: c(PE, 1, (1, 2**16, 2**16), indices_dtype=torch.int32),
            err(VE, "indices_dtype", "int64 for a volume of")),
    ]

    def forward(values, layout=torch.sparse_csr, shape=(2, 2, 3)):
        enc = PE(1, shape, diag=True, layout=layout, channel_voxel_relation="intra")
        return Call(enc, (values,), watch=tuple(enc.buffers()))

    K = len(pairwise_offsets(1, 2, 2, "intra", None, True))
    vals = torch.arange(K * 12, dtype=F64).reshape(K, 2, 2, 3) / 10

    def enc_ref(call):
        return pairwise_dense(call.args[0], (2, 2, 3), call.fn.offsets)

    t = "torch_api.encoders.PairwiseEncoder.forward"
    out += [
        Row(t, "values is a list", lambda: forward([1.0]), err(TE, "values", "torch.Tensor")),
        Row(t, "values of the wrong shape", lambda: forward(vals[:, :1].clone()),
            err(VE, "values", r"len\(offsets\)")),
        Row(t, "values has int64 entries", lambda: forward(vals.long()),
            err(VE, "values", "float32 or")),
        Row(t, "values on the meta device", lambda: forward(vals.to("meta")),
            err(VE, "values", "device")),
        Row(t, "values has NaN and inf",
            lambda: forward(with_nan(with_nan(vals, (0, 1, 1, 2)), (3, 0, 1, 0), float("inf"))),
            propagates(enc_ref,
                       "NaN/inf land in their own entries only (entry-by-entry reference)")),
        Row(t, "values has NaN (COO layout)",
            lambda: forward(with_nan(vals, (2, 0, 0, 1)), torch.sparse_coo),
            propagates(enc_ref, "NaN lands in its own entry only (entry-by-entry reference)")),
    ]

    t = "torch_api.encoders.pairwise_offsets"
    out += [
        Row(t, "radius 0.5", lambda: c(pairwise_offsets, 0.5, 1), err(VE, "radius", ">= 1")),
        Row(t, "spatial_dims 0", lambda: c(pairwise_offsets, 1, 0),
            err(VE, "spatial_dims", ">= 1")),
        Row(t, "relation unknown", lambda: c(pairwise_offsets, 1, 1, 2, "all"),
            err(VE, "channel_voxel_relation", "one of")),
        Row(t, "relation 'inter' with one channel", lambda: c(pairwise_offsets, 1, 1, 1, "inter"),
            err(VE, "channel_voxel_relation", "more than one channel")),
    ]
    t = "torch_api.encoders.pairwise_indices"
    out += [
        Row(t, "an offset of the wrong length", lambda: c(pairwise_indices, (1, 3), [(0, 1, 1)]),
            err(VE, "offsets", "length 2")),
        Row(t, "volume_shape is a string", lambda: c(pairwise_indices, "ab", [(0, 1)]),
            err(VE, "volume_shape", "positive integers")),
        Row(t, "no offsets", lambda: c(pairwise_indices, (1, 3), []),
            Result(lambda out_, call: assert_same(out_.crow, np.zeros(4, dtype=np.int64)),
                   "correct empty result (no entries)")),
    ]
    return out


