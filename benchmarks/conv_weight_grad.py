"""XLA:CPU convolution weight gradients in one piece vs summed over batch slices, side by side.

    python benchmarks/conv_weight_grad.py

This is the measurement behind `mer_jax.models.fast_ops.WEIGHT_GRAD_CHUNK`, and
behind `fast_ops.conv_pooling_windows`: the xia2020_code stem (5x5, 3 -> 16, batch
64, 60x60, then 2x2 max pooling) as XLA's convolution against window by window;
mer_jax/speed/platform.py turns both on for CPU (`Tuning.sliced_weight_grad`,
`Tuning.windowed_stem`).
Each time is the best of several runs: wall milliseconds, and CPU milliseconds
(all threads), which is what counts when every core is busy with its own fold
(`train.concurrent_folds`).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from mer_jax.models import fast_ops

# (name, input NHWC, kernel HWIO, stride, padding): the convolutions of the RCN family at batch 64.
CASES = (
    ("xia2020_code stem 5x5", (64, 60, 60, 3), (5, 5, 3, 16), 1, 0),
    ("xia2020_code recurrent 3x3", (64, 28, 28, 16), (3, 3, 16, 16), 1, 1),
    ("paper stem 3x3 stride 3", (64, 60, 60, 3), (3, 3, 3, 16), 3, 1),
    ("paper recurrent 3x3", (64, 20, 20, 16), (3, 3, 16, 16), 1, 1),
)


def seconds(fn, *args, repeats: int = 4, rounds: int = 10) -> tuple[float, float]:
    """(wall, CPU) seconds per call, each the best of `rounds` rounds of `repeats` calls."""
    jax.block_until_ready(fn(*args))
    wall, cpu = [], []
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            out = fn(*args)
        jax.block_until_ready(out)
        wall.append((time.perf_counter() - start) / repeats)
        cpu.append((time.process_time() - start_cpu) / repeats)
    return min(wall), min(cpu)


def ms(timing: tuple[float, float]) -> str:
    return f"{timing[0] * 1e3:6.1f} ms (CPU {timing[1] * 1e3:5.1f})"


def main() -> None:
    print(f"backend {jax.default_backend()}, slices of {fast_ops.WEIGHT_GRAD_CHUNK} examples")
    for name, x_shape, w_shape, stride, pad in CASES:
        x = jax.random.normal(jax.random.PRNGKey(0), x_shape)
        w = jax.random.normal(jax.random.PRNGKey(1), w_shape)
        args = ((stride, stride), ((pad, pad), (pad, pad)))
        kwargs = {"dimension_numbers": ("NHWC", "HWIO", "NHWC")}

        def weight_grad(conv):
            return jax.jit(jax.grad(lambda w, x: jnp.sum(conv(x, w, *args, **kwargs) ** 2)))

        whole = seconds(weight_grad(jax.lax.conv_general_dilated), w, x)
        sliced = seconds(weight_grad(fast_ops.conv_sliced_weight_grad), w, x)
        print(f"{name:28s} one piece {ms(whole)}   sliced {ms(sliced)}   ratio {whole[0] / sliced[0]:4.1f}x")

    x = jax.random.normal(jax.random.PRNGKey(0), (64, 60, 60, 3))
    w = jax.random.normal(jax.random.PRNGKey(1), (5, 5, 3, 16))
    numbers = ("NHWC", "HWIO", "NHWC")

    def direct(w, x):  # the conv cut into its 2x2 pooling windows, as conv_pooling_windows returns it
        z = fast_ops.conv_sliced_weight_grad(x, w, (1, 1), ((0, 0), (0, 0)), dimension_numbers=numbers)
        return z.reshape(64, 28, 2, 28, 2, 16).transpose(0, 1, 3, 2, 4, 5).reshape(64, 28, 28, 4, 16)

    def windowed(w, x):
        return fast_ops.conv_pooling_windows(x, w, None, (2, 2))

    def with_weight_grad(f):
        return jax.jit(jax.grad(lambda w, x: jnp.sum(f(w, x) ** 2)))

    for what, wrap in (("forward", jax.jit), ("+ weight gradient", with_weight_grad)):
        a, b = seconds(wrap(direct), w, x), seconds(wrap(windowed), w, x)
        print(f"stem 5x5 + pool {what:17s} XLA conv {ms(a)}   window by window {ms(b)}   CPU ratio {a[1] / b[1]:4.1f}x")


if __name__ == "__main__":
    main()
