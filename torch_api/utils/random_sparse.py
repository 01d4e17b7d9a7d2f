"""Public names of ``torchsparsegradutils.utils.random_sparse``.

Kept importable under that path: every public name of :mod:`torch_api._random` (also
re-exported by ``torch_api.utils``).
"""

from .._random import *  # noqa: F403
from .._random import __all__  # noqa: F401
