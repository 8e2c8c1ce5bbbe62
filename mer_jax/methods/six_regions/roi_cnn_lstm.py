"""Six facial regions, a CNN per region, an LSTM per region over time (Aouayeb et al., MLSP 2019).

Two models, trained one after the other (sec. 3.2-3.3, 4.1.2):

- ``roi_cnn`` (stage 1): one frame's six regions -> per region its own CNN
  (conv 4@5x5 -> max pool -> conv 8@3x3 -> max pool -> four parallel convs of
  16 filters 1x1/3x3/5x5/7x7 concatenated with their input -> global average
  pool -> dense 1024 -> dropout 0.2 -> dense 20, the region's spatial feature)
  and a dense head of classes + 1 ("not me", sec. 3.2) per region. Logits
  (B, 6, classes + 1); :meth:`ROICNN.features` gives the (B, 6, 20) features
  that feed stage 2.
- ``roi_lstm`` (stage 2): per frame the six 20-d features and a validity
  flag -> one LSTM of 120 units per region -> dropout 0.2 -> concatenated ->
  dense 64 LeakyReLU -> dense classes. Padded frames are masked: the state at
  the clip's last real frame is the output.

Regions arrive on a common black canvas, region r at its top-left corner and
cut back as ``x[..., r, :h_r, :w_r, :]`` with ``config.region_sizes``; the
canvas outside a region's box never reaches its CNN. Every ReLU, pool, padding
and slope choice is argued in docs/models.md ("Six regions, CNN + LSTM").

Config keys (`config.model`, see :func:`default_config`): name, region_sizes,
conv_filters, conv_kernels, pool, branch_filters, branch_kernels, dense,
features, cnn_dropout, lstm_units, lstm_dropout, fc, leaky_slope.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from mer_jax.models import layers
from mer_jax.data.region_geometry import REGION_SIZES

NAMES = ("roi_cnn", "roi_lstm")

# Keras's defaults (the paper's framework, sec. 4.1.2: keras 2.2.4): Glorot-uniform
# kernels, zero biases, orthogonal recurrent kernels, forget-gate bias 1.
kernel_init = nnx.initializers.glorot_uniform()


def default_config() -> ml_collections.ConfigDict:
    """The keys both stages read, with the paper's architecture (Aouayeb et al., MLSP 2019)."""
    return ml_collections.ConfigDict(
        {
            "name": "roi_cnn",  # roi_cnn (stage 1, sec. 3.2) | roi_lstm (stage 2, sec. 3.3)
            "region_sizes": REGION_SIZES,  # (height, width) per region in REGION_NAMES order, sec. 3.1, 4.1.2
            "conv_filters": (4, 8),  # the two convolutions, sec. 4.1.2
            "conv_kernels": (5, 3),  # their kernel sizes, sec. 4.1.2
            "pool": 2,  # max pool after each of them, sec. 3.2 (size unstated: keras's default 2)
            "branch_filters": 16,  # the four parallel convolutions, sec. 4.1.2
            "branch_kernels": (1, 3, 5, 7),  # their kernel sizes, sec. 3.2 and 4.1.2
            "dense": 1024,  # dense after the average pooling, sec. 4.1.2
            "features": 20,  # the region's spatial feature, sec. 4.1.2; the LSTMs' input width
            "cnn_dropout": 0.2,  # after the dense 1024, sec. 4.1.2
            "lstm_units": 120,  # "the same length of inputs 120 for all LSTMs", sec. 4.1.2
            "lstm_dropout": 0.2,  # after each LSTM, sec. 3.3 and 4.1.2
            "fc": 64,  # dense with LeakyReLU after the concatenated LSTMs, sec. 4.1.2
            "leaky_slope": 0.3,  # LeakyReLU slope: unstated, keras 2.2.4's default alpha
        }
    )


def create(config: ml_collections.ConfigDict, *, num_classes: int, input_shape: tuple[int, ...], rngs: nnx.Rngs):
    """``roi_cnn`` for (6, H, W, C) region canvases or ``roi_lstm`` for (T, 6 * features + 1) feature sequences."""
    region_sizes = tuple(tuple(int(n) for n in size) for size in config.region_sizes)
    if config.name == "roi_cnn":
        return ROICNN(
            region_sizes=region_sizes,
            input_shape=input_shape,
            num_outputs=num_classes + 1,
            conv_filters=tuple(config.conv_filters),
            conv_kernels=tuple(config.conv_kernels),
            pool=config.pool,
            branch_filters=config.branch_filters,
            branch_kernels=tuple(config.branch_kernels),
            dense=config.dense,
            features=config.features,
            dropout=config.cnn_dropout,
            rngs=rngs,
        )
    if config.name == "roi_lstm":
        expected = len(region_sizes) * config.features + 1
        if len(input_shape) != 2 or input_shape[-1] != expected:
            raise ValueError(
                f"roi_lstm takes (T, {len(region_sizes)} regions x {config.features} features + 1 validity flag "
                f"= {expected}) sequences; the data have examples of shape {input_shape}"
            )
        return ROILSTM(
            num_regions=len(region_sizes),
            features=config.features,
            units=config.lstm_units,
            dropout=config.lstm_dropout,
            fc=config.fc,
            leaky_slope=config.leaky_slope,
            num_classes=num_classes,
            rngs=rngs,
        )
    raise ValueError(f"unknown model.name {config.name!r} for {__name__}; valid: {NAMES}")


def _as_float(x: jax.Array) -> jax.Array:
    """uint8 pixels scaled to [0, 1]; float inputs as they are."""
    return x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x


def _conv(in_features: int, features: int, kernel: int, padding: str, rngs: nnx.Rngs) -> nnx.Conv:
    return nnx.Conv(
        in_features,
        features,
        (kernel, kernel),
        padding=padding,
        kernel_init=kernel_init,
        conv_general_dilated=layers.conv_general_dilated,
        rngs=rngs,
    )


def _linear(in_features: int, features: int, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(in_features, features, kernel_init=kernel_init, rngs=rngs)


def smallest_region(conv_kernels: Sequence[int], pool: int) -> int:
    """The smallest region side that leaves at least one cell after every valid conv and its pool."""
    side = 1
    for kernel in reversed(conv_kernels):
        side = side * pool + kernel - 1
    return side


class RegionCNN(nnx.Module):
    """One region's CNN (Aouayeb et al., MLSP 2019, sec. 3.2, Fig. 4, sec. 4.1.2).

    Each valid conv (ReLU) is followed by a max pool; the parallel convs (ReLU,
    "same" padding) are concatenated with their input, the second conv's pooled
    output (sec. 3.2); then a global average pool, dense (ReLU), dropout, the
    feature dense (ReLU) and the head (logits; the paper's softmax is the loss's).
    """

    def __init__(
        self,
        in_features: int,
        *,
        num_outputs: int,
        conv_filters: Sequence[int],
        conv_kernels: Sequence[int],
        pool: int,
        branch_filters: int,
        branch_kernels: Sequence[int],
        dense: int,
        features: int,
        dropout: float,
        rngs: nnx.Rngs,
    ):
        widths = (in_features, *conv_filters)
        self.convs = nnx.List(
            [_conv(widths[i], widths[i + 1], k, "VALID", rngs) for i, k in enumerate(conv_kernels)]
        )
        self.branches = nnx.List([_conv(widths[-1], branch_filters, k, "SAME", rngs) for k in branch_kernels])
        self.pool = pool
        self.hidden = _linear(widths[-1] + branch_filters * len(branch_kernels), dense, rngs)
        self.dropout = nnx.Dropout(dropout)
        self.feature = _linear(dense, features, rngs)
        self.head = _linear(features, num_outputs, rngs)

    def features(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        """(B, h, w, C) region crops -> (B, features), the region's spatial feature."""
        for conv in self.convs:
            x = layers.max_pool(jax.nn.relu(conv(x)), (self.pool, self.pool))
        x = jnp.concatenate([x, *(jax.nn.relu(branch(x)) for branch in self.branches)], axis=-1)
        x = jax.nn.relu(self.hidden(x.mean(axis=(1, 2))))
        x = self.dropout(x, deterministic=not train, rngs=rngs)
        return jax.nn.relu(self.feature(x))

    def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        return self.head(self.features(x, train=train, rngs=rngs))


class ROICNN(nnx.Module):
    """Stage 1: six region CNNs, each with its own weights, on one frame's region canvas (sec. 3.2).

    Input (B, R, H, W, C), uint8 or float, region r in ``[:h_r, :w_r]`` of its
    canvas; output (B, R, num_outputs) logits, index ``num_outputs - 1`` being
    the region's "not me". The regions differ in size, so the R CNNs run one
    after the other on their own crops rather than as one batched op on the
    canvas (which would compute every region at the largest size). `cnn`
    holds the remaining :class:`RegionCNN` arguments.
    """

    def __init__(
        self,
        *,
        region_sizes: Sequence[tuple[int, int]],
        input_shape: Sequence[int],
        conv_kernels: Sequence[int],
        pool: int,
        rngs: nnx.Rngs,
        **cnn,
    ):
        num_regions = len(region_sizes)
        if len(input_shape) != 4 or input_shape[0] != num_regions:
            raise ValueError(
                f"roi_cnn takes ({num_regions} regions, H, W, C) canvases; "
                f"the data have examples of shape {input_shape}"
            )
        canvas = tuple(input_shape[1:3])
        smallest = smallest_region(conv_kernels, pool)
        for index, (h, w) in enumerate(region_sizes):
            if h > canvas[0] or w > canvas[1] or min(h, w) < smallest:
                raise ValueError(
                    f"region {index} of size {(h, w)} must fit the {canvas} canvas and be at least "
                    f"{smallest} on each side (its convolutions and pools)"
                )
        self.region_sizes = tuple(region_sizes)
        self.cnns = nnx.List(
            [
                RegionCNN(input_shape[-1], conv_kernels=conv_kernels, pool=pool, rngs=rngs, **cnn)
                for _ in region_sizes
            ]
        )

    def _crops(self, x: jax.Array) -> list[jax.Array]:
        x = _as_float(x)
        return [x[:, r, :h, :w, :] for r, (h, w) in enumerate(self.region_sizes)]

    def features(self, x: jax.Array) -> jax.Array:
        """(B, R, H, W, C) canvases -> (B, R, features), in eval mode and without the heads: stage 2's input."""
        return jnp.stack([cnn.features(crop) for cnn, crop in zip(self.cnns, self._crops(x))], axis=1)

    def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        return jnp.stack(
            [cnn(crop, train=train, rngs=rngs) for cnn, crop in zip(self.cnns, self._crops(x))], axis=1
        )


def _orthogonal_per_region(key: jax.Array, shape: tuple[int, int, int]) -> jax.Array:
    """(R, n, m) kernels, each region's (n, m) block orthogonal (keras's recurrent initialiser)."""
    keys = jax.random.split(key, shape[0])
    return jax.vmap(lambda k: jax.nn.initializers.orthogonal()(k, shape[1:]))(keys)


class RegionLSTMs(nnx.Module):
    """R LSTMs, one per region, each with its own weights (Aouayeb et al., MLSP 2019, sec. 3.3).

    The standard LSTM with gates in keras's order (input i, forget f, cell g,
    output o): z = x W_r + h U_r + b_r; c' = s(f) c + s(i) tanh(g); h' = s(o) tanh(c'),
    s the logistic sigmoid. The R cells run as one batched step per frame.
    Where ``valid`` is False the state is carried unchanged, so the result is
    the state after the clip's last real frame, whatever padding follows.
    """

    def __init__(self, num_regions: int, features: int, units: int, *, rngs: nnx.Rngs):
        shape = (num_regions, features, 4 * units)
        self.kernel = nnx.Param(
            nnx.initializers.glorot_uniform(batch_axis=(0,))(rngs.params(), shape)
        )
        self.recurrent_kernel = nnx.Param(_orthogonal_per_region(rngs.params(), (num_regions, units, 4 * units)))
        forget = jnp.zeros((4, units)).at[1].set(1.0).reshape(-1)  # keras's unit_forget_bias
        self.bias = nnx.Param(jnp.tile(forget, (num_regions, 1)))
        self.units = units

    def __call__(self, x: jax.Array, valid: jax.Array) -> jax.Array:
        """(B, T, R, features) inputs and (B, T) validity -> (B, R, units), the last real frame's state."""
        inputs = jnp.einsum("btrf,rfk->tbrk", x, self.kernel[...]) + self.bias[...]
        recurrent = self.recurrent_kernel[...]

        def step(carry, frame):
            h, c = carry
            z, keep = frame
            i, f, g, o = jnp.split(z + jnp.einsum("bru,ruk->brk", h, recurrent), 4, axis=-1)
            c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
            keep = keep[:, None, None]
            return (jnp.where(keep, h_new, h), jnp.where(keep, c_new, c)), None

        zeros = jnp.zeros_like(inputs[0, ..., : self.units])  # like the inputs: varying over a shard_map's folds
        (h, _), _ = jax.lax.scan(step, (zeros, zeros), (inputs, jnp.moveaxis(valid, 1, 0)))
        return h


class ROILSTM(nnx.Module):
    """Stage 2: an LSTM per region over its frame features -> dropout -> concatenated -> dense LeakyReLU -> dense.

    Aouayeb et al., MLSP 2019, sec. 3.3 and 4.1.2. Input (B, T, R * features + 1):
    per frame the R regions' features in region order, then 1.0 for a real frame
    or 0.0 for padding; output (B, num_classes) logits.
    """

    def __init__(
        self,
        *,
        num_regions: int,
        features: int,
        units: int,
        dropout: float,
        fc: int,
        leaky_slope: float,
        num_classes: int,
        rngs: nnx.Rngs,
    ):
        self.num_regions = num_regions
        self.num_features = features
        self.lstms = RegionLSTMs(num_regions, features, units, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)
        self.fc = _linear(num_regions * units, fc, rngs)
        self.leaky_slope = leaky_slope
        self.out = _linear(fc, num_classes, rngs)

    def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        b, t, _ = x.shape
        frames = x[..., :-1].reshape(b, t, self.num_regions, self.num_features)
        h = self.dropout(self.lstms(frames, x[..., -1] > 0.5), deterministic=not train, rngs=rngs)
        h = jax.nn.leaky_relu(self.fc(h.reshape(b, -1)), self.leaky_slope)
        return self.out(h)
