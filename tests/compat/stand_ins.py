"""Stand-ins for the original's private names that its test files import at module level.

torch_api has no such names (they are the original's internals), yet an import failing at the
top of a test file would lose every public-behaviour test in it. The shim gives the importing
module these stand-ins instead: a reference implementation where a public-behaviour test uses
the name as a tool (``_sort_coo_indices``, to compare index sets), and a placeholder that
refuses to run where only tests of that helper use it (they are deselected, see
``deselected.py``). Keys are the original's module paths.
"""

from __future__ import annotations

import numpy as np
import torch


def _sort_coo_indices(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``indices (d, nnz)`` sorted lexicographically (first row first) and the permutation."""
    keys = indices.cpu().numpy()[::-1]  # np.lexsort sorts by its last key first
    perm = torch.from_numpy(np.lexsort(keys)).to(indices.device)
    return indices[:, perm], perm


def _placeholder(qualname: str):
    def refuse(*args, **kwargs):
        raise NotImplementedError(
            f"{qualname} is a private helper of torchsparsegradutils with no torch_api "
            "equivalent; the tests of it are deselected (tests/compat/deselected.py)"
        )

    refuse.__name__ = qualname.rpartition(".")[2]
    return refuse


def _placeholders(module: str, *names: str) -> dict:
    return {name: _placeholder(f"{module}.{name}") for name in names}


STAND_INS: dict[str, dict[str, object]] = {
    "torchsparsegradutils._compat": _placeholders(
        "torchsparsegradutils._compat", "linalg_solve_triangular_compat"
    ),
    "torchsparsegradutils.distributions.sparse_multivariate_normal": _placeholders(
        "torchsparsegradutils.distributions.sparse_multivariate_normal", "_batch_sparse_mv"
    ),
    "torchsparsegradutils.sparse_logsumexp": _placeholders(
        "torchsparsegradutils.sparse_logsumexp", "_bidir_2d", "_bidir_batched"
    ),
    "torchsparsegradutils.encoders.pairwise_encoder": _placeholders(
        "torchsparsegradutils.encoders.pairwise_encoder",
        "_gen_coords", "_gen_coords_nd", "_gen_offsets", "_gen_offsets_nd", "_trim_nd",
    ),
    "torchsparsegradutils.utils.utils": {
        **_placeholders(
            "torchsparsegradutils.utils.utils", "_compress_row_indices", "_demcompress_crow_indices"
        ),
        "_sort_coo_indices": _sort_coo_indices,
    },
}
