"""Pure preprocessing functions on numpy/jax arrays (docs/design.md, Preprocessing)."""

from mer_jax.data.preprocess.strain import flow_map, optical_strain

__all__ = ["flow_map", "optical_strain"]
