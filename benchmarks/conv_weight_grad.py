"""XLA:CPU convolution weight gradients in one piece vs summed over batch slices, side by side.

    python benchmarks/conv_weight_grad.py

This is the measurement behind `mer_jax.models.layers.WEIGHT_GRAD_CHUNK`.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from mer_jax.models import layers

# (name, input NHWC, kernel HWIO, stride, padding): the convolutions of the RCN family at batch 64.
CASES = (
    ("xia2020_code stem 5x5", (64, 60, 60, 3), (5, 5, 3, 16), 1, 0),
    ("xia2020_code recurrent 3x3", (64, 28, 28, 16), (3, 3, 16, 16), 1, 1),
    ("paper stem 3x3 stride 3", (64, 60, 60, 3), (3, 3, 3, 16), 3, 1),
    ("paper recurrent 3x3", (64, 20, 20, 16), (3, 3, 16, 16), 1, 1),
)


def seconds(fn, *args, repeats: int = 20) -> float:
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    print(f"backend {jax.default_backend()}, slices of {layers.WEIGHT_GRAD_CHUNK} examples")
    for name, x_shape, w_shape, stride, pad in CASES:
        x = jax.random.normal(jax.random.PRNGKey(0), x_shape)
        w = jax.random.normal(jax.random.PRNGKey(1), w_shape)
        args = ((stride, stride), ((pad, pad), (pad, pad)))
        kwargs = {"dimension_numbers": ("NHWC", "HWIO", "NHWC")}

        def weight_grad(conv):
            return jax.jit(jax.grad(lambda w, x: jnp.sum(conv(x, w, *args, **kwargs) ** 2)))

        whole = seconds(weight_grad(jax.lax.conv_general_dilated), w, x)
        sliced = seconds(weight_grad(layers.conv_general_dilated), w, x)
        print(f"{name:28s} one piece {whole * 1e3:6.1f} ms   sliced {sliced * 1e3:6.1f} ms   ratio {whole / sliced:4.1f}x")


if __name__ == "__main__":
    main()
