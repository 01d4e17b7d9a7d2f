"""Optional backends, imported when first used, with an error naming the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

_EXTRAS = {"jax": "jax", "jaxlib": "jax", "equinox": "jax", "cupy": "cupy", "cupyx": "cupy"}
# what each extra installs, for users who add the packages themselves (the project is not on PyPI)
_PACKAGES = {
    "jax": "'jax>=0.7' 'jaxlib>=0.7' 'equinox>=0.11'",
    "cupy": "cupy-cuda13x (CUDA 13) or cupy-cuda12x (CUDA 12)",
}


def require(module: str) -> ModuleType:
    """Import ``module`` (e.g. ``"jax.numpy"``), or raise ImportError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRAS.get(top, top)
        raise ImportError(
            f"{module!r} is needed for this operation but could not be imported ({exc}). "
            f"Install the extra sparsegradutils[{extra}]: pip install '.[{extra}]' in a "
            f"checkout of sparsegradutils, or pip install {_PACKAGES.get(extra, extra)}"
        ) from exc


def loaded(module: str) -> ModuleType | None:
    """The module if it is already imported (never imports it): for cheap type checks."""
    import sys

    return sys.modules.get(module)
