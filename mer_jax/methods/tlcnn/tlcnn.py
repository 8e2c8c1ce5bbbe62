"""TLCNN: a deep frame CNN, then the same CNN's FC6 features through an LSTM (Wang et al., Neurocomputing 2018).

Two models, trained in three stages (mer_jax/methods/tlcnn/stages.py):

- ``tlcnn_cnn``, the "Deep CNN" of sec. 3.4 on one frame: C1 96@7x7/2 -> M1
  3x3/2 -> response normalisation -> C2 384@5x5/2 -> M2 -> response
  normalisation -> C3 512, C4 512, C5 384 (3x3, pad 1) -> M5 -> FC6 4096 ->
  dropout 0.5 -> FC7 4096 -> dropout 0.5 -> FC8 to the classes, ReLU after
  every layer but FC8. Trained on expression images (9 classes, sec. 4.1),
  then on single frames of micro-expression clips (4 classes, sec. 4.2).
  With 4 classes it has 80,260,740 parameters.
- ``tlcnn``, the CNN + LSTM of sec. 3.5: the same layers up to FC6 on every
  frame, an LSTM over the frames' FC6 features, FC8 on each step's output;
  the clip's logits are the mean over its steps (sec. 3.5: "all z_t are
  mapped to labels ... by FC8").

Both hold their layers up to FC6 in ``trunk`` (:class:`FrameTrunk`), under the
same parameter names, so one stage's trunk starts the next
(:func:`mer_jax.methods.tlcnn.stages.transferred`).

The data layer is part of the model, as Caffe's is part of the paper's net
(sec. 3.4): a stored 240 x 320 frame is cropped to ``crop`` x ``crop`` (227),
at a random place per example when training and at the centre otherwise; a
training clip of ``tlcnn`` is cut to ``clip_frames`` (16) consecutive frames
from a random start (sec. 4.2), a test clip keeps every frame. Both draw
from the step's dropout key.

Sizes the paper leaves open are chosen here and argued in docs/models.md
("TLCNN"): Caffe's ceiling rounding of pooled sizes (the only rounding that
gives the paper's 384 x 13 x 13 after M2 from C2's 26 x 26), AlexNet's response
normalisation (5 channels, alpha 1e-4, beta 0.75), an LSTM of 256 units
(Donahue et al.'s LRCN, CVPR 2015, on whose Caffe code such CNN + LSTM nets
were built), He-normal weights. ``width`` scales every layer's width (CPU tests
and the synthetic config); 1 is the paper's.

``dtype`` "bfloat16" computes the convolutions and fully connected layers in
bfloat16 (mixed precision: the weights, their updates, the response
normalisation, the LSTM and the logits stay float32; docs/models.md, "TLCNN").

Config keys (`config.model`, see :func:`default_config`): name, width, crop,
clip_frames, dropout, lstm_units, dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from mer_jax.models import layers

NAMES = ("tlcnn_cnn", "tlcnn")

# Sec. 3.4: (filters, kernel, stride, padding, max pool 3x3/2 after, response normalisation after) of C1..C5.
CONVS = (
    (96, 7, 2, 0, True, True),
    (384, 5, 2, 0, True, True),
    (512, 3, 1, 1, False, False),
    (512, 3, 1, 1, False, False),
    (384, 3, 1, 1, True, False),
)
POOL, POOL_STRIDE = 3, 2  # M1, M2, M5 (sec. 3.4)
FC = 4096  # FC6 and FC7 (sec. 3.4)
# Response normalisation across channels: the paper names it only; AlexNet's values (Krizhevsky et al.,
# NIPS 2012, sec. 3.3), which are also Caffe's LRN defaults but for k.
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 1.0

kernel_init = nnx.initializers.he_normal()
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def default_config() -> ml_collections.ConfigDict:
    """The keys both models read (Wang et al., Neurocomputing 2018, sec. 3.4-3.5, 4.2)."""
    return ml_collections.ConfigDict(
        {
            "name": "tlcnn_cnn",  # tlcnn_cnn (one frame, sec. 3.4) | tlcnn (CNN + LSTM on a clip, sec. 3.5)
            "width": 1.0,  # every layer's width x this (1: the paper's; < 1 for CPU tests)
            "crop": 227,  # the data layer's square crop of each frame, sec. 3.4
            "clip_frames": 16,  # tlcnn, training: consecutive frames drawn at random from a clip, sec. 4.2
            "dropout": 0.5,  # after FC6 and FC7, sec. 3.4
            "lstm_units": 256,  # unstated in the paper: Donahue et al.'s LRCN (CVPR 2015) value
            "dtype": "float32",  # float32 | bfloat16: the convolutions' and FC layers' computation (mixed precision)
        }
    )


def scaled(features: int, width: float) -> int:
    """A layer's width at ``width`` times the paper's, at least 1."""
    return max(1, round(features * width))


def create(config: ml_collections.ConfigDict, *, num_classes: int, input_shape: tuple[int, ...], rngs: nnx.Rngs):
    """``tlcnn_cnn`` for (H, W, C) frames or ``tlcnn`` for (T, H, W, C) clips."""
    frame_rank = 3 if config.name == "tlcnn_cnn" else 4
    if config.name not in NAMES:
        raise ValueError(f"unknown model.name {config.name!r} for {__name__}; valid: {NAMES}")
    if len(input_shape) != frame_rank:
        kind = "(H, W, C) frames" if frame_rank == 3 else "(T, H, W, C) clips"
        raise ValueError(f"{config.name} takes {kind}; the data have examples of shape {input_shape}")
    *_, height, width, channels = input_shape
    if min(height, width) < config.crop:
        raise ValueError(f"model.crop={config.crop} does not fit the data's {height} x {width} frames")
    if config.dtype not in DTYPES:
        raise ValueError(f"model.dtype={config.dtype!r}; valid: {tuple(DTYPES)}")
    dtype = DTYPES[config.dtype]
    trunk = FrameTrunk(channels, config.crop, width=config.width, dtype=dtype, rngs=rngs)
    if config.name == "tlcnn_cnn":
        return FrameCNN(
            trunk, num_classes, crop=config.crop, dropout=config.dropout, width=config.width, dtype=dtype, rngs=rngs
        )
    if input_shape[0] < config.clip_frames:
        raise ValueError(
            f"model.clip_frames={config.clip_frames} is more than the clips' {input_shape[0]} frames"
        )
    return TLCNN(
        trunk, num_classes, crop=config.crop, clip_frames=config.clip_frames, dropout=config.dropout,
        units=scaled(config.lstm_units, config.width), rngs=rngs,
    )


def pooled_size(size: int) -> int:
    """A side after a 3x3/2 max pool, rounded up as Caffe does (the paper's framework)."""
    return -(-(size - POOL) // POOL_STRIDE) + 1


def max_pool(x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> 3x3/2 max pool with Caffe's output size: windows that overhang the bottom or right edge
    take the maximum of the part inside."""
    h, w = x.shape[1:3]
    extra_h = (pooled_size(h) - 1) * POOL_STRIDE + POOL - h
    extra_w = (pooled_size(w) - 1) * POOL_STRIDE + POOL - w
    return jax.lax.reduce_window(
        x, -jnp.inf, jax.lax.max, (1, POOL, POOL, 1), (1, POOL_STRIDE, POOL_STRIDE, 1),
        ((0, 0), (0, extra_h), (0, extra_w), (0, 0)),
    )


def response_normalization(x: jax.Array) -> jax.Array:
    """Local response normalisation across channels: x / (k + alpha / n * sum of x^2 over n neighbours)^beta,
    computed in float32 and returned in x's dtype."""
    dtype, x = x.dtype, x.astype(jnp.float32)
    squares = jnp.square(x)
    half = LRN_SIZE // 2
    window = jax.lax.reduce_window(
        squares, 0.0, jax.lax.add, (1, 1, 1, LRN_SIZE), (1, 1, 1, 1), ((0, 0), (0, 0), (0, 0), (half, half))
    )
    return (x / (LRN_K + LRN_ALPHA / LRN_SIZE * window) ** LRN_BETA).astype(dtype)


def data_layer(x: jax.Array, crop: int, *, train: bool, rngs: nnx.Rngs | None) -> jax.Array:
    """(B, ..., H, W, C) stored frames -> (B, ..., crop, crop, C) floats centred on 0 (pixels / 255 - 0.5).

    Training: one random crop per example (every frame of a clip cut alike);
    otherwise the centre crop (sec. 3.4). Caffe's nets subtract a mean image;
    a fixed 0.5 is used here instead (docs/models.md, "TLCNN").
    """
    *lead, height, width, channels = x.shape
    if train:
        key = rngs.dropout()
        tops = jax.random.randint(jax.random.fold_in(key, 0), (lead[0],), 0, height - crop + 1)
        lefts = jax.random.randint(jax.random.fold_in(key, 1), (lead[0],), 0, width - crop + 1)
    else:
        tops = jnp.full((lead[0],), (height - crop) // 2)
        lefts = jnp.full((lead[0],), (width - crop) // 2)

    def cut(example, top, left):
        start = (0,) * (example.ndim - 3) + (top, left, 0)
        return jax.lax.dynamic_slice(example, start, (*example.shape[:-3], crop, crop, channels))

    x = jax.vmap(cut)(x, tops, lefts)
    scale = 1 / 255.0 if x.dtype == jnp.uint8 else 1.0
    return x.astype(jnp.float32) * scale - 0.5


def last_side(crop: int) -> int:
    """The side of M5's output for a ``crop`` x ``crop`` input (6 for the paper's 227); < 1: too small."""
    side = crop
    for _, kernel, stride, padding, pooled, _ in CONVS:
        side = (side + 2 * padding - kernel) // stride + 1
        if side < POOL and pooled:
            return 0
        side = pooled_size(side) if pooled else side
    return side


class FrameTrunk(nnx.Module):
    """C1 .. C5 with their pools and normalisations, then FC6 with its ReLU: one frame's FC6 feature (sec. 3.4-3.5)."""

    def __init__(self, channels: int, crop: int, *, width: float, dtype=jnp.float32, rngs: nnx.Rngs):
        side = last_side(crop)
        if side < 1:
            smallest = next(size for size in range(crop, 10 * crop + 100) if last_side(size) >= 1)
            raise ValueError(f"model.crop={crop} is too small for TLCNN's layers (sec. 3.4): at least {smallest}")
        widths = [channels, *(scaled(filters, width) for filters, *_ in CONVS)]
        self.convs = nnx.List([
            nnx.Conv(
                widths[i], widths[i + 1], (kernel, kernel), strides=stride, padding=padding,
                kernel_init=kernel_init, conv_general_dilated=layers.conv_general_dilated, dtype=dtype, rngs=rngs,
            )
            for i, (_, kernel, stride, padding, *_) in enumerate(CONVS)
        ])
        self.fc6 = nnx.Linear(
            side * side * widths[-1], scaled(FC, width), kernel_init=kernel_init, dtype=dtype, rngs=rngs
        )

    @property
    def features(self) -> int:
        return self.fc6.out_features

    def __call__(self, x: jax.Array) -> jax.Array:
        """(B, crop, crop, C) centred frames -> (B, FC6) features after ReLU."""
        for conv, (*_, pooled, normalized) in zip(self.convs, CONVS):
            x = jax.nn.relu(conv(x))
            if pooled:
                x = max_pool(x)
            if normalized:
                x = response_normalization(x)
        return jax.nn.relu(self.fc6(x.reshape(x.shape[0], -1)))


class FrameCNN(nnx.Module):
    """``tlcnn_cnn``: the trunk, dropout, FC7 (ReLU), dropout, FC8 to the classes (sec. 3.4). (B, H, W, C) -> logits."""

    def __init__(
        self, trunk: FrameTrunk, num_classes: int, *, crop: int, dropout: float, width: float, dtype=jnp.float32, rngs,
    ):
        self.trunk = trunk
        self.crop = crop
        self.dropout = nnx.Dropout(dropout)
        self.fc7 = nnx.Linear(trunk.features, scaled(FC, width), kernel_init=kernel_init, dtype=dtype, rngs=rngs)
        self.fc8 = nnx.Linear(scaled(FC, width), num_classes, kernel_init=kernel_init, rngs=rngs)

    def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        x = self.dropout(self.trunk(data_layer(x, self.crop, train=train, rngs=rngs)), deterministic=not train,
                         rngs=rngs)
        x = self.dropout(jax.nn.relu(self.fc7(x)), deterministic=not train, rngs=rngs)
        return self.fc8(x.astype(jnp.float32))


class LSTM(nnx.Module):
    """The LSTM of sec. 3.5, eq. 4-9: gates i, f, o from sigmoid, the modulation g from tanh,
    c_t = f c_{t-1} + i g, h_t = o tanh(c_t); one bias per gate, h_0 = c_0 = 0."""

    def __init__(self, features: int, units: int, *, rngs: nnx.Rngs):
        self.kernel = nnx.Param(nnx.initializers.glorot_uniform()(rngs.params(), (features, 4 * units)))
        self.recurrent_kernel = nnx.Param(nnx.initializers.orthogonal()(rngs.params(), (units, 4 * units)))
        self.bias = nnx.Param(jnp.zeros(4 * units))
        self.units = units

    def __call__(self, x: jax.Array) -> jax.Array:
        """(B, T, features) -> (B, T, units), h_t of every step."""
        inputs = jnp.einsum("btf,fk->tbk", x, self.kernel[...]) + self.bias[...]
        recurrent = self.recurrent_kernel[...]

        def step(carry, z):
            h, c = carry
            i, f, o, g = jnp.split(z + h @ recurrent, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        zeros = jnp.zeros_like(inputs[0, :, : self.units])
        _, hs = jax.lax.scan(step, (zeros, zeros), inputs)
        return jnp.moveaxis(hs, 0, 1)


class TLCNN(nnx.Module):
    """``tlcnn``: every frame through the trunk, dropout, the LSTM, FC8 on each step; the clip's logits are the
    steps' mean (sec. 3.5). (B, T, H, W, C) clips -> (B, classes)."""

    def __init__(
        self, trunk: FrameTrunk, num_classes: int, *, crop: int, clip_frames: int, dropout: float, units: int, rngs,
    ):
        self.trunk = trunk
        self.crop = crop
        self.clip_frames = clip_frames
        self.dropout = nnx.Dropout(dropout)
        self.lstm = LSTM(trunk.features, units, rngs=rngs)
        self.fc8 = nnx.Linear(units, num_classes, kernel_init=nnx.initializers.glorot_uniform(), rngs=rngs)

    def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        if train:  # sec. 4.2: 16 consecutive frames from a random start of each clip
            starts = jax.random.randint(rngs.dropout(), (x.shape[0],), 0, x.shape[1] - self.clip_frames + 1)
            x = jax.vmap(lambda clip, start: jax.lax.dynamic_slice_in_dim(clip, start, self.clip_frames))(x, starts)
        x = data_layer(x, self.crop, train=train, rngs=rngs)
        b, t = x.shape[:2]
        features = self.trunk(x.reshape(b * t, *x.shape[2:])).reshape(b, t, -1).astype(jnp.float32)
        steps = self.lstm(self.dropout(features, deterministic=not train, rngs=rngs))
        return self.fc8(steps).mean(axis=1)
