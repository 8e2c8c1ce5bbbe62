"""Spatiotemporal recurrent convolutional networks, STRCN-A and STRCN-G (Xia et al., TMM 2019, Table I).

Conv1 5x5 -> Pool1 -> RCL2 .. RCL5 (each 1 feed-forward 1x1 and 3 recurrent 3x3
convolutions, Xia et al., TMM 2019, eq. 6-7) with max pools between them -> global average
pool -> linear softmax classifier (eq. 8). Every layer has M feature maps.
Fewer RCLs are obtained by removing RCL5, RCL4, ... in turn (sec. IV-E-4).

Config keys (`config.model`, see :func:`default_config`): name (strcn_a or
strcn_g), variant (only ``paper``: no code was released), features,
num_rcls, recurrent_steps, dropout.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from mer_jax.models import layers

# Pool1 .. Pool4 of Table I; Pool5 is the global average pool.
POOLS = {
    "appearance": ((4, 1), (4, 1), (4, 4), (2, 2)),  # STRCN-A, input d2 x T x 3
    "geometric": ((4, 4), (4, 4), (4, 4), (2, 2)),  # STRCN-G, input W x H x 2
}
MAX_RCLS = 4
CONNECTIVITY = {"strcn_a": "appearance", "strcn_g": "geometric"}
NAMES = tuple(CONNECTIVITY)


def default_config() -> ml_collections.ConfigDict:
    """The keys STRCN reads, with Table I's architecture."""
    return ml_collections.ConfigDict(
        {
            "name": "strcn_g",  # strcn_a (appearance, sec. III-C-1) | strcn_g (geometric, sec. III-C-2)
            "variant": "paper",  # the only one: the authors released no code
            "features": 64,  # M, feature maps of every layer (Fig. 5 sweeps it; the text fixes none)
            "num_rcls": MAX_RCLS,  # RCL2..RCL5 (Table I); fewer remove RCL5, RCL4, ... (sec. IV-E-4)
            "recurrent_steps": 3,  # 3 recurrent 3x3 convolutions per RCL (Table I)
            "dropout": 0.0,  # before the classifier; the paper uses none
        }
    )


def create(config: ml_collections.ConfigDict, *, num_classes: int, input_shape: tuple[int, ...], rngs: nnx.Rngs):
    """STRCN-A or STRCN-G (`config.name`) for (H, W, C) inputs."""
    if config.variant != "paper":
        raise ValueError(f"{config.name} has only the 'paper' variant (no released code), got {config.variant!r}")
    if len(input_shape) != 3:
        raise ValueError(f"{config.name} takes (H, W, C) inputs; the data have examples of shape {input_shape}")
    return STRCN(
        num_classes=num_classes,
        connectivity=CONNECTIVITY[config.name],
        in_features=input_shape[-1],
        features=config.features,
        num_rcls=config.num_rcls,
        recurrent_steps=config.recurrent_steps,
        dropout=config.dropout,
        rngs=rngs,
    )


class STRCN(nnx.Module):
    """STRCN with appearance-based (A) or geometric-based (G) temporal connectivity."""

    def __init__(
        self,
        *,
        num_classes: int,
        connectivity: str,
        in_features: int,
        features: int = 64,
        num_rcls: int = MAX_RCLS,
        recurrent_steps: int = 3,
        dropout: float = 0.0,
        rngs: nnx.Rngs,
    ):
        if connectivity not in POOLS:
            raise ValueError(f"unknown STRCN connectivity {connectivity!r}; valid: {tuple(POOLS)}")
        if not 0 <= num_rcls <= MAX_RCLS:
            raise ValueError(f"STRCN has 0 to {MAX_RCLS} recurrent layers (Xia et al., TMM 2019, sec. IV-E-4), got {num_rcls}")
        self.pools = POOLS[connectivity]
        self.conv1 = layers.ConvBNReLU(in_features, features, 5, rngs=rngs)
        self.rcls = nnx.List(
            [
                layers.RecurrentConvLayer(
                    features, features, steps=recurrent_steps, connection="feedforward", share_norm=False, rngs=rngs
                )
                for _ in range(num_rcls)
            ]
        )
        self.dropout = nnx.Dropout(dropout)
        self.classifier = nnx.Linear(features, num_classes, kernel_init=layers.linear_init, rngs=rngs)

    def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        """Logits of (B, H, W, C) inputs; uint8 inputs (the strcn_a build's pixels) are scaled to [0, 1]."""
        if x.dtype == jnp.uint8:
            x = x.astype(jnp.float32) / 255.0
        x = layers.max_pool(self.conv1(x, train=train), self.pools[0])
        for index, rcl in enumerate(self.rcls):
            x = rcl(x, train=train)
            if index + 1 < len(self.pools):
                x = layers.max_pool(x, self.pools[index + 1])
        x = self.dropout(x.mean(axis=(1, 2)), deterministic=not train, rngs=rngs)
        return self.classifier(x)
