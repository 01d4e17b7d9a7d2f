"""The framework-neutral core shared by ``torch_api`` and ``jax_api``.

Like ``equinox.internal`` for lineax, this is a namespace the project's own frontends import
instead of reaching into each other's private modules. It holds what is neither torch nor JAX:
NumPy index builders and structure checks, the convergence policy, the error-message template
and validators of plain Python options. Nothing here imports torch, JAX or CuPy at import
time. Import the submodules directly (``from bridge.internal.messages import describe``); the
names are stable within the project but not part of the public API.
"""
