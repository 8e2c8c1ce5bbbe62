"""Model registry: `create_model(config.model, ...)` builds any model by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
from flax import nnx

from mer_jax.models.rcn import MODULES, RCN, VARIANTS
from mer_jax.models.strcn import STRCN

STRCN_CONNECTIVITY = {"strcn_a": "appearance", "strcn_g": "geometric"}
MODEL_NAMES = tuple(MODULES) + tuple(STRCN_CONNECTIVITY)


def create_model(
    config: Mapping[str, Any], *, num_classes: int, input_shape: Sequence[int], rngs: nnx.Rngs
) -> nnx.Module:
    """Builds the model `config.name` for inputs of `input_shape` = (H, W, C).

    Reads `name`, `variant`, `features` (M), `pool_size` (K), `recurrent_steps`,
    `dropout` and, for STRCN, `num_rcls`.
    """
    name = config["name"]
    variant = config.get("variant", "paper")
    if variant not in VARIANTS:
        raise ValueError(f"unknown model.variant {variant!r}; valid: {VARIANTS}")
    in_features = int(input_shape[-1])
    if name in MODULES:
        return RCN(
            num_classes=num_classes,
            in_features=in_features,
            features=config["features"],
            pool_size=config["pool_size"],
            recurrent_steps=config["recurrent_steps"],
            modules=MODULES[name],
            variant=variant,
            dropout=config.get("dropout", 0.5),
            rngs=rngs,
        )
    if name in STRCN_CONNECTIVITY:
        if variant != "paper":
            raise ValueError(f"{name} has only the 'paper' variant (no released code), got {variant!r}")
        return STRCN(
            num_classes=num_classes,
            connectivity=STRCN_CONNECTIVITY[name],
            in_features=in_features,
            features=config["features"],
            num_rcls=config.get("num_rcls", 4),
            recurrent_steps=config["recurrent_steps"],
            dropout=config.get("dropout", 0.0),
            rngs=rngs,
        )
    raise ValueError(f"unknown model.name {name!r}; valid: {', '.join(MODEL_NAMES)}")


def count_params(model: nnx.Module) -> int:
    """Trainable parameters: weights, biases and BatchNorm scale/bias; running statistics excluded."""
    return sum(int(leaf.size) for leaf in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param)))
