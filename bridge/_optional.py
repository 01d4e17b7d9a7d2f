"""Optional backends, imported when first used, with an error naming the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

_EXTRAS = {"jax": "jax", "jaxlib": "jax", "equinox": "jax", "cupy": "cupy", "cupyx": "cupy"}


def require(module: str) -> ModuleType:
    """Import ``module`` (e.g. ``"jax.numpy"``), or raise ImportError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRAS.get(top, top)
        raise ImportError(
            f"{module!r} is needed for this operation but could not be imported ({exc}). "
            f"Install it with: pip install 'sparsegradutils[{extra}]'"
        ) from exc


def loaded(module: str) -> ModuleType | None:
    """The module if it is already imported (never imports it): for cheap type checks."""
    import sys

    return sys.modules.get(module)
