"""`mer-jax describe`: a model's layer table, trainable parameter count and forward FLOPs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from mer_jax.models import count_params, create_model


def build(config: ml_collections.ConfigDict) -> nnx.Module:
    return create_model(
        config.model,
        num_classes=config.data.num_classes,
        input_shape=tuple(config.data.input_shape),
        rngs=nnx.Rngs(config.train.seed),
    )


def forward_flops(model: nnx.Module, input_shape) -> int:
    """FLOPs of one example's forward pass in eval mode, as XLA's cost analysis counts them (a multiply-add is 2)."""
    graphdef, state = nnx.split(model)
    x = jnp.zeros((1, *input_shape), jnp.float32)
    cost = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x)).lower(state, x).compile().cost_analysis()
    if isinstance(cost, list):
        cost = cost[0]
    return int(cost["flops"])


def describe(config: ml_collections.ConfigDict) -> str:
    model = build(config)
    shape = tuple(config.data.input_shape)
    table = nnx.tabulate(
        model, jnp.zeros((1, *shape), jnp.float32), depth=2,
        console_kwargs={"width": 160, "force_terminal": False, "no_color": True},
    )
    title = f"{config.model.name} ({config.model.get('variant', 'paper')}), input {shape}, {config.data.num_classes} classes"
    return f"{title}\n{table}\nparams: {count_params(model)}\nflops: {forward_flops(model, shape)}\n"
