"""The shallow recurrent convolutional network of Xia et al., TIP 2020 and its parameter-free modules.

RCN (Xia et al., TIP 2020, Table I, Fig. 4): Conv -> Rconv (1 feed-forward 1x1, recurrent 3x3
unrolled with shared weights, MaxPool 2) -> adaptive AvgPool K x K -> linear.
The modules add no learnable parameters (sec. IV-C):

- W, wide expansion: the stem conv becomes three dilated streams (d = 1, 2, 3)
  concatenated to M channels (eq. 5).
- S, shortcut connection: each recurrent state's input is the sum of the layer
  input and all earlier states (eq. 6).
- A, attention unit: a class-activation map from the classifier's own weights
  (eq. 7) multiplied into the features.

The searched combinations of sec. V-C-4 (all use W and S):

- ``rcn_c`` (top-1): attention between the wide stem and the shortcut Rconv, in cascade.
- ``rcn_f`` (top-2, the paper's final choice): attention on the Rconv's initial state.
- ``rcn_p`` (top-3): attention in parallel with the shortcut Rconv, the two
  branches summed as in the search's weighted sum (eq. 8).

`variant="paper"` follows Table I; `variant="xia2020_code"` follows the authors'
released PyTorch code as docs/design.md describes it (5x5 stem with max pooling,
shared BatchNorm in the recurrent step, attention after adaptive pooling).

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
    """Which parameter-free modules a model name switches on."""

    wide: bool = False
    shortcut: bool = False
    # Where the attention unit sits: None, "output" (RCN-A), "stem" (RCN-C),
    # "initial_state" (RCN-F) or "parallel" (RCN-P).
    attention: str | None = None


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
        modules=MODULES[config.name],
        variant=config.variant,
        dropout=config.dropout,
        rngs=rngs,
    )


def wide_stream_channels(features: int, variant: str) -> tuple[int, int, int]:
    """Channels of the dilation-1, 2, 3 streams of the wide expansion.

    The paper assigns channels equally (sec. V-A), the first stream taking the
    remainder; the released code gives M/2, M/4, M/4.
    """
    if variant == "xia2020_code":
        if features % 4:
            raise ValueError(f"xia2020_code's wide expansion needs features divisible by 4, got {features}")
        return features // 2, features // 4, features // 4
    third = features // 3
    return features - 2 * third, third, third


class Stem(nnx.Module):
    """The first convolutional layer (Conv in Table I), plain or wide-expanded."""

    def __init__(self, in_features: int, features: int, *, wide: bool, variant: str, dropout: float, rngs: nnx.Rngs):
        self.variant = variant
        self.wide = wide
        if wide:
            channels = wide_stream_channels(features, variant)
            self.streams = nnx.List(
                [
                    layers.conv(in_features, c, 3, stride=3, padding=d, dilation=d, rngs=rngs)
                    for d, c in zip((1, 2, 3), channels)
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

    def __call__(self, x: jax.Array, *, train: bool, rngs: nnx.Rngs | None) -> jax.Array:
        if not self.wide:
            if self.variant == "xia2020_code":
                x = self.block.pooled(x, (2, 2), train=train)
            else:
                x = self.block(x, train=train)
            return self.dropout(x, deterministic=not train, rngs=rngs)
        if self.variant == "xia2020_code":
            # Released code: each stream conv -> ReLU -> BN -> Dropout, then concatenated.
            outputs = [
                self.dropout(
                    norm(jax.nn.relu(stream(x)), use_running_average=not train), deterministic=not train, rngs=rngs
                )
                for stream, norm in zip(self.streams, self.stream_norms)
            ]
            return jnp.concatenate(outputs, axis=-1)
        x = jnp.concatenate([stream(x) for stream in self.streams], axis=-1)
        x = jax.nn.relu(self.norm(x, use_running_average=not train))
        return self.dropout(x, deterministic=not train, rngs=rngs)


class RCN(nnx.Module):
    """Shallow RCN of Xia et al., TIP 2020 (Table I) with the W, S and A modules and their combinations."""

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
        self.stem = Stem(in_features, features, wide=modules.wide, variant=variant, dropout=dropout, rngs=rngs)
        if modules.shortcut:
            connection = "shortcut"
        else:
            connection = "input" if variant == "xia2020_code" else "feedforward"
        self.rconv = layers.RecurrentConvLayer(
            features,
            features,
            steps=recurrent_steps,
            connection=connection,
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

    def _attention(self, x: jax.Array) -> jax.Array:
        return layers.attention_map(
            x, self.classifier.kernel[...], per_class_minmax=self.variant == "xia2020_code"
        )

    def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        x = self.stem(x, train=train, rngs=rngs)
        attention = self._attention(x) if self.attention else None
        if self.attention == "stem":
            x = layers.apply_attention(x, attention)
        if self.attention == "initial_state":
            h = self.rconv(x, train=train, initial_state_transform=lambda h0: layers.apply_attention(h0, attention))
        else:
            h = self.rconv(x, train=train)
        if self.attention == "parallel":
            h = h + layers.apply_attention(x, attention)
        h = layers.max_pool(h, (2, 2))
        h = self.dropout(h, deterministic=not train, rngs=rngs)
        if self.attention == "output" and self.variant == "paper":
            h = layers.apply_attention(h, attention)
        h = layers.adaptive_avg_pool(h, self.pool_size)
        if self.attention == "output" and self.variant == "xia2020_code":
            h = layers.apply_attention(h, attention)
        return self.classifier(h.reshape(h.shape[0], -1))
