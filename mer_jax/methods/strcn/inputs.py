"""How STRCN reads its builds: STRCN-A's heat-map mask (Xia et al., TMM 2019, eq. 4) on `strcn_a` builds.

`data.mask` 'paper' gives each clip's d2 x T x C matrix of the `data.top_p` pixels of the heat map of every
clip read (the paper's "on entire datasets"); 'per_fold' keeps the frames and each clip's heat term in
``extra['heat']``, and :func:`training_inputs` masks one copy of the clips per fold by the heat of the clips
it trains on (mer_jax/methods/strcn/heat_mask.py). Other builds (`flow_strcn_g`) are read as they are.
"""

from __future__ import annotations

from typing import Any

from mer_jax.core.dataset import Dataset
from mer_jax.data import builds
from mer_jax.methods.strcn import heat_mask
from mer_jax.methods.strcn.heat_mask import training_inputs

__all__ = ["load", "training_inputs"]


def load(data: Any) -> Dataset:
    """The data set `data.name` as STRCN reads it (`data` as :func:`mer_jax.data.builds.load`, with `mask`
    and `top_p` for `strcn_a` builds)."""
    name = data.get("name", None)
    is_built = isinstance(name, str) and "/" in name
    kind = (builds.build_metadata(name, data.get("data_dir", "")).get("variant") or {}).get("kind") if is_built else None
    if kind != "appearance":
        return builds.load(data)
    mask = data.get("mask", "paper")
    if mask not in heat_mask.MASKS:
        raise ValueError(f"unknown data.mask {mask!r}; valid: {heat_mask.MASKS}")
    loaded = builds.load(data, clip_extra=lambda stored, alphas: {heat_mask.HEAT: heat_mask.clip_heat(stored, alphas)})
    return heat_mask.paper(loaded, data.get("top_p", 0.30)) if mask == "paper" else loaded
