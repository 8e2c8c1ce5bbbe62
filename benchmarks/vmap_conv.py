"""Per-fold convolutions on XLA:CPU: a loop of separate convs against two vmapped formulations.

    python benchmarks/vmap_conv.py [--folds 8]

vmap over per-fold weights turns `lax.conv_general_dilated` into one grouped
convolution; written as shifted slices times a matrix, vmap gives batched
matrix products instead. Prints milliseconds per call for the forward pass and
for the forward pass with both gradients (XLA's own gradients throughout), for
the convolutions of the xia2020_code RCN at batch 64. The measurement behind
`vmap` keeping XLA's convolution (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

# (name, input NHWC, kernel HWIO, padding)
CASES = (("stem 5x5", (64, 60, 60, 3), (5, 5, 3, 16), 0), ("recurrent 3x3", (64, 28, 28, 16), (3, 3, 16, 16), 1))


def xla_conv(x, w, pad):
    padding = ((pad, pad), (pad, pad))
    return jax.lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def sliced_conv(x, w, pad):
    """The same stride-1 conv as the sum over kernel taps of shifted input slices times the kernel."""
    kh, kw, c, o = w.shape
    x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    taps = jnp.concatenate([x[:, ky : ky + oh, kx : kx + ow] for ky in range(kh) for kx in range(kw)], -1)
    return jnp.einsum("bhwk,ko->bhwo", taps, w.reshape(kh * kw * c, o))


def milliseconds(fn, *args, repeats: int = 5, rounds: int = 3) -> float:
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - start) / repeats)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=8)
    folds = parser.parse_args().folds
    print(f"backend {jax.default_backend()}, {folds} folds")
    for name, x_shape, w_shape, pad in CASES:
        x = jax.random.normal(jax.random.PRNGKey(0), (folds, *x_shape))
        w = jax.random.normal(jax.random.PRNGKey(1), (folds, *w_shape))

        def forward(conv, pad=pad):
            return lambda kernel, inputs: conv(inputs, kernel, pad)

        def with_gradients(conv, pad=pad):
            return jax.grad(lambda kernel, inputs: jnp.sum(jnp.sin(conv(inputs, kernel, pad))), argnums=(0, 1))

        for what, make in (("forward", forward), ("+ both gradients", with_gradients)):
            one_fold = jax.jit(make(xla_conv))
            loop = milliseconds(lambda w, x, f=one_fold: [f(w[i], x[i]) for i in range(folds)], w, x)
            grouped = milliseconds(jax.jit(jax.vmap(make(xla_conv))), w, x)
            sliced = milliseconds(jax.jit(jax.vmap(make(sliced_conv))), w, x)
            print(
                f"{name:14s} {what:17s} separate convs {loop:7.1f} ms   vmap grouped {grouped:7.1f} ms   "
                f"vmap sliced {sliced:7.1f} ms"
            )


if __name__ == "__main__":
    main()
