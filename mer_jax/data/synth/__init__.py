"""Synthetic micro-expression datasets written in the real datasets' on-disk layouts (docs/design.md, Data).

Real face photographs shipped inside packages (:mod:`~mer_jax.data.synth.photos`)
become one identity per subject (:mod:`~mer_jax.data.synth.identities`); each clip
animates a subtle, brief, action-unit-like motion placed by the face's own
landmarks, with head drift and sensor noise (:mod:`~mer_jax.data.synth.motion`,
:mod:`~mer_jax.data.synth.render`, at the sizes and noise of
:mod:`~mer_jax.data.synth.cameras`); the clips and coding sheets are laid out as
CASME II, SAMM and SMIC ship them (the layouts the builders read,
:mod:`mer_jax.data.clips.layouts`; :mod:`~mer_jax.data.synth.sheets`), with the
MEGC2019 composite's subjects and class counts (:mod:`~mer_jax.data.synth.plan`),
and the true onset -> apex flow of every clip is saved beside them for tests.

Entry point: :func:`write_synthetic_composite`.
"""

from mer_jax.data.synth.composite import write_synthetic_composite

__all__ = ["write_synthetic_composite"]
