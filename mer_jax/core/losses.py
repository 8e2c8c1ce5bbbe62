"""Classification losses: cross entropy, Xia et al.'s (TMM 2019) balanced loss, focal loss.

Every loss takes logits ``(..., C)`` and integer labels ``(...)`` (a batch
axis first: ``(B, C)`` and ``(B,)``, or e.g. ``(B, R, C)`` and ``(B, R)`` for a
label per region) and returns the mean over every label as a scalar; the
balanced loss weights classes within one batch and takes ``(B, C)`` only.
All are pure ``jax.numpy`` and jit-safe, :func:`inverse_frequency` too.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

LossFn = Callable[[jax.Array, jax.Array], jax.Array]


def _check_shapes(logits: jax.Array, labels: jax.Array) -> None:
    """Raise ValueError unless logits is (B, ..., C) and labels is (B, ...)."""
    if logits.ndim < 2:
        raise ValueError(f"logits must have shape (batch, ..., classes), got shape {logits.shape}")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels must have shape {logits.shape[:-1]} to match logits {logits.shape}, got shape {labels.shape}"
        )


def _take_class(values: jax.Array, labels: jax.Array) -> jax.Array:
    """values[..., labels[...]]: each label's entry of the last axis, shape labels.shape."""
    return jnp.take_along_axis(values, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]


def _true_class_log_prob(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """log softmax(logits)[..., labels[...]] for every label, shape labels.shape."""
    return _take_class(jax.nn.log_softmax(logits, axis=-1), labels)


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
    if logits.ndim != 2:
        raise ValueError(f"balanced_cross_entropy weights the classes of one batch: logits must be "
                         f"(batch, classes), got shape {logits.shape}")
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


def focal_loss(
    logits: jax.Array, labels: jax.Array, gamma: float = 2.0, alpha: jax.Array | None = None
) -> jax.Array:
    """Mean focal loss -alpha_y (1 - p_y)^gamma log p_y over every label (Aouayeb et al., MLSP 2019, eq. 2).

    p_y is the true class's softmax probability. Eq. 2 (Lin et al., ICCV 2017,
    eq. 4-5) is written for two classes, with weight alpha on class 1 and
    1 - alpha on class 0; weighting each label by its own class's alpha_y is
    that loss for any number of classes, and with ``alpha = (1 - a, a)`` it is
    eq. 2 exactly. ``alpha`` (None: every weight 1) broadcasts to the logits'
    (..., C): (C,) one weight per class, (R, C) per region for (B, R, C)
    logits; :func:`inverse_frequency` computes it as the paper does. gamma = 0
    and no alpha give cross entropy; gamma = 2 is Lin et al.'s value.
    """
    if gamma < 0:
        raise ValueError(f"focal_loss gamma must be >= 0, got {gamma}")
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    _check_shapes(logits, labels)
    log_pt = _true_class_log_prob(logits, labels)
    # 1 - p_t via expm1 for precision; floored at the smallest normal float so
    # that d/dx x^gamma stays finite when p_t rounds to 1.
    one_minus_pt = jnp.maximum(-jnp.expm1(log_pt), jnp.finfo(log_pt.dtype).tiny)
    loss = -(one_minus_pt**gamma) * log_pt
    if alpha is not None:
        alpha = jnp.asarray(alpha, logits.dtype)
        try:
            fits = jnp.broadcast_shapes(alpha.shape, logits.shape) == logits.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"focal_loss alpha of shape {alpha.shape} does not broadcast to the logits' {logits.shape}: "
                "give one weight per class, (classes,) or (..., classes)"
            )
        loss = loss * _take_class(jnp.broadcast_to(alpha, logits.shape), labels)
    return jnp.mean(loss)


def inverse_frequency(labels: jax.Array, num_classes: int, mask: jax.Array | None = None) -> jax.Array:
    """Focal-loss class weights alpha from the inverse class frequency of `labels` (Aouayeb et al., MLSP 2019, eq. 2).

    `labels` (N, ...) are counted over their first axis, separately at every
    other position: (N,) labels give alpha (C,), (N, R) per-region labels give
    (R, C). `mask` (N,) keeps only the rows counted (a fold's training
    examples). alpha_c = (1 / n_c) / sum_k (1 / n_k) over the classes k
    present: the weights sum to 1 and lie in [0, 1] as eq. 2 requires (for two
    classes they are its alpha and 1 - alpha). A class with no example gets 0:
    no term of the loss uses it. With no example at all every weight is 0.
    """
    labels = jnp.asarray(labels)
    counts = jax.nn.one_hot(labels, num_classes)
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.shape != labels.shape[:1]:
            raise ValueError(f"inverse_frequency mask must have shape {labels.shape[:1]}, got {mask.shape}")
        counts = counts * mask.astype(counts.dtype).reshape(mask.shape + (1,) * (counts.ndim - 1))
    counts = counts.sum(axis=0)
    inverse = jnp.where(counts > 0, 1.0 / jnp.maximum(counts, 1.0), 0.0)
    total = inverse.sum(axis=-1, keepdims=True)
    return jnp.where(total > 0, inverse / jnp.where(total > 0, total, 1.0), 0.0)


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
