"""Temporal normalisation and random frame keeping of clips.

Xia et al., TMM 2019: STRCN-A feeds T = 30 temporally normalised
frames (sec. III-C, IV-A; the seed does not name the method, docs/design.md fixes
linear interpolation along time), and training clips are augmented by keeping
a random 100/90/80/70/60% of their frames (sec. III-E).
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

ArrayLike = np.ndarray | jax.Array

# Xia et al., TMM 2019, sec. III-E: five levels of random frame selection (x5 augmentation).
KEEP_FRACTIONS = (1.0, 0.9, 0.8, 0.7, 0.6)


@partial(jax.jit, static_argnames="num_frames")
def interpolate(clip: ArrayLike, num_frames: int) -> jax.Array:
    """Resample a clip to ``num_frames`` frames by linear interpolation along time.

    Output frame j sits at time j (T - 1) / (num_frames - 1) of the input, so the
    first and last frames are kept exactly (a single output frame is the first).

    Args:
      clip: (T, ...) frames, T >= 1; any trailing shape (H, W) or (H, W, C).
      num_frames: number of output frames, >= 1.

    Returns:
      (num_frames, ...) float array.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1; got {num_frames}")
    clip = jnp.asarray(clip)
    if clip.ndim < 1 or clip.shape[0] < 1:
        raise ValueError(f"clip must have at least one frame along axis 0; got shape {clip.shape}")
    if not jnp.issubdtype(clip.dtype, jnp.floating):
        clip = clip.astype(jnp.float32)
    last = clip.shape[0] - 1
    times = jnp.linspace(0.0, last, num_frames)
    before = jnp.clip(jnp.floor(times).astype(jnp.int32), 0, last)
    after = jnp.minimum(before + 1, last)
    weight = (times - before).astype(clip.dtype).reshape((num_frames,) + (1,) * (clip.ndim - 1))
    return (1 - weight) * clip[before] + weight * clip[after]


def kept_frame_indices(num_frames: int, fraction: float, rng: np.random.Generator | jax.Array) -> np.ndarray | jax.Array:
    """Sorted indices of the frames :func:`keep_random_frames` keeps.

    round(fraction * num_frames) frames (at least min(2, num_frames)): the first,
    the last, and a uniformly random subset of the others without repetition.

    Args:
      num_frames: clip length T >= 1.
      fraction: share of frames kept, in (0, 1].
      rng: a numpy Generator or a JAX PRNG key; the same rng state gives the
        same indices.

    Returns:
      Sorted int indices: numpy for a Generator, a JAX array for a key.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1; got {num_frames}")
    keep = min(num_frames, max(2, math.floor(fraction * num_frames + 0.5)))
    if keep == num_frames:
        return np.arange(num_frames)
    inner = np.arange(1, num_frames - 1)
    if isinstance(rng, np.random.Generator):
        chosen = np.sort(rng.choice(inner, keep - 2, replace=False))
        return np.concatenate([[0], chosen, [num_frames - 1]])
    chosen = jnp.sort(jax.random.choice(rng, jnp.asarray(inner), (keep - 2,), replace=False))
    return jnp.concatenate([jnp.array([0]), chosen, jnp.array([num_frames - 1])])


def keep_random_frames(clip: ArrayLike, fraction: float, rng: np.random.Generator | jax.Array) -> jax.Array:
    """Keep a random ``fraction`` of a clip's frames in order (Xia et al., TMM 2019, sec. III-E augmentation).

    The first and last frames are always kept; see :func:`kept_frame_indices`.

    Args:
      clip: (T, ...) frames.
      fraction: one of :data:`KEEP_FRACTIONS` (any value in (0, 1] works).
      rng: numpy Generator or JAX PRNG key.

    Returns:
      (round(fraction T), ...) frames as a JAX array.
    """
    clip = jnp.asarray(clip)
    if clip.ndim < 1:
        raise ValueError(f"clip must have a time axis; got shape {clip.shape}")
    return clip[jnp.asarray(kept_frame_indices(clip.shape[0], fraction, rng))]
