"""The stored variants of a magnified build, and STRCN's x50 training augmentation as extra rows of a Dataset
(Xia et al., TMM 2019, sec. III-E).

Sec. III-E enlarges the training set 50 times: every clip magnified with ten
factors alpha = 5..14, times five frame-keeping levels (a random 100, 90, 80,
70 or 60% of its frames). The magnified builds (``flow_strcn_g``, ``strcn_a``)
store each clip's variants as the leading axis of ``x``, level by level (100%
first), alpha by alpha within a level (:func:`stored_variants`): its first
``len(alphas)`` rows are the clip as recorded, one per alpha.

``config.data.augment`` makes :func:`mer_jax.data.builds.load_built` return one row per
variant: the clip's own row (its test variant: every frame, the test alpha
``data.alpha``, sec. IV-A: 8) keeps the clip's sample id, every other variant is
one more row named ``<sample id>@keep<percent>_alpha<alpha>``, and
``Dataset.extra[CLIP]`` names each row's clip. :func:`clip_of_row` turns that
into row indices, from which :func:`mer_jax.core.protocols.over_rows` cuts the folds:
a fold holds out (and is scored on) clips' own rows only, and trains on every
variant of the clips it does not hold out.
"""

from __future__ import annotations

import numpy as np

from mer_jax.core.dataset import Dataset

CLIP = "clip"  # Dataset.extra key: the sample id of the clip each row was made from


def stored_variants(alphas, keep_fractions=()) -> list[tuple[float, float]]:
    """(keep fraction, alpha) of each stored row of a clip, in storage order: level by level, alpha by alpha.

    ``keep_fractions`` () or None (a build from before frame keeping) means the
    clip as recorded only (one level, 100%).
    """
    return [(float(keep), float(alpha)) for keep in (tuple(keep_fractions or ()) or (1.0,)) for alpha in alphas]


def variant_suffix(keep: float, alpha: float) -> str:
    """What an augmented row's sample id adds to its clip's: ``@keep90_alpha5``."""
    return f"@keep{round(100 * keep)}_alpha{alpha:g}"


def rows(stored: np.ndarray, variants: list[tuple[float, float]], alpha: float, augment: bool):
    """(sample-id suffix, array) of the rows a stored clip gives.

    The clip's own row first (suffix ''): its variant that keeps every frame at
    ``alpha``; with ``augment``, then every other stored variant in storage order.
    A build of one unmagnified variant per clip (no ``variants``) gives ``stored`` itself.

    Args:
      stored: the clip's ``x`` as built, one variant per row of its leading axis.
      variants: :func:`stored_variants` of the build.
      alpha: the test-time factor (Xia et al., TMM 2019, sec. IV-A: 8).
      augment: add the other variants as rows.

    Raises:
      ValueError: ``alpha`` is not stored; the stored array does not hold one row per variant.
    """
    if not variants:
        return [("", stored)]
    if (1.0, float(alpha)) not in variants:
        raise ValueError(
            f"alpha {alpha} is not among the stored variants' alphas {sorted({a for _, a in variants})}"
        )
    if len(stored) != len(variants):
        raise ValueError(f"a stored clip has {len(stored)} rows; the build's variants are {len(variants)}")
    own = variants.index((1.0, float(alpha)))
    out = [("", stored[own])]
    if augment:
        out += [(variant_suffix(*variant), stored[i]) for i, variant in enumerate(variants) if i != own]
    return out


def clip_of_row(dataset: Dataset) -> np.ndarray | None:
    """(N,) the row of the clip each row was made from (a clip's own row: itself), or None without augmented rows.

    Raises:
      ValueError: a row names a clip that has no row of its own (its sample id is the first named).
    """
    if CLIP not in dataset.extra:
        return None
    clips = dataset.extra[CLIP]
    own = np.flatnonzero(clips == dataset.sample_id)
    if not len(own):
        raise ValueError(f"no row is a clip's own row (Dataset.extra[{CLIP!r}] never equals the sample id)")
    order = own[np.argsort(dataset.sample_id[own])]
    position = np.minimum(np.searchsorted(dataset.sample_id[order], clips), len(order) - 1)
    found = dataset.sample_id[order][position] == clips
    if not found.all():
        first = int(np.flatnonzero(~found)[0])
        raise ValueError(
            f"row {str(dataset.sample_id[first])!r} was made from clip {str(clips[first])!r}, "
            "which has no row of its own"
        )
    return order[position]
