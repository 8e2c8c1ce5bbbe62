"""Building blocks shared by the recurrent convolutional models.

Everything is NHWC. Pooling is written as reshapes and matrix products rather
than `reduce_window`: on XLA:CPU the gradient of `reduce_window` max pooling
(select-and-scatter) is several times slower than a reshape-and-max, and an
adaptive average pool is exactly a pair of small matrix products.

For speed on XLA:CPU the convolutions' weight gradients and the conv ->
BatchNorm -> ReLU -> max pool of `ConvBNReLU.pooled` take the formulations of
mer_jax/models/fast_ops.py where the platform tuning says so: read while the
model is traced (`mer_jax.speed.platform.current()`), on CPU only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from flax.nnx.nn.linear import canonicalize_padding

from mer_jax.speed import platform
from mer_jax.models.fast_ops import batch_norm_relu_max, conv_pooling_windows, conv_sliced_weight_grad

# PyTorch's BatchNorm2d defaults (momentum 0.1 there is 0.9 here), used by the
# authors' released code (docs/design.md, "Models").
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# Kaiming normal with fan_out for convolutions, N(0, 0.01) for the classifier
# (the initialisation of the authors' released code, docs/design.md "Models").
conv_init = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")
linear_init = nnx.initializers.normal(0.01)


def max_pool(x: jax.Array, window: Sequence[int], padding: int = 0) -> jax.Array:
    """Non-overlapping max pooling (kernel = stride = `window`) after `padding` rows and columns of -inf on each side.

    Rows and columns that do not fill a whole window are dropped, as in
    PyTorch's `MaxPool2d` (whose padding is -inf too) and MatConvNet's pooling.
    """
    if padding:
        x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)), constant_values=-jnp.inf)
    wh, ww = window
    b, h, w, c = x.shape
    h2, w2 = h // wh, w // ww
    if h2 == 0 or w2 == 0:
        raise ValueError(f"max_pool window {tuple(window)} is larger than the feature map {h}x{w}")
    x = x[:, : h2 * wh, : w2 * ww, :]
    return x.reshape(b, h2, wh, w2, ww, c).max(axis=(2, 4))


def adaptive_pool_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) averaging matrix of PyTorch's adaptive average pooling.

    Output cell i averages input cells floor(i*n/k) .. ceil((i+1)*n/k) - 1.
    """
    matrix = np.zeros((size_out, size_in), np.float32)
    for i in range(size_out):
        start = (i * size_in) // size_out
        end = -((-(i + 1) * size_in) // size_out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def adaptive_avg_pool(x: jax.Array, size: int) -> jax.Array:
    """Adaptive average pooling of an NHWC map to `size` x `size` (Xia et al., TIP 2020, Table I, AvgPool)."""
    rows = jnp.asarray(adaptive_pool_matrix(x.shape[1], size))
    cols = jnp.asarray(adaptive_pool_matrix(x.shape[2], size))
    return jnp.einsum("ph,bhwc,qw->bpqc", rows, x, cols)


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, *args, **kwargs) -> jax.Array:
    """`lax.conv_general_dilated`, with its weight gradient summed over batch slices where the tuning says so."""
    if platform.current().sliced_weight_grad:
        return conv_sliced_weight_grad(lhs, rhs, *args, **kwargs)
    return jax.lax.conv_general_dilated(lhs, rhs, *args, **kwargs)


class BatchNorm(nnx.BatchNorm):
    """flax's BatchNorm (the same state: scale, bias, mean, var) with a fused BatchNorm -> ReLU -> max pool."""

    def relu_max(self, z: jax.Array, *, train: bool) -> jax.Array:
        """relu(self(z)).max(-2) for z (..., window, C); in training, the fused `batch_norm_relu_max`."""
        if not train:
            return jax.nn.relu(self(z, use_running_average=True)).max(-2)
        out, mean, var = batch_norm_relu_max(z, self.scale[...], self.bias[...], self.epsilon)
        stop = jax.lax.stop_gradient
        self.mean[...] = stop(self.momentum * self.mean[...] + (1 - self.momentum) * mean)
        self.var[...] = stop(self.momentum * self.var[...] + (1 - self.momentum) * var)
        return out


def batch_norm(features: int, rngs: nnx.Rngs) -> BatchNorm:
    return BatchNorm(features, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, rngs=rngs)


def conv(
    in_features: int,
    features: int,
    kernel: int,
    *,
    rngs: nnx.Rngs,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> nnx.Conv:
    """A 2-D convolution with explicit symmetric zero padding and Kaiming fan-out init."""
    return nnx.Conv(
        in_features,
        features,
        (kernel, kernel),
        strides=stride,
        padding=((padding, padding), (padding, padding)),
        kernel_dilation=dilation,
        kernel_init=conv_init,
        conv_general_dilated=conv_general_dilated,
        rngs=rngs,
    )


class ConvBNReLU(nnx.Module):
    """conv -> BatchNorm -> ReLU, the unit of every layer in both papers (Xia et al., TIP 2020, eq. 4)."""

    def __init__(self, in_features: int, features: int, kernel: int, *, rngs: nnx.Rngs, **conv_kwargs):
        self.conv = conv(in_features, features, kernel, rngs=rngs, **conv_kwargs)
        self.norm = batch_norm(features, rngs)

    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        return jax.nn.relu(self.norm(self.conv(x), use_running_average=not train))

    def pooled(self, x: jax.Array, window: Sequence[int], *, train: bool) -> jax.Array:
        """max_pool(self(x), window).

        Where the tuning says so (`windowed_stem`), with stride 1, no dilation and
        windows that tile the conv output (so that BatchNorm still sees every conv
        output), the conv is computed window by window (`conv_pooling_windows`) and
        BatchNorm, ReLU and the pool are one fused op (`BatchNorm.relu_max`);
        docs/benchmarks.md has what that saves.
        """
        conv = self.conv
        padding = canonicalize_padding(conv.padding, 2)
        padding = [(0, 0), (0, 0)] if padding == "VALID" else padding
        if (
            platform.current().windowed_stem
            and not isinstance(padding, str)
            and all(s == 1 for s in np.atleast_1d(conv.strides))
            and all(d == 1 for d in np.atleast_1d(conv.kernel_dilation))
        ):
            size = [n + lo + hi - k + 1 for n, (lo, hi), k in zip(x.shape[1:3], padding, conv.kernel_size)]
            if all(n % w == 0 for n, w in zip(size, window)):
                x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
                bias = conv.bias[...] if conv.bias is not None else None
                return self.norm.relu_max(conv_pooling_windows(x, conv.kernel[...], bias, window), train=train)
        return max_pool(self(x, train=train), window)


class RecurrentConvLayer(nnx.Module):
    """A recurrent convolutional layer unrolled by calling ONE recurrent conv `steps` times.

    One 1x1 feed-forward conv `W_f` and one 3x3 recurrent conv `W_r` (Xia et al., TMM 2019, Table I,
    Xia et al., TIP 2020, Table I). `connection` chooses the unrolled recurrence, with g = ReLU(BN(.)):

    - ``"feedforward"`` (Xia et al., TMM 2019, eq. 6-7; STRCN): u = W_f * x, h_0 = g(u),
      h_n = g(u + W_r * h_{n-1}).
    - ``"input"`` (Xia et al., TIP 2020, eq. 3-4; RCN in both variants, the released
      RclBlock): h_0 = g(W_f * x), h_n = g(W_r * x + W_r * h_{n-1}) = g(W_r * (x + h_{n-1}));
      needs as many input channels as features.
    - ``"shortcut"`` (Xia et al., TIP 2020, eq. 6; RCN-S and its combinations): h_0 = g(W_f * x),
      h_n = g(W_r * s_{n-1} + W_r * h_{n-1}) with s_{n-1} the input of step n-1 (s_0 = x):
      each step's input is the layer input plus all earlier states. It differs from
      ``"input"`` only in that shortcut: with one recurrent step the two are the same.

    `share_norm` gives the recurrent step one BatchNorm used at every step (the
    released code); otherwise each unrolled step n has its own BN_n (the papers'
    "normalization after each convolution operation").
    """

    CONNECTIONS = ("feedforward", "input", "shortcut")

    def __init__(
        self,
        in_features: int,
        features: int,
        *,
        steps: int,
        connection: str,
        share_norm: bool,
        rngs: nnx.Rngs,
    ):
        if connection not in self.CONNECTIONS:
            raise ValueError(f"unknown recurrent connection {connection!r}; valid: {self.CONNECTIONS}")
        if connection != "feedforward" and in_features != features:
            raise ValueError(
                f"connection {connection!r} adds the layer input to its states, so it needs "
                f"in_features == features (got {in_features} and {features})"
            )
        if steps < 0:
            raise ValueError(f"recurrent steps must be >= 0, got {steps}")
        self.steps = steps
        self.connection = connection
        self.share_norm = share_norm
        self.feedforward = conv(in_features, features, 1, rngs=rngs)
        self.feedforward_norm = batch_norm(features, rngs)
        self.recurrent = conv(features, features, 3, padding=1, rngs=rngs)
        num_norms = min(steps, 1) if share_norm else steps
        self.recurrent_norms = nnx.List([batch_norm(features, rngs) for _ in range(num_norms)])

    def _g(self, z: jax.Array, step: int, train: bool) -> jax.Array:
        norm = self.recurrent_norms[0 if self.share_norm else step]
        return jax.nn.relu(norm(z, use_running_average=not train))

    def __call__(
        self,
        x: jax.Array,
        *,
        train: bool,
        initial_state_transform: Callable[[jax.Array], jax.Array] | None = None,
    ) -> jax.Array:
        u = self.feedforward(x)
        h = jax.nn.relu(self.feedforward_norm(u, use_running_average=not train))
        if initial_state_transform is not None:
            h = initial_state_transform(h)
        shortcut = x + h
        for step in range(self.steps):
            if self.connection == "feedforward":
                z = u + self.recurrent(h)
            elif self.connection == "input":
                z = self.recurrent(x + h)
            else:
                z = self.recurrent(shortcut)
            h = self._g(z, step, train)
            shortcut = shortcut + h
        return h


def _combine_class_maps(per_class: jax.Array, per_class_minmax: bool) -> jax.Array:
    """(B, C, K, K) per-class maps -> one (B, K, K) attention map in [0, 1], min-max normalised per sample.

    Eq. 7 sums the classes first; with `per_class_minmax` (the released code)
    each class's map is normalised first and the classes are averaged.
    """

    def minmax(a: jax.Array) -> jax.Array:
        low = a.min(axis=(-2, -1), keepdims=True)
        high = a.max(axis=(-2, -1), keepdims=True)
        return (a - low) / (high - low + 1e-8)

    if per_class_minmax:
        return minmax(per_class).mean(axis=1)
    return minmax(per_class.sum(axis=1))


def attention_map(features: jax.Array, classifier_kernel: jax.Array, per_class_minmax: bool) -> jax.Array:
    """The parameter-free attention unit of Xia et al., TIP 2020, eq. 7, a (B, K, K) map in [0, 1].

    M = sum_i sum_j W_i (.) d(X_j): `features` (B, H, W, N) are downsampled by
    adaptive average pooling to the classifier's K x K grid, multiplied by each
    class's classifier weights reshaped to (K, K, N), and reduced over channels;
    the classes are combined by `_combine_class_maps` (with `per_class_minmax`,
    the released code's SpatialAttentionBlock_P).
    """
    num_channels = features.shape[-1]
    size = int(round((classifier_kernel.shape[0] // num_channels) ** 0.5))
    weights = classifier_kernel.reshape(size, size, num_channels, -1)
    pooled = adaptive_avg_pool(features, size)
    per_class = jnp.einsum("bpqn,pqnc->bcpq", pooled, weights) / num_channels
    return _combine_class_maps(per_class, per_class_minmax)


def channel_mean_attention_map(
    inputs: jax.Array, classifier_kernel: jax.Array, pool_size: int, per_class_minmax: bool
) -> jax.Array:
    """The attention map of the released RCN_C (its SpatialAttentionBlock_F), from inputs of any channel count.

    Each class's classifier weights, reshaped to (K, K, M), are averaged over
    their M channels to one K x K map and multiplied into the channel mean of
    `inputs` (B, H, W, N) adaptively pooled to K x K; the classes are combined
    by `_combine_class_maps`. RCN_C computes it from the network's input.
    """
    weights = classifier_kernel.reshape(pool_size, pool_size, -1, classifier_kernel.shape[-1]).mean(axis=2)
    pooled = adaptive_avg_pool(inputs, pool_size).mean(axis=-1)
    per_class = jnp.einsum("bpq,pqc->bcpq", pooled, weights)
    return _combine_class_maps(per_class, per_class_minmax)


def nearest_indices(size_in: int, size_out: int) -> np.ndarray:
    """Source index of each output cell in PyTorch's default `F.interpolate` (mode "nearest"): floor(i * in / out)."""
    return (np.arange(size_out) * size_in) // size_out


RESIZES = ("bilinear", "nearest")


def apply_attention(features: jax.Array, attention: jax.Array, resize: str = "bilinear") -> jax.Array:
    """Multiply (B, H, W, N) features by a (B, K, K) map resized to H x W.

    `resize`: "bilinear" (the `paper` variant: the paper does not say how) or
    "nearest", PyTorch's `F.interpolate` default, which the released code uses
    (`nearest_indices`; `jax.image.resize`'s nearest picks other cells when H/K is
    not an integer).
    """
    if resize not in RESIZES:
        raise ValueError(f"unknown attention resize {resize!r}; valid: {RESIZES}")
    b, h, w, _ = features.shape
    if attention.shape[1:] != (h, w):
        if resize == "nearest":
            rows, cols = nearest_indices(attention.shape[1], h), nearest_indices(attention.shape[2], w)
            attention = attention[:, rows][:, :, cols]
        else:
            attention = jax.image.resize(attention, (b, h, w), method="bilinear")
    return features * attention[..., None]
