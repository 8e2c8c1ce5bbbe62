"""`mer-jax describe`: a model's layer table, trainable parameter count and forward FLOPs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from mer_jax import method
from mer_jax.core.stages import is_staged
from mer_jax.models import count_params, create_model


def forward_flops(model: nnx.Module, input_shape) -> int:
    """FLOPs of one example's forward pass in eval mode, as XLA's cost analysis counts them (a multiply-add is 2).

    `model` may be abstract (`nnx.eval_shape`): only its shapes are compiled against, nothing runs.
    """
    graphdef, state = nnx.split(model)
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    cost = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x)).lower(state, x).compile().cost_analysis()
    if isinstance(cost, list):
        cost = cost[0]
    return int(cost["flops"])


def describe_model(
    model_config: ml_collections.ConfigDict, *, num_classes: int, input_shape, seed: int = 0, depth: int = 2
) -> str:
    """The layer table, `params: N` and `flops: N` of the model `model_config` (a config's `model`) for `input_shape`.

    `depth` levels of submodules are tabulated (a layer inside an `nnx.List`,
    e.g. a region CNN's dense layers in `roi_cnn`, is one level deeper).
    """
    shape = tuple(input_shape)
    found = {}

    def tabulate():
        # Traced, never run (jax.eval_shape): the weights are not initialised and the layers not executed,
        # which for a paper-size model (TLCNN's 80M-parameter frame CNN on 32 frames) takes most of a minute.
        model = create_model(model_config, num_classes=num_classes, input_shape=shape, rngs=nnx.Rngs(seed))
        found["table"] = nnx.tabulate(
            model, jnp.zeros((1, *shape), jnp.float32), depth=depth,
            console_kwargs={"width": 160, "force_terminal": False, "no_color": True},
        )
        found["parts"] = ", ".join(
            f"{name} {count_params(part)}" for name, part in vars(model).items() if isinstance(part, nnx.Module)
        )  # in the order the model defines its layers (an `nnx.eval_shape` model lists them sorted)

    jax.eval_shape(tabulate)
    model = nnx.eval_shape(
        lambda: create_model(model_config, num_classes=num_classes, input_shape=shape, rngs=nnx.Rngs(seed))
    )
    title = f"{model_config.name} ({model_config.get('variant', 'paper')}), input {shape}, {num_classes} classes"
    return (
        f"{title}\n{found['table']}\nparams: {count_params(model)}\nparams by layer: {found['parts']}\n"
        f"flops: {forward_flops(model, shape)}\n"
    )


def describe(config: ml_collections.ConfigDict) -> str:
    """`mer-jax describe` of an experiment config: its `model` for its data's input shape and classes, or
    each stage's model of a staged config (mer_jax/methods/) and the parameters of all stages together."""
    if not is_staged(config):
        return describe_model(
            config.model, num_classes=config.data.num_classes, input_shape=config.data.input_shape,
            seed=config.train.seed,
        )
    parts, total = [], 0
    staged = method.staged_method(config)
    for stage in staged.STAGES:
        model, shape = config.stages[stage].model, staged.stage_input_shape(config, stage)
        num_classes = staged.stage_classes(config, stage)
        parts.append(f"stage {stage}: " + describe_model(
            model, num_classes=num_classes, input_shape=shape, seed=config.train.seed, depth=3
        ))
        total += count_params(nnx.eval_shape(
            lambda: create_model(model, num_classes=num_classes, input_shape=shape, rngs=nnx.Rngs(0))
        ))
    return "\n".join(parts) + f"\nall stages: params: {total}\n"
