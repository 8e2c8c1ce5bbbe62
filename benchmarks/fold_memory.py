"""Device memory of one fold's training step, per model config, from XLA's memory analysis of the compiled step.

    python benchmarks/fold_memory.py

For each config: the model at the config's batch size, one SGD step (forward,
backward, update) compiled for the current backend; prints the parameters and
XLA's argument, output and temporary bytes. A fold group of `train.fold_chunk`
folds under `vmap` needs about chunk x this, plus the data set itself once
(docs/scale.md).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from mer_jax.config import sibling_config
from mer_jax.models import count_params, create_model

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RUNS = ("rcn_megc2019", "rcn_xia2020_code", "strcn_g", "strcn_a")


def step_memory(name: str) -> tuple[int, dict[str, int]]:
    config = sibling_config(str(CONFIGS / f"{name}.py"), name)
    model = create_model(config.model, num_classes=config.data.num_classes,
                         input_shape=tuple(config.data.input_shape), rngs=nnx.Rngs(0))
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    optimizer = optax.sgd(1e-3, momentum=0.9)
    opt = optimizer.init(params)
    x = jnp.zeros((config.train.batch_size, *config.data.input_shape), jnp.float32)
    labels = jnp.zeros((config.train.batch_size,), jnp.int32)

    def step(params, stats, opt, x, labels):
        def loss(params):
            m = nnx.merge(graphdef, params, stats, copy=True)
            logits = m(x, train=True, rngs=nnx.Rngs(dropout=0))
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        grads = jax.grad(loss)(params)
        updates, opt = optimizer.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt

    analysis = jax.jit(step).lower(params, stats, opt, x, labels).compile().memory_analysis()
    sizes = {
        "arguments": analysis.argument_size_in_bytes,
        "outputs": analysis.output_size_in_bytes,
        "temporaries": analysis.temp_size_in_bytes,
    }
    return count_params(model), sizes


def main() -> None:
    print(f"backend: {jax.default_backend()}")
    for name in RUNS:
        params, sizes = step_memory(name)
        total = sum(sizes.values())
        print(f"{name}: {params} parameters; " + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sizes.items())
              + f"; total {total / 2**20:.1f} MiB per fold")


if __name__ == "__main__":
    main()
