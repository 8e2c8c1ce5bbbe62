"""Classification losses: cross entropy, Xia et al.'s (TMM 2019) balanced loss, focal loss.

Every loss takes logits ``(B, C)`` and integer labels ``(B,)`` and returns the
mean over the batch as a scalar. All are pure ``jax.numpy`` and jit-safe.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

LossFn = Callable[[jax.Array, jax.Array], jax.Array]


def _check_shapes(logits: jax.Array, labels: jax.Array) -> None:
    """Raise ValueError unless logits is (B, C) and labels is (B,)."""
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (batch, classes), got shape {logits.shape}")
    if labels.shape != logits.shape[:1]:
        raise ValueError(
            f"labels must have shape ({logits.shape[0]},) to match logits {logits.shape}, "
            f"got shape {labels.shape}"
        )


def _true_class_log_prob(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """log softmax(logits)[i, labels[i]] for every sample, shape (B,)."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(log_p, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross entropy, -log p_{y_i}, over the batch."""
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    _check_shapes(logits, labels)
    return -jnp.mean(_true_class_log_prob(logits, labels))


def balanced_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Xia et al.'s (TMM 2019) multi-class balanced loss (sec. III-E, eq. 9-10).

    With p = softmax(logits) and y the one-hot label, eq. 9 defines
    p_t = p^y (1 - p)^(1 - y) elementwise over classes, so the loss of sample i
    is l_i = -sum_c log p_t[i, c] = -log p[i, y_i] - sum_{c != y_i} log(1 - p[i, c]).
    Eq. 10 weights it by beta_i, "inversely proportional to the sample's class
    ratio in batch data": beta_i = B / (C_b * n_{y_i}), with n_c the count of
    class c in the batch and C_b the number of classes present. The betas sum to
    B and every present class carries the same total weight; on a class-balanced
    batch all betas are 1. Returns mean_i beta_i * l_i.

    log(1 - p_c) is computed exactly as logsumexp_{j != c} z_j - logsumexp_j z_j,
    so it stays finite (with finite gradients) even when p_c rounds to 1.
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    _check_shapes(logits, labels)
    batch, num_classes = logits.shape
    if num_classes < 2:
        raise ValueError(f"balanced_cross_entropy needs at least 2 classes, got {num_classes}")
    one_hot = jax.nn.one_hot(labels, num_classes, dtype=logits.dtype)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    not_self = ~jnp.eye(num_classes, dtype=bool)
    log_rest = jax.nn.logsumexp(
        jnp.broadcast_to(logits[:, None, :], (batch, num_classes, num_classes)),
        axis=-1,
        where=not_self[None],
    )
    log_not_p = log_rest - jax.nn.logsumexp(logits, axis=-1, keepdims=True)
    per_sample = -jnp.sum(one_hot * log_p + (1.0 - one_hot) * log_not_p, axis=-1)

    counts = jnp.sum(one_hot, axis=0)
    classes_present = jnp.sum(counts > 0)
    beta = batch / (classes_present * (one_hot @ counts))
    return jnp.mean(beta * per_sample)


def focal_loss(logits: jax.Array, labels: jax.Array, gamma: float = 2.0) -> jax.Array:
    """Mean focal loss -(1 - p_t)^gamma log p_t, p_t the true class's softmax
    probability (the loss Aouayeb et al., MLSP 2019 trains with). gamma = 0 gives cross entropy."""
    if gamma < 0:
        raise ValueError(f"focal_loss gamma must be >= 0, got {gamma}")
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    _check_shapes(logits, labels)
    log_pt = _true_class_log_prob(logits, labels)
    # 1 - p_t via expm1 for precision; floored at the smallest normal float so
    # that d/dx x^gamma stays finite when p_t rounds to 1.
    one_minus_pt = jnp.maximum(-jnp.expm1(log_pt), jnp.finfo(log_pt.dtype).tiny)
    return -jnp.mean(one_minus_pt**gamma * log_pt)


_LOSSES: dict[str, LossFn] = {
    "cross_entropy": cross_entropy,
    "balanced": balanced_cross_entropy,
    "focal": focal_loss,
}


def get_loss(name: str) -> LossFn:
    """The loss function registered under ``name`` ('cross_entropy', 'balanced', 'focal')."""
    try:
        return _LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid names: {sorted(_LOSSES)}") from None
