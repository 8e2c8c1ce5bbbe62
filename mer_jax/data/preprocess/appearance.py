"""STRCN-A appearance input: difference heat map, top-p% mask, d2 x T x C matrix.

Xia et al., TMM 2019 sec. III-C-1 and IV-A. The heat map of the
magnified clips i is eq. 4,

    E(x, y) = sum_i sum_t d_i(x, y, t),   d_i(x, y, t) = |I~_i(x, y, t) - I~_i(x, y, 0)|,

(differences from each clip's first frame, not between consecutive frames),
the mask keeps the top p = 30% of its values, and each clip, temporally
normalised to T = 30 frames, becomes the matrix of its selected pixels by
frames, d2 x T x C.

The seed sums E over the entire data set, test subjects included; the heat
map here sums whatever clips it is given, so a leave-one-subject-out caller
computes one mask per fold from that fold's training clips only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from mer_jax.data.preprocess.temporal import interpolate

ArrayLike = np.ndarray | jax.Array


def difference_heat_map(clips: Iterable[ArrayLike]) -> np.ndarray:
    """E(x, y) of Xia et al., TMM 2019, eq. 4 over the given clips.

    |I_t - I_0| is averaged over channels, then summed over every frame t of
    every clip (the t = 0 term is 0).

    Args:
      clips: iterable of clips, each (T_i, H, W) or (T_i, H, W, C); lengths may
        differ, the frame size may not. An array (N, T, H, W[, C]) iterates as N
        clips. Pass one fold's training clips for a per-fold mask.

    Returns:
      float64 (H, W) heat map.
    """
    heat = None
    for index, clip in enumerate(clips):
        clip = np.asarray(clip, np.float64)
        if clip.ndim not in (3, 4) or clip.shape[0] < 1:
            raise ValueError(f"clip {index} must have shape (T, H, W) or (T, H, W, C); got shape {clip.shape}")
        diff = np.abs(clip - clip[:1])
        term = (diff.mean(axis=-1) if clip.ndim == 4 else diff).sum(axis=0)
        if heat is not None and term.shape != heat.shape:
            raise ValueError(f"clip {index} has frames of size {term.shape}, earlier clips {heat.shape}")
        heat = term if heat is None else heat + term
    if heat is None:
        raise ValueError("difference_heat_map needs at least one clip")
    return heat


def top_p_mask(heat_map: ArrayLike, p: float = 0.30) -> np.ndarray:
    """Binary mask of the top ``p`` share of heat-map positions (Xia et al., TMM 2019, sec. III-C, IV-A).

    The seed sorts E in descending order and keeps the top p% (III-C), i.e. the
    positions with E(x) > E_p, E_p its (1 - p) percentile (IV-A, "70% percentile"
    for p = 30%). This keeps exactly k = floor(p H W) positions, the k largest
    values, so d2 is known from the frame size alone (921 for 64 x 48 faces);
    ties at the threshold go to the earlier position in row-major order. Without
    ties this is the set E(x) > E_p with E_p the ``higher`` (1 - p) quantile.

    Args:
      heat_map: (H, W) array.
      p: share of positions kept, in (0, 1].

    Returns:
      bool (H, W) mask with floor(p H W) (at least one) True entries.
    """
    heat = np.asarray(heat_map)
    if heat.ndim != 2:
        raise ValueError(f"heat_map must have shape (H, W); got shape {heat.shape}")
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p must be in (0, 1]; got {p}")
    keep = max(1, math.floor(p * heat.size + 1e-9))
    order = np.argsort(-heat, axis=None, kind="stable")
    mask = np.zeros(heat.size, bool)
    mask[order[:keep]] = True
    return mask.reshape(heat.shape)


def appearance_matrix(clip: ArrayLike, mask: np.ndarray, num_frames: int = 30) -> jax.Array:
    """STRCN-A input V_1 in R^{d2 x T x C} of one clip (Xia et al., TMM 2019, sec. III-C-1).

    The clip is normalised to ``num_frames`` frames (:func:`temporal.interpolate`),
    and column t holds frame t's pixels where ``mask`` is True, in row-major order.

    Args:
      clip: (T0, H, W) or (T0, H, W, C) magnified frames; C = 1 for the former.
      mask: bool (H, W), e.g. from :func:`top_p_mask`; d2 = mask.sum().
      num_frames: T (Xia et al., TMM 2019: 30).

    Returns:
      (d2, num_frames, C) float array.
    """
    clip = jnp.asarray(clip)
    mask = np.asarray(mask, bool)
    if clip.ndim not in (3, 4):
        raise ValueError(f"clip must have shape (T, H, W) or (T, H, W, C); got shape {clip.shape}")
    if mask.shape != clip.shape[1:3]:
        raise ValueError(f"mask shape {mask.shape} does not match the frame size {clip.shape[1:3]}")
    if not mask.any():
        raise ValueError("mask selects no pixel")
    frames = interpolate(clip if clip.ndim == 4 else clip[..., None], num_frames)
    pixels = frames.reshape(num_frames, -1, frames.shape[-1])[:, np.flatnonzero(mask)]
    return jnp.transpose(pixels, (1, 0, 2))
