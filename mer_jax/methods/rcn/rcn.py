"""The shallow recurrent convolutional network of Xia et al., TIP 2020 and its parameter-free modules.

RCN (Xia et al., TIP 2020, Table I, Fig. 4): Conv -> Rconv (1 feed-forward 1x1, recurrent 3x3
unrolled with shared weights as eq. 3-4, MaxPool 2) -> adaptive AvgPool K x K -> linear.
The modules add no learnable parameters (sec. IV-C):

- W, wide expansion: the stem conv becomes three dilated streams (d = 1, 2, 3)
  concatenated to M channels (eq. 5).
- S, shortcut connection: each recurrent state's input is the sum of the layer
  input and all earlier states (eq. 6); the only difference from RCN's eq. 3.
- A, attention unit: a class-activation map from the classifier's own weights
  (eq. 7) multiplied into the features.

The searched combinations of sec. V-C-4 (all use W and S), in the `paper` variant:

- ``rcn_c`` (top-1): attention between the wide stem and the shortcut Rconv, in cascade.
- ``rcn_f`` (top-2, the paper's final choice): attention on the Rconv's initial state.
- ``rcn_p`` (top-3): attention in parallel with the shortcut Rconv, the two
  branches summed as in the search's weighted sum (eq. 8).

`variant="paper"` follows Table I; `variant="xia2020_code"` follows the authors'
released PyTorch code (MeNets.py) as docs/models.md describes it: 5x5 stem with max
pooling, shared BatchNorm in the recurrent step, attention after adaptive
pooling, and its own RCN_C, RCN_F and RCN_P (:data:`XIA2020_CODE_MODULES`).

Config keys (`config.model`, see :func:`default_config`): name (one of
:data:`NAMES`), variant, features, pool_size, recurrent_steps, dropout.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from mer_jax.models import fast_ops, layers

VARIANTS = ("paper", "xia2020_code")


@dataclasses.dataclass(frozen=True)
class Modules:
    """Which parameter-free modules a model name switches on, and how they are built."""

    wide: bool = False
    shortcut: bool = False
    # Where the attention unit sits: None, "output" (RCN-A), "stem" (RCN-C),
    # "initial_state" (RCN-F) or "parallel" (RCN-P).
    attention: str | None = None
    # What the attention map is computed from: "rconv_input" (eq. 7's X, the
    # recurrent layer's input) or "network_input" (the released RCN_C).
    attention_input: str = "rconv_input"
    # The wide expansion's streams, one per dilation (eq. 5, Table I).
    dilations: tuple[int, ...] = (1, 2, 3)
    # Stride-1 streams each followed by MaxPool 3 stride 3 pad 1, instead of
    # stride-3 streams (the released RCN_P).
    pooled_streams: bool = False


# Xia et al., TIP 2020, sec. IV-C and V-C-4.
MODULES = {
    "rcn": Modules(),
    "rcn_w": Modules(wide=True),
    "rcn_s": Modules(shortcut=True),
    "rcn_a": Modules(attention="output"),
    "rcn_c": Modules(wide=True, shortcut=True, attention="stem"),
    "rcn_f": Modules(wide=True, shortcut=True, attention="initial_state"),
    "rcn_p": Modules(wide=True, shortcut=True, attention="parallel"),
}
NAMES = tuple(MODULES)

# The released MeNets.py where its classes differ from the paper's reading (docs/models.md).
XIA2020_CODE_MODULES = {
    **MODULES,
    # RCN_C: the map, from the network's input, re-weights the wide stem's output.
    "rcn_c": Modules(wide=True, shortcut=True, attention="stem", attention_input="network_input"),
    # RCN_P: two stride-1 streams (d = 1, 3) with max pooling; the map multiplies
    # the shortcut block's pooled output, as RCN_A's does.
    "rcn_p": Modules(wide=True, shortcut=True, attention="output", dilations=(1, 3), pooled_streams=True),
}
VARIANT_MODULES = {"paper": MODULES, "xia2020_code": XIA2020_CODE_MODULES}


def modules_for(name: str, variant: str) -> Modules:
    """The modules of model `name` in `variant`."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown RCN variant {variant!r}; valid: {VARIANTS}")
    return VARIANT_MODULES[variant][name]


def default_config() -> ml_collections.ConfigDict:
    """The keys the RCN family reads, with the basic setup of Xia et al., TIP 2020, sec. V-A, V-C."""
    return ml_collections.ConfigDict(
        {
            "name": "rcn",  # rcn, rcn_w, rcn_s, rcn_a and the searched rcn_c, rcn_f, rcn_p (sec. V-C-4)
            "variant": "paper",  # paper (Table I) | xia2020_code (the authors' released code)
            "features": 16,  # M, feature maps of every conv layer (sec. V-C)
            "pool_size": 5,  # K, the K x K adaptive average pool before the classifier (sec. V-C)
            "recurrent_steps": 3,  # recurrent convolutions unrolled in the Rconv, one shared conv (sec. V-A)
            "dropout": 0.5,  # after each conv layer (sec. V-A)
        }
    )


def create(config: ml_collections.ConfigDict, *, num_classes: int, input_shape: tuple[int, ...], rngs: nnx.Rngs):
    """The RCN `config.name` for (H, W, C) inputs."""
    if len(input_shape) != 3:
        raise ValueError(f"{config.name} takes (H, W, C) maps; the data have examples of shape {input_shape}")
    return RCN(
        num_classes=num_classes,
        in_features=input_shape[-1],
        features=config.features,
        pool_size=config.pool_size,
        recurrent_steps=config.recurrent_steps,
        modules=modules_for(config.name, config.variant),
        variant=config.variant,
        dropout=config.dropout,
        rngs=rngs,
    )


def wide_stream_channels(features: int, variant: str, streams: int = 3) -> tuple[int, ...]:
    """Channels of the wide expansion's streams, the dilation-1 stream first.

    The paper assigns channels equally (sec. V-A), the first stream taking the
    remainder; the released code gives the dilation-1 stream M/2 and splits the
    other half equally (M/2, M/4, M/4 in RCN_W, RCN_C, RCN_F; M/2, M/2 in RCN_P).
    """
    if variant == "xia2020_code":
        if features % (2 * (streams - 1)):
            raise ValueError(
                f"xia2020_code's {streams}-stream wide expansion needs features divisible by {2 * (streams - 1)}, "
                f"got {features}"
            )
        return (features // 2,) + (features // (2 * (streams - 1)),) * (streams - 1)
    share = features // streams
    return (features - (streams - 1) * share,) + (share,) * (streams - 1)


class Stem(nnx.Module):
    """The first convolutional layer (Conv in Table I), plain or wide-expanded (eq. 5).

    A wide stem has one 3x3 stream per entry of `dilations` (padding = dilation),
    stride 3, or with `pooled_streams` stride 1 followed by MaxPool 3 stride 3
    pad 1 (the released RCN_P): 60 x 60 inputs become 20 x 20 either way.
    """

    def __init__(
        self,
        in_features: int,
        features: int,
        *,
        wide: bool,
        variant: str,
        dropout: float,
        rngs: nnx.Rngs,
        dilations: tuple[int, ...] = (1, 2, 3),
        pooled_streams: bool = False,
    ):
        self.variant = variant
        self.wide = wide
        self.pooled_streams = pooled_streams
        if wide:
            channels = wide_stream_channels(features, variant, len(dilations))
            stride = 1 if pooled_streams else 3
            self.streams = nnx.List(
                [
                    layers.conv(in_features, c, 3, stride=stride, padding=d, dilation=d, rngs=rngs)
                    for d, c in zip(dilations, channels)
                ]
            )
            if variant == "xia2020_code":
                self.stream_norms = nnx.List([layers.batch_norm(c, rngs) for c in channels])
            else:
                self.norm = layers.batch_norm(features, rngs)
        elif variant == "xia2020_code":
            self.block = layers.ConvBNReLU(in_features, features, 5, rngs=rngs)
        else:
            self.block = layers.ConvBNReLU(in_features, features, 3, stride=3, padding=1, rngs=rngs)
        self.dropout = fast_ops.Dropout(dropout)

    def _pool_streams(self, x: jax.Array) -> jax.Array:
        return layers.max_pool(x, (3, 3), padding=1) if self.pooled_streams else x

    def __call__(self, x: jax.Array, *, train: bool, rngs: nnx.Rngs | None) -> jax.Array:
        if not self.wide:
            if self.variant == "xia2020_code":
                x = self.block.pooled(x, (2, 2), train=train)
            else:
                x = self.block(x, train=train)
            return self.dropout(x, deterministic=not train, rngs=rngs)
        if self.variant == "xia2020_code":
            # Released code: each stream conv -> ReLU -> BN (-> MaxPool) -> Dropout, then concatenated.
            outputs = [
                self.dropout(
                    self._pool_streams(norm(jax.nn.relu(stream(x)), use_running_average=not train)),
                    deterministic=not train,
                    rngs=rngs,
                )
                for stream, norm in zip(self.streams, self.stream_norms)
            ]
            return jnp.concatenate(outputs, axis=-1)
        x = jnp.concatenate([stream(x) for stream in self.streams], axis=-1)
        x = self._pool_streams(jax.nn.relu(self.norm(x, use_running_average=not train)))
        return self.dropout(x, deterministic=not train, rngs=rngs)


class RCN(nnx.Module):
    """Shallow RCN of Xia et al., TIP 2020 (Table I) with the W, S and A modules and their combinations.

    The recurrent layer is eq. 3 (``"input"``), or eq. 6 (``"shortcut"``) with S.
    The attention map (eq. 7) is resized to the features it weighs bilinearly in
    the `paper` variant and by PyTorch's nearest rule in `xia2020_code`.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_features: int = 3,
        features: int = 16,
        pool_size: int = 5,
        recurrent_steps: int = 3,
        modules: Modules = Modules(),
        variant: str = "paper",
        dropout: float = 0.5,
        rngs: nnx.Rngs,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"unknown RCN variant {variant!r}; valid: {VARIANTS}")
        self.variant = variant
        self.pool_size = pool_size
        self.attention = modules.attention
        self.attention_input = modules.attention_input
        self.resize = "nearest" if variant == "xia2020_code" else "bilinear"
        self.stem = Stem(
            in_features,
            features,
            wide=modules.wide,
            variant=variant,
            dropout=dropout,
            rngs=rngs,
            dilations=modules.dilations,
            pooled_streams=modules.pooled_streams,
        )
        self.rconv = layers.RecurrentConvLayer(
            features,
            features,
            steps=recurrent_steps,
            connection="shortcut" if modules.shortcut else "input",
            share_norm=variant == "xia2020_code",
            rngs=rngs,
        )
        self.dropout = fast_ops.Dropout(dropout)
        self.classifier = nnx.Linear(
            pool_size * pool_size * features,
            num_classes,
            kernel_init=layers.linear_init,
            rngs=rngs,
        )

    def _attention(self, inputs: jax.Array, stem: jax.Array) -> jax.Array:
        """Eq. 7's map from the Rconv's input (the stem output), or from the network's input (the released RCN_C)."""
        kernel = self.classifier.kernel[...]
        per_class_minmax = self.variant == "xia2020_code"
        if self.attention_input == "network_input":
            return layers.channel_mean_attention_map(inputs, kernel, self.pool_size, per_class_minmax)
        return layers.attention_map(stem, kernel, per_class_minmax)

    def _weigh(self, features: jax.Array, attention: jax.Array) -> jax.Array:
        return layers.apply_attention(features, attention, resize=self.resize)

    def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        stem = self.stem(x, train=train, rngs=rngs)
        attention = self._attention(x, stem) if self.attention else None
        if self.attention == "stem":
            stem = self._weigh(stem, attention)
        if self.attention == "initial_state":
            h = self.rconv(stem, train=train, initial_state_transform=lambda h0: self._weigh(h0, attention))
        else:
            h = self.rconv(stem, train=train)
        if self.attention == "parallel":
            h = h + self._weigh(stem, attention)
        h = layers.max_pool(h, (2, 2))
        h = self.dropout(h, deterministic=not train, rngs=rngs)
        if self.attention == "output" and self.variant == "paper":
            h = self._weigh(h, attention)
        h = layers.adaptive_avg_pool(h, self.pool_size)
        if self.attention == "output" and self.variant == "xia2020_code":
            h = self._weigh(h, attention)
        return self.classifier(h.reshape(h.shape[0], -1))
