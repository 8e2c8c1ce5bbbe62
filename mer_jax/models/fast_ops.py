"""Formulations of common operations that XLA:CPU runs faster than the obvious ones.

Each computes the same values as the plain composition (tests/test_models.py
checks values and gradients); docs/benchmarks.md has what each saves in the
RCN training step and the command that measures it. Which are used where is
decided by mer_jax/speed/platform.py (the `Tuning`), read by mer_jax/models/layers.py:
- `conv_sliced_weight_grad`: a convolution whose weight gradient is summed
  over batch slices (CPU only);
- `batch_norm_relu_max`: training-mode BatchNorm -> ReLU -> max pooling with a
  hand-written two-pass gradient, and `conv_pooling_windows`: a stride-1
  convolution computed window by window, its output laid out as the pooling
  windows that follow it (together, the windowed stem: CPU only);
- `dropout_mask` and `Dropout`: one random bit per decision at rate 0.5 (every
  backend: the same masks everywhere, mer_jax/speed/platform.py says why).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

# Examples per slice of a convolution's weight gradient: XLA:CPU computed the 5x5 stem's
# weight gradient many times faster as the sum over slices of 16 examples than in one piece
# (benchmarks/conv_weight_grad.py; docs/benchmarks.md, "What the profile showed (CPU)").
WEIGHT_GRAD_CHUNK = 16


def conv_sliced_weight_grad(lhs: jax.Array, rhs: jax.Array, *args, **kwargs) -> jax.Array:
    """`lax.conv_general_dilated` whose weight gradient sums over batch slices of WEIGHT_GRAD_CHUNK.

    The forward pass and the input gradient are XLA's own; the result is the same
    convolution up to float summation order. Batch is axis 0 (NHWC); a batch of
    one slice or less, or not a whole number of slices, gets XLA's own.
    """

    def conv(lhs, rhs):
        return jax.lax.conv_general_dilated(lhs, rhs, *args, **kwargs)

    batch = lhs.shape[0]
    if batch <= WEIGHT_GRAD_CHUNK or batch % WEIGHT_GRAD_CHUNK:
        return conv(lhs, rhs)

    @jax.custom_vjp
    def sliced_weight_grad(lhs, rhs):
        return conv(lhs, rhs)

    def forward(lhs, rhs):
        return conv(lhs, rhs), (lhs, rhs)

    def backward(residuals, grad):
        lhs, rhs = residuals
        grad_lhs = jax.vjp(lambda a: conv(a, rhs), lhs)[1](grad)[0]
        slices = batch // WEIGHT_GRAD_CHUNK
        grad_rhs = sum(  # summed in float32 whatever the computation's dtype (bfloat16: model.dtype)
            jax.vjp(lambda w: conv(part, w), rhs)[1](grad_part)[0].astype(jnp.float32)
            for part, grad_part in zip(jnp.split(lhs, slices), jnp.split(grad, slices))
        )
        return grad_lhs, grad_rhs.astype(rhs.dtype)

    sliced_weight_grad.defvjp(forward, backward)
    return sliced_weight_grad(lhs, rhs)


def dropout_mask(key: jax.Array, keep: float, shape: Sequence[int]) -> jax.Array:
    """Bernoulli(`keep`) booleans of `shape`, several per random 32-bit word where `keep` allows it.

    Where keep * 2**b is a whole number for b in 1, 2, 4, 8 (keep = 0.5: b = 1),
    each decision reads its own b bits (value >= (1 - keep) * 2**b), so one
    threefry word serves 32 / b decisions: exactly Bernoulli(keep), and 32x fewer
    random bits than `jax.random.bernoulli` at rate 0.5 (threefry dominated the
    dropout of the RCN step on XLA:CPU). Other rates use `jax.random.bernoulli`.
    """
    size = int(np.prod(shape))
    for bits in (1, 2, 4, 8):
        levels = 2**bits
        threshold = (1.0 - keep) * levels
        if threshold == int(threshold):
            per_word = 32 // bits
            words = jax.random.bits(key, (-(-size // per_word),), jnp.uint32)
            shifts = jnp.arange(0, 32, bits, dtype=jnp.uint32)
            fields = (words[:, None] >> shifts) & jnp.uint32(levels - 1)
            return (fields.reshape(-1)[:size] >= jnp.uint32(int(threshold))).reshape(shape)
    return jax.random.bernoulli(key, keep, shape)


class Dropout(nnx.Dropout):
    """nnx.Dropout whose mask comes from `dropout_mask` (fewer random bits; same key handling)."""

    def __call__(self, inputs, *, deterministic: bool | None = None, rngs=None) -> jax.Array:
        deterministic = self.deterministic if deterministic is None else deterministic
        if self.rate == 0.0 or deterministic:
            return inputs
        if self.rate == 1.0 or self.broadcast_dims:
            return super().__call__(inputs, deterministic=deterministic, rngs=rngs)
        rngs = self.rngs if rngs is None else rngs
        if rngs is None:
            raise ValueError("Dropout in training needs `rngs` (a key, an RngStream or nnx.Rngs)")
        if isinstance(rngs, nnx.Rngs):
            key = rngs[self.rng_collection]()
        elif isinstance(rngs, nnx.RngStream):
            key = rngs()
        else:
            key = rngs
        keep = 1.0 - self.rate
        mask = dropout_mask(key, keep, inputs.shape)
        return jax.lax.select(mask, inputs / keep, jnp.zeros_like(inputs))


def batch_statistics(z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and variance over every axis but the last, as flax's BatchNorm: Var = E[z^2] - E[z]^2, clipped at 0."""
    axes = tuple(range(z.ndim - 1))
    mean = jnp.mean(z, axes)
    return mean, jnp.maximum(0.0, jnp.mean(jnp.square(z), axes) - jnp.square(mean))


def _first_along(hit: jax.Array, axis: int) -> jax.Array:
    """`hit` with only its first True kept along `axis` (a short static axis)."""
    first, seen = [], None
    for index in range(hit.shape[axis]):
        h = jnp.take(hit, index, axis=axis)
        first.append(h if seen is None else h & ~seen)
        seen = h if seen is None else seen | h
    return jnp.stack(first, axis=axis)


def _batch_norm_relu_max_forward(z, scale, bias, epsilon):
    mean, var = batch_statistics(z)
    rstd = jax.lax.rsqrt(var + epsilon)
    mul = rstd * scale
    # (z - mean) * mul + bias rises with z where mul >= 0 and falls where mul < 0, and so
    # does its float rounding: the max of a normalised window is the normalised max (or
    # min) of the window, exactly, so only the pooled values are normalised.
    z_pooled = jnp.where(mul >= 0, z.max(-2), z.min(-2))
    pre = (z_pooled - mean) * mul + bias
    return (jax.nn.relu(pre), mean, var), (z, z_pooled, pre, mean, rstd, scale)


def _batch_norm_relu_max_backward(epsilon, residuals, cotangents):
    del epsilon
    z, z_pooled, pre, mean, rstd, scale = residuals
    grad_out, grad_mean, grad_var = cotangents
    n = z.size // z.shape[-1]
    axes = tuple(range(pre.ndim - 1))
    grad_pre = jnp.where(pre > 0, grad_out, 0.0)
    # The BatchNorm gradient a (g - mean(g) - xhat mean(g xhat)), a = scale * rstd, where g
    # is zero outside the chosen element of each window, plus the direct paths of the
    # mean and variance outputs.
    sum_grad = grad_pre.sum(axes)
    sum_grad_xhat = (grad_pre * ((z_pooled - mean) * rstd)).sum(axes)
    a = scale * rstd
    c0 = -a * sum_grad / n + grad_mean / n
    c1 = (-a * sum_grad_xhat / n + 2.0 * grad_var / (n * rstd)) * rstd
    # A window's gradient goes to its first maximum (minimum where a < 0), as in PyTorch.
    chosen = _first_along(z == z_pooled[..., None, :], axis=z.ndim - 2)
    grad_z = jnp.where(chosen, (a * grad_pre)[..., None, :], 0.0)
    return grad_z + c0 + (z - mean) * c1, sum_grad_xhat, sum_grad


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def batch_norm_relu_max(z, scale, bias, epsilon: float):
    """Training-mode BatchNorm -> ReLU -> max over axis -2, with a hand-written gradient.

    `z` is (..., window, C), one pooling window on axis -2. Returns (output
    (..., C), batch mean, batch variance), the statistics over every axis but
    the last. The values of flax's BatchNorm, `jax.nn.relu` and a max, but only
    the pooled values are normalised, and the gradient takes two passes over
    `z`: XLA:CPU's own differentiation of the composition made many slow passes.
    """
    return _batch_norm_relu_max_forward(z, scale, bias, epsilon)[0]


batch_norm_relu_max.defvjp(_batch_norm_relu_max_forward, _batch_norm_relu_max_backward)


def _phase_kernel_index(kernel_size: tuple[int, int], window: tuple[int, int]):
    """Gather index and mask that turn a (KH, KW, C, O) kernel into its (window-)phase form."""
    (kh, kw), (wh, ww) = kernel_size, window
    size = ((kh + wh - 2) // wh + 1, (kw + ww - 2) // ww + 1)
    index = np.zeros((*size, wh, ww, wh, ww), np.int32)
    valid = np.zeros(index.shape, bool)
    for ky, kx, sy, sx, py, px in np.ndindex(index.shape):
        dy, dx = wh * ky + sy - py, ww * kx + sx - px
        if 0 <= dy < kh and 0 <= dx < kw:
            index[ky, kx, sy, sx, py, px] = dy * kw + dx
            valid[ky, kx, sy, sx, py, px] = True
    return size, index, valid


def conv_pooling_windows(x: jax.Array, kernel: jax.Array, bias: jax.Array | None, window: Sequence[int]) -> jax.Array:
    """conv(x, kernel) + bias (stride 1, VALID) as (B, H', W', wh * ww, O): each pooling window on axis -2.

    Output row ph * wh + py, column pw * ww + px is [:, ph, pw, py * ww + px];
    conv rows and columns that do not fill a window are left out. The forward
    pass is one denser convolution: the input cut into window-sized blocks
    stacked on the channels (space to depth), the kernel rearranged so that
    output channel (py, px, o) is the conv output at offset (py, px) of each
    window, a ceil((KH + wh - 1) / wh) x ceil((KW + ww - 1) / ww) kernel with
    wh * ww times the channels on both sides. XLA:CPU runs the 5x5 stem of the
    xia2020_code RCN (3 -> 16 channels, 60x60, batch 64) this way in about half
    the CPU time of its own convolution (docs/benchmarks.md), and the pooling
    windows come out contiguous. The gradients are those of the plain
    convolution with the sliced weight gradient (`conv_sliced_weight_grad`),
    which took less CPU time than the denser one's (benchmarks/conv_weight_grad.py).
    """
    wh, ww = window
    kh, kw = kernel.shape[:2]
    h, w = x.shape[1:3]
    if (h - kh + 1) // wh < 1 or (w - kw + 1) // ww < 1:
        raise ValueError(f"pooling window {tuple(window)} is larger than the conv output of a {h}x{w} input")
    z = _windowed_conv(x, kernel, (wh, ww))
    return z if bias is None else z + bias


def _plain_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    numbers = ("NHWC", "HWIO", "NHWC")
    return conv_sliced_weight_grad(x, kernel, (1, 1), ((0, 0), (0, 0)), dimension_numbers=numbers)


def _windowed_conv_forward(x, kernel, window):
    wh, ww = window
    kh, kw, c, o = kernel.shape
    b, h, w, _ = x.shape
    ph, pw = (h - kh + 1) // wh, (w - kw + 1) // ww
    (sh, sw), index, valid = _phase_kernel_index((kh, kw), (wh, ww))
    rows, cols = (ph + sh - 1) * wh, (pw + sw - 1) * ww  # the input the phase conv reads; the extra rows, if
    blocks = jnp.pad(x[:, :rows, :cols], ((0, 0), (0, max(0, rows - h)), (0, max(0, cols - w)), (0, 0)))  # any,
    blocks = blocks.reshape(b, rows // wh, wh, cols // ww, ww, c).transpose(0, 1, 3, 2, 4, 5)  # meet zero taps
    taps = kernel.reshape(kh * kw, c, o)[index]  # (SH, SW, wh, ww, wh, ww, C, O)
    taps = jnp.where(valid[..., None, None], taps, 0.0).transpose(0, 1, 2, 3, 6, 4, 5, 7)
    z = jax.lax.conv_general_dilated(
        blocks.reshape(b, rows // wh, cols // ww, wh * ww * c),
        taps.reshape(sh, sw, wh * ww * c, wh * ww * o),
        (1, 1),
        ((0, 0), (0, 0)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    return z.reshape(b, ph, pw, wh * ww, o), (x, kernel)


def _windowed_conv_backward(window, residuals, grad):
    x, kernel = residuals
    (wh, ww), (b, ph, pw, _, o) = window, grad.shape
    grad = grad.reshape(b, ph, pw, wh, ww, o).transpose(0, 1, 3, 2, 4, 5).reshape(b, ph * wh, pw * ww, o)
    full = (x.shape[1] - kernel.shape[0] + 1, x.shape[2] - kernel.shape[1] + 1)  # conv outputs outside
    grad = jnp.pad(grad, ((0, 0), (0, full[0] - ph * wh), (0, full[1] - pw * ww), (0, 0)))  # the windows: 0
    return jax.vjp(_plain_conv, x, kernel)[1](grad)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _windowed_conv(x, kernel, window):
    return _windowed_conv_forward(x, kernel, window)[0]


_windowed_conv.defvjp(_windowed_conv_forward, _windowed_conv_backward)
