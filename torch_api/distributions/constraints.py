"""``torchsparsegradutils.distributions.constraints``: the module path only (0.2.7 defines no
public names in it)."""

__all__: list[str] = []
