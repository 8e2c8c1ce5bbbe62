"""STRCN-A's heat-map mask, applied when training reads a build: over every clip (the paper's) or per fold.

Xia et al., TMM 2019, sec. III-C-1: the difference heat map E of eq. 4 is summed
over the magnified clips "on entire datasets", and its top p of pixels (sec.
IV-A: 30%) select each clip's d2 x T x C matrix. The held-out subjects' clips
are in that sum, so a held-out subject shapes the inputs of the fold that holds
it out. The `strcn_a` build stores the magnified frames; ``config.data.mask``
says which clips the mask is computed from:

  paper     every clip of the build: :func:`paper`, applied by
            :func:`mer_jax.data.builds.load`, so the trainer sees d2 x T x C matrices.
  per_fold  each fold's training clips only: ``data.load`` keeps the frames and
            each clip's heat term (``Dataset.extra['heat']``), and
            :func:`training_inputs` stacks one copy of the clips per fold, masked
            by that fold's mask. Fold f trains and tests on its own copy only
            (``Folds.only_train``), so nothing of its held-out subject reaches
            its inputs; the report scores each prediction as its clip's.

Memory: per_fold holds F copies, F x N x d2 x T x C values (CASME II LOSO:
26 x 256 x 921 x 30 x 3, 2.06 GiB in float32; docs/reproduction.md has the
figures). docs/design.md, Preprocessing: STRCN-A matrices.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from mer_jax.core.dataset import Dataset
from mer_jax.core.protocols import Folds
from mer_jax.data.preprocess import appearance
from mer_jax.data import variants

MASKS = ("paper", "per_fold")
# The heat map is that of the clips magnified at the test alpha (Xia et al., TMM 2019, sec. IV-A: 8).
HEAT_ALPHA = 8.0
HEAT = "heat"  # Dataset.extra key: each clip's term of eq. 4, (H, W)


def clip_heat(stored: np.ndarray, alphas: list[float]) -> np.ndarray:
    """One stored `strcn_a` clip's term of eq. 4 (float32 (H, W)), from its frames magnified at
    :data:`HEAT_ALPHA` (the middle alpha if the build lacks it), every frame kept: the first
    ``len(alphas)`` stored rows (:func:`mer_jax.data.variants.stored_variants`)."""
    reference = alphas.index(HEAT_ALPHA) if HEAT_ALPHA in alphas else len(alphas) // 2
    return appearance.difference_heat_map([stored[reference]]).astype(np.float32)


def matrices(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, d2, T, C): each clip's d2 x T x C matrix (Xia et al., TMM 2019, sec. III-C-1) of the pixels `mask` keeps.

    `frames` are (N, T, H, W, C) temporally normalised clips; row r of a matrix
    is the r-th kept pixel in row-major order, as
    :func:`mer_jax.data.preprocess.appearance.appearance_matrix`.
    """
    if frames.ndim != 5 or frames.shape[2:4] != mask.shape:
        raise ValueError(
            f"the heat-map mask ({mask.shape}) selects pixels of (N, T, H, W, C) frames; got x of shape "
            f"{frames.shape}: data.mask applies to strcn_a builds only"
        )
    return np.ascontiguousarray(frames[:, :, mask].transpose(0, 2, 1, 3))


def _without_heat(extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: value for key, value in extra.items() if key != HEAT}


def mask_of(dataset: Dataset, rows: np.ndarray, top_p: float) -> np.ndarray:
    """The top-`top_p` mask of the heat map summed over the clips `rows` (boolean or indices) of `dataset`."""
    if HEAT not in dataset.extra:
        raise ValueError(
            "the data set holds no heat terms (Dataset.extra['heat']): data.mask applies to strcn_a builds only"
        )
    return appearance.top_p_mask(dataset.extra[HEAT][rows].astype(np.float64).sum(axis=0), top_p)


def own_rows(dataset: Dataset) -> np.ndarray:
    """(N,) bool: each clip's own row, not its augmented variants (:mod:`mer_jax.data.variants`): eq. 4 counts a clip once."""
    clip_of_row = variants.clip_of_row(dataset)
    return np.ones(dataset.num_samples, bool) if clip_of_row is None else clip_of_row == np.arange(dataset.num_samples)


def paper(dataset: Dataset, top_p: float) -> Dataset:
    """Every row masked by the heat map of every clip, held-out subjects included (Xia et al., TMM 2019, eq. 4)."""
    mask = mask_of(dataset, own_rows(dataset), top_p)
    return dataclasses.replace(dataset, x=matrices(dataset.x, mask), extra=_without_heat(dataset.extra))


def fold_masks(dataset: Dataset, folds: Folds, top_p: float) -> np.ndarray:
    """(F, H, W) each fold's mask from the heat of the clips it trains on, each clip once (:func:`own_rows`)."""
    clips = own_rows(dataset)
    return np.stack([mask_of(dataset, train & clips, top_p) for train in folds.train_masks])


def per_fold(dataset: Dataset, folds: Folds, top_p: float) -> tuple[Dataset, Folds, np.ndarray]:
    """One copy of the clips per fold, copy f masked by fold f's mask; fold f trains and tests on copy f only.

    Returns (the F x N rows, their folds, the clip row of each row). Copy f's
    sample ids end in '@<fold name>'.
    """
    masks = fold_masks(dataset, folds, top_p)
    n, f = dataset.num_samples, folds.num_folds
    frames = dataset.x.shape[1]
    x = np.empty((f, n, int(masks[0].sum()), frames, dataset.x.shape[-1]), dataset.x.dtype)
    for copy, mask in zip(x, masks, strict=True):  # one copy at a time: F copies, not twice that
        copy[...] = matrices(dataset.x, mask)
    stacked = dataclasses.replace(dataset, extra=_without_heat(dataset.extra)).copies(x, folds.names)
    return stacked, folds.on_copies(), np.tile(np.arange(n), f)


def training_inputs(
    config: ml_collections.ConfigDict, dataset: Dataset, folds: Folds
) -> tuple[Dataset, Folds, np.ndarray]:
    """What the folds train on, their folds and the clip row of each row: unchanged unless `data.mask` is per_fold.

    Raises ValueError for an unknown `data.mask`, and for per_fold with
    `train.final_model` (a model of every subject has nothing held out: its
    mask is the paper's; train it with `data.mask='paper'`).
    """
    mask = config.data.get("mask", "paper")
    if mask not in MASKS:
        raise ValueError(f"unknown data.mask {mask!r}; valid: {MASKS}")
    if mask == "paper":
        return dataset, folds, np.arange(dataset.num_samples)
    if config.train.final_model:
        raise ValueError(
            "data.mask='per_fold' has no final model: a model of every subject holds nothing out, so its mask is "
            "the paper's; train it with data.mask='paper' or set train.final_model=False"
        )
    return per_fold(dataset, folds, config.data.get("top_p", 0.30))
