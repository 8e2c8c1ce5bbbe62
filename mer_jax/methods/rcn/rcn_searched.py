"""RCN with any placement of the search space of Xia et al., TIP 2020 (sec. IV-C-4, Fig. 6), and its supernet.

The search space is a chain of nodes, each a choice between two candidates
(Fig. 6(a): the modules "paralleled in each computation node (hidden state)"):

============================  ======================  =============================================
node                          candidates              where it sits (Fig. 6)
============================  ======================  =============================================
``stem``                      ``plain``, ``wide``     the Conv layer: standard, or the wide
                                                      expansion W (eq. 5)
``attention_stem``            ``none``, ``attention``  the attention unit A (eq. 7) between Conv and
                                                      Rconv, in cascade (Fig. 6(b); RCN-C)
``recurrence``                ``plain``, ``shortcut``  the Rconv's unfolded states: RCN's recurrence
                                                      (eq. 3: the layer input plus the last
                                                      state), or the shortcut connection S
                                                      (eq. 6: plus every earlier state)
``attention_state_n``         ``none``, ``attention``  A on the unfolded state n = 0 .. steps of the
                                                      Rconv (Fig. 6(c), the one-, two- and
                                                      three-hop attention; state 0 is RCN-F's)
``attention_parallel``        ``none``, ``attention``  A in parallel with the Rconv, the two branches
                                                      summed (RCN-P)
``attention_output``          ``none``, ``attention``  A after the Rconv's max pool (RCN-A)
============================  ======================  =============================================

The attention map is that of rcn.py: computed once, by eq. 7, from the stem's
output and the classifier's weights, and multiplied into the features at every
position where the unit is placed ("multi-hop": the stem's map applied one,
two, three layers later).

`RCNSearched` (model name ``rcn_searched``) is one discrete architecture, a
`Placement`: config keys ``stem``, ``recurrence`` and ``attention`` (the tuple
of positions where the unit is placed: ``stem``, ``state_0`` .. ``state_{steps}``,
``parallel``, ``output``). Its parameters have rcn.py's names and shapes, and
the placements of rcn.py's named models (`NAMED_PLACEMENTS`) compute what
those models compute with the same weights (rcn_c: wide, shortcut, attention
at ``stem``; rcn_f: at ``state_0``; rcn_p: at ``parallel``; rcn_a: plain, plain,
at ``output``). Only rcn.py's ``paper`` variant (Table I) is built.

`RCNSupernet` holds every candidate at once and mixes each node's two by eq. 8,
F_{k+1} = sum_i alpha_{k+1,i} / sum_j alpha_{k+1,j} M_i(F_k), its alphas held as
`ArchParam` variables (not `nnx.Param`: the weight optimiser and
`count_params` never see them). mer_jax/methods/rcn/search.py trains it.

Config keys (`config.model`, see :func:`default_config`): name, stem,
recurrence, attention, features, pool_size, recurrent_steps, dropout.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from mer_jax.models import fast_ops, layers
from mer_jax.methods.rcn.rcn import Stem

NAMES = ("rcn_searched",)
STEMS = ("plain", "wide")
RECURRENCES = ("plain", "shortcut")
ATTENTION = ("none", "attention")


def attention_positions(recurrent_steps: int) -> tuple[str, ...]:
    """Where the attention unit may sit, in forward order."""
    return ("stem", *(f"state_{n}" for n in range(recurrent_steps + 1)), "parallel", "output")


def search_nodes(recurrent_steps: int) -> dict[str, tuple[str, str]]:
    """Node name -> its two candidates, in forward order (the table of the module docstring)."""
    nodes = {"stem": STEMS, "attention_stem": ATTENTION, "recurrence": RECURRENCES}
    for position in attention_positions(recurrent_steps)[1:]:
        nodes[f"attention_{position}"] = ATTENTION
    return nodes


@dataclasses.dataclass(frozen=True)
class Placement:
    """One discrete architecture of the search space."""

    stem: str = "plain"
    recurrence: str = "plain"
    attention: tuple[str, ...] = ()

    def check(self, recurrent_steps: int) -> None:
        if self.stem not in STEMS:
            raise ValueError(f"model.stem must be one of {STEMS}, got {self.stem!r}")
        if self.recurrence not in RECURRENCES:
            raise ValueError(f"model.recurrence must be one of {RECURRENCES}, got {self.recurrence!r}")
        valid = attention_positions(recurrent_steps)
        unknown = [p for p in self.attention if p not in valid]
        if unknown or len(set(self.attention)) != len(self.attention):
            raise ValueError(
                f"model.attention must be distinct positions among {valid} "
                f"(recurrent_steps={recurrent_steps}), got {tuple(self.attention)}"
            )

    def choice(self, recurrent_steps: int) -> dict[str, str]:
        """The candidate of every search node."""
        choice = {"stem": self.stem, "recurrence": self.recurrence}
        for position in attention_positions(recurrent_steps):
            choice[f"attention_{position}"] = "attention" if position in self.attention else "none"
        return {node: choice[node] for node in search_nodes(recurrent_steps)}

    @classmethod
    def from_choice(cls, choice: dict[str, str]) -> Placement:
        attention = tuple(
            node.removeprefix("attention_")
            for node, candidate in choice.items()
            if node.startswith("attention_") and candidate == "attention"
        )
        return cls(stem=choice["stem"], recurrence=choice["recurrence"], attention=attention)

    def model_config(self) -> dict:
        return {"stem": self.stem, "recurrence": self.recurrence, "attention": tuple(self.attention)}


# rcn.py's models (variant "paper") as placements: same weights, same outputs.
NAMED_PLACEMENTS = {
    "rcn": Placement(),
    "rcn_w": Placement(stem="wide"),
    "rcn_s": Placement(recurrence="shortcut"),
    "rcn_a": Placement(attention=("output",)),
    "rcn_c": Placement("wide", "shortcut", ("stem",)),  # top-1 of sec. V-C-4
    "rcn_f": Placement("wide", "shortcut", ("state_0",)),  # top-2, the paper's final choice
    "rcn_p": Placement("wide", "shortcut", ("parallel",)),  # top-3
}


def named_model(placement: Placement) -> str | None:
    """The rcn.py model name whose architecture `placement` is, if any."""
    key = dataclasses.replace(placement, attention=tuple(sorted(placement.attention)))
    for name, named in NAMED_PLACEMENTS.items():
        if dataclasses.replace(named, attention=tuple(sorted(named.attention))) == key:
            return name
    return None


def default_config() -> ml_collections.ConfigDict:
    """The keys rcn_searched reads; the sizes are rcn.py's basic setup (Xia et al., TIP 2020, sec. V-A, V-C)."""
    return ml_collections.ConfigDict(
        {
            "name": "rcn_searched",
            "stem": "plain",  # plain | wide (W, eq. 5)
            "recurrence": "plain",  # plain (eq. 3) | shortcut (S, eq. 6)
            # Attention unit (eq. 7) positions: stem, state_0 .. state_{recurrent_steps}, parallel, output
            "attention": (),
            "features": 16,  # M, feature maps of every conv layer (sec. V-C)
            "pool_size": 5,  # K, the K x K adaptive average pool before the classifier (sec. V-C)
            "recurrent_steps": 3,  # recurrent convolutions unrolled in the Rconv (sec. V-A)
            "dropout": 0.5,  # after each conv layer (sec. V-A)
        }
    )


def create(config: ml_collections.ConfigDict, *, num_classes: int, input_shape: tuple[int, ...], rngs: nnx.Rngs):
    """The RCN of the placement `config.stem`, `config.recurrence`, `config.attention` for (H, W, C) inputs."""
    if len(input_shape) != 3:
        raise ValueError(f"{config.name} takes (H, W, C) maps; the data have examples of shape {input_shape}")
    return RCNSearched(
        num_classes=num_classes,
        in_features=input_shape[-1],
        features=config.features,
        pool_size=config.pool_size,
        recurrent_steps=config.recurrent_steps,
        placement=Placement(config.stem, config.recurrence, tuple(config.attention)),
        dropout=config.dropout,
        rngs=rngs,
    )


def eq8_weights(alpha: jax.Array) -> jax.Array:
    """Eq. 8's mixing weights alpha_i / sum_j alpha_j (not a softmax: alpha is kept positive by the search)."""
    return alpha / alpha.sum(axis=-1, keepdims=True)


class ArchParam(nnx.Variable):
    """An architecture parameter alpha of eq. 8: trained on validation data, never by the weight optimiser."""


class _Placements(nnx.Module):
    """The forward pass shared by a discrete architecture and the supernet.

    `_weights()` gives each node's two candidate weights: Python 0/1 for a
    discrete architecture (the unused candidate is never computed), eq. 8's
    normalised alphas for the supernet.
    """

    def _build(self, *, num_classes, features, pool_size, recurrent_steps, dropout, rngs):
        self.pool_size = pool_size
        self.positions = attention_positions(recurrent_steps)
        # The connection given here is unused: `_recurrence` unrolls the layer itself.
        self.rconv = layers.RecurrentConvLayer(
            features, features, steps=recurrent_steps, connection="shortcut", share_norm=False, rngs=rngs
        )
        self.dropout = fast_ops.Dropout(dropout)
        self.classifier = nnx.Linear(
            pool_size * pool_size * features, num_classes, kernel_init=layers.linear_init, rngs=rngs
        )

    def _weights(self) -> dict:
        raise NotImplementedError

    def _stem(self, x, weights, *, train, rngs):
        raise NotImplementedError

    @staticmethod
    def _attend(features: jax.Array, attention: jax.Array, weights) -> jax.Array:
        """An attention node: w_none * X + w_attention * A(X) (eq. 8)."""
        w_none, w_attention = weights
        if isinstance(w_attention, int):
            return layers.apply_attention(features, attention) if w_attention else features
        return w_none * features + w_attention * layers.apply_attention(features, attention)

    def _recurrence(self, x: jax.Array, attention: jax.Array, weights: dict, *, train: bool) -> jax.Array:
        """The Rconv unrolled (layers.RecurrentConvLayer's states) with the recurrence node and the state attention.

        The candidates are rcn.py's recurrences: ``plain``, eq. 3, F_n = W_r * (x + h_{n-1})
        (connection "input"), and ``shortcut``, eq. 6, F_n = W_r * s_{n-1} with
        s_{n-1} = x + h_0 + ... + h_{n-1} (connection "shortcut"); h_n = g(F_n),
        g = ReLU(BN_n(.)). They share every weight, so eq. 8 mixes the unfolded
        convolution's output F_n before the shared g, with one convolution:
        w_plain W_r * (x + h) + w_shortcut W_r * s = W_r * (w_plain (x + h) + w_shortcut s)
        (the weights sum to 1, so the bias enters once). An attended state
        (node attention_state_n) replaces h_n in everything that follows.
        """
        rconv = self.rconv
        w_plain, w_shortcut = weights["recurrence"]
        h = jax.nn.relu(rconv.feedforward_norm(rconv.feedforward(x), use_running_average=not train))
        h = self._attend(h, attention, weights["attention_state_0"])
        shortcut = x + h
        for step in range(rconv.steps):
            if isinstance(w_shortcut, int):
                z = rconv.recurrent(shortcut if w_shortcut else x + h)
            else:
                z = rconv.recurrent(w_plain * (x + h) + w_shortcut * shortcut)
            h = jax.nn.relu(rconv.recurrent_norms[step](z, use_running_average=not train))
            h = self._attend(h, attention, weights[f"attention_state_{step + 1}"])
            shortcut = shortcut + h
        return h

    def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        weights = self._weights()
        x = self._stem(x, weights["stem"], train=train, rngs=rngs)
        attention = layers.attention_map(x, self.classifier.kernel[...], per_class_minmax=False)
        x = self._attend(x, attention, weights["attention_stem"])
        h = self._recurrence(x, attention, weights, train=train)
        w_none, w_parallel = weights["attention_parallel"]
        if isinstance(w_parallel, int):
            h = (h + layers.apply_attention(x, attention)) if w_parallel else h
        else:  # w_none Rconv(x) + w_parallel (Rconv(x) + A(x))
            h = h + w_parallel * layers.apply_attention(x, attention)
        h = layers.max_pool(h, (2, 2))
        h = self.dropout(h, deterministic=not train, rngs=rngs)
        h = self._attend(h, attention, weights["attention_output"])
        h = layers.adaptive_avg_pool(h, self.pool_size)
        return self.classifier(h.reshape(h.shape[0], -1))


class RCNSearched(_Placements):
    """One architecture of the search space; rcn.py's parameter names, so rcn.py's weights load into it."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_features: int = 3,
        features: int = 16,
        pool_size: int = 5,
        recurrent_steps: int = 3,
        placement: Placement = Placement(),
        dropout: float = 0.5,
        rngs: nnx.Rngs,
    ):
        placement.check(recurrent_steps)
        self.placement = placement
        self.stem = Stem(in_features, features, wide=placement.stem == "wide", variant="paper", dropout=dropout,
                         rngs=rngs)
        self._build(num_classes=num_classes, features=features, pool_size=pool_size,
                    recurrent_steps=recurrent_steps, dropout=dropout, rngs=rngs)

    def _weights(self) -> dict:
        nodes = search_nodes(self.rconv.steps)
        return {
            node: tuple(int(candidate == chosen) for candidate in nodes[node])
            for node, chosen in self.placement.choice(self.rconv.steps).items()
        }

    def _stem(self, x, weights, *, train, rngs):
        return self.stem(x, train=train, rngs=rngs)


class RCNSupernet(_Placements):
    """Every candidate of every node, mixed by eq. 8 with the alphas in `self.alphas` (node -> ArchParam (2,))."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_features: int = 3,
        features: int = 16,
        pool_size: int = 5,
        recurrent_steps: int = 3,
        dropout: float = 0.5,
        alpha_init: float = 1.0,
        rngs: nnx.Rngs,
    ):
        if alpha_init <= 0:
            raise ValueError(f"alpha_init must be positive (eq. 8 divides by the alphas' sum), got {alpha_init}")
        self.stem_plain = Stem(in_features, features, wide=False, variant="paper", dropout=dropout, rngs=rngs)
        self.stem_wide = Stem(in_features, features, wide=True, variant="paper", dropout=dropout, rngs=rngs)
        self._build(num_classes=num_classes, features=features, pool_size=pool_size,
                    recurrent_steps=recurrent_steps, dropout=dropout, rngs=rngs)
        self.alphas = nnx.Dict(
            {node: ArchParam(jnp.full((len(c),), alpha_init, jnp.float32))
             for node, c in search_nodes(recurrent_steps).items()}
        )

    @property
    def nodes(self) -> dict[str, tuple[str, str]]:
        return search_nodes(self.rconv.steps)

    def _weights(self) -> dict:
        return {node: tuple(eq8_weights(self.alphas[node][...])) for node in self.nodes}

    def _stem(self, x, weights, *, train, rngs):
        """The stem node: w_plain Conv(x) + w_wide W(x), each stem with its own weights and BatchNorm."""
        w_plain, w_wide = weights
        return w_plain * self.stem_plain(x, train=train, rngs=rngs) + w_wide * self.stem_wide(x, train=train, rngs=rngs)

    def copy_into(self, model: RCNSearched) -> RCNSearched:
        """Gives `model` this supernet's weights of its candidates (its stem, the shared Rconv and classifier)."""
        stem = self.stem_wide if model.placement.stem == "wide" else self.stem_plain
        for target, source in ((model.stem, stem), (model.rconv, self.rconv), (model.classifier, self.classifier)):
            nnx.update(target, nnx.state(source))
        return model
