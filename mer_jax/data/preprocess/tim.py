"""The temporal interpolation model (TIM): a clip resampled to a fixed number of frames along its graph embedding.

Zhou et al., CVPR 2011 ("Towards a practical lipreading system") view the n
frames of a clip as the nodes of a path graph (frame t joined to frame t + 1)
and embed the graph on a continuous curve by the non-trivial eigenvectors of
its Laplacian; a linear map from the curve back to the frames, solved from the
n frames themselves, then gives a frame for every point of the curve. Pfister
et al., ICCV 2011 use it to bring micro-expression clips of any length to a
common one, and Wang et al., Neurocomputing 2018, sec. 4.2 ("temporal
interpolation model (TIM) to temporally interpolate the sample video clip to
normalized frame number of 32 and 64") to build their TIM32 and TIM64 sets.

The mathematics, as this module reads it (frame positions s = 1..n):

1. Embedding. The path graph's Laplacian L = D - A (A_{s,s+1} = A_{s+1,s} = 1)
   has the eigenvectors y_k(s) = sin(pi k s / n + pi (n - k) / (2 n))
   = cos(pi k (s - 1/2) / n), eigenvalue 2 - 2 cos(pi k / n), k = 0..n-1;
   k = 0 is the constant (trivial) one. The n - 1 others, read as functions
   of a continuous s, put frame s at the point F(s) = (y_1(s), ..., y_{n-1}(s))
   of a curve in R^(n-1) (:func:`curve`).
2. Linear map. With X the frames as columns (one row per pixel and channel),
   x_bar their mean and Y = [F(1) ... F(n)] ((n-1) x n), the map W with
   X - x_bar = W Y is solved by least squares, W = (X - x_bar) Y^T (Y Y^T)^-1.
   It is exact: each y_k (k >= 1) is orthogonal to the constant, so Y's rows
   span exactly the zero-mean signals on n nodes, where the rows of
   X - x_bar lie. (Y Y^T = n/2 I, so W = 2/n (X - x_bar) Y^T: the clip's
   DCT-II coefficients.)
3. New frames: x(s) = W F(s) + x_bar at num_frames evenly spaced s from 1 to
   n (Zhou et al.'s t = s / n from 1/n to 1), so the first and the last
   frames are kept exactly and the rest are spread evenly along the curve's
   parameter.

Together, x(s) = x_bar + sum_k a_k cos(pi k (s - 1/2) / n): TIM is the cosine
series (trigonometric) interpolant of the clip through its n frames, each
pixel on its own. Every output frame is a fixed weighted sum of the input
frames, weights depending on n and num_frames only (:func:`weights`), so
:func:`interpolate` applies one (num_frames x n) matrix and never forms W,
which would cost n - 1 frames of memory: memory and time are linear in the
pixels. Zhou et al. first reduce the frames by PCA; keeping every component,
as here, changes nothing (X - x_bar has rank at most n - 1).

What it does to a clip, measured (tests/test_tim.py):

- At num_frames = n it gives back the clip; the first and last frames are
  always kept; a clip still in time stays still.
- It is not linear interpolation. A ramp (frames a + s b) is reproduced at
  the input positions but bends between them, because its cosine series is
  that of a triangle wave, kinked at the clip's ends: the largest departure
  from the straight line, over n = 2..300 and any output position, is
  0.079 |b| (n = 3); at most 0.060 |b| for n >= 4, tending to 0.049 |b|
  for long clips, in the first and last intervals. Beyond them it is at most
  0.030 |b| (n = 5; 0.0165 |b| for long clips), and 1e-4 |b| over the middle
  third of a 64-frame clip. The interpolated ramp still rises monotonically.
- n = 2: x(s) = x_bar + (x_1 - x_bar) sqrt(2) cos(pi (s - 1/2) / 2), a cosine
  ease between the two frames (their mean at the midpoint, within 0.021 |b|
  of the straight line), not a special case. n = 1 has no non-trivial
  eigenvector: every output frame is the one frame.
- Between frames it can overshoot the input's range (ringing); stored uint8
  clips are clipped back to 0..255 (:mod:`mer_jax.data.clips.materialize`).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

ArrayLike = np.ndarray | jax.Array


def curve(length: int, positions: ArrayLike) -> np.ndarray:
    """(length - 1, P) float64: the path graph's embedding F(s) at frame ``positions`` s (Zhou et al., CVPR 2011).

    Row k - 1 is y_k(s) = sin(pi k s / n + pi (n - k) / (2 n)), n = ``length``, k = 1..n-1: at s = 1..n the
    Laplacian's non-trivial eigenvectors, in between the curve through them.
    """
    k = np.arange(1, length, dtype=np.float64)[:, None]
    s = np.asarray(positions, np.float64).reshape(1, -1)
    return np.sin(np.pi * k * s / length + np.pi * (length - k) / (2 * length))


def positions(length: int, num_frames: int) -> np.ndarray:
    """The ``num_frames`` frame positions s, evenly spaced from 1 to ``length`` (one frame: the first)."""
    return np.linspace(1.0, float(length), num_frames)


def weights(length: int, num_frames: int) -> np.ndarray:
    """(num_frames, length) float64: output frame j = sum_s weights[j, s] * input frame s.

    The three steps of the module docstring in matrix form: with Y = F(1..n), C = I - 1 1^T / n (mean
    removal), W = X C Y^T (Y Y^T)^-1 and x(s) = W F(s) + X 1 / n, so the matrix is
    F(s_j)^T (Y Y^T)^-1 Y C + 1 / n. Each row sums to 1.
    """
    if length < 1 or num_frames < 1:
        raise ValueError(f"need length >= 1 and num_frames >= 1; got {length} and {num_frames}")
    mean = np.full((num_frames, length), 1.0 / length)
    if length == 1:
        return mean
    embedded = curve(length, np.arange(1, length + 1))  # Y, (n - 1, n)
    centred = embedded - embedded.mean(axis=1, keepdims=True)  # Y C (= Y: each y_k sums to zero)
    solved = np.linalg.solve(embedded @ embedded.T, centred)  # (Y Y^T)^-1 Y C
    return curve(length, positions(length, num_frames)).T @ solved + mean


@partial(jax.jit, static_argnames="num_frames")
def interpolate(clips: ArrayLike, num_frames: int) -> jax.Array:
    """A clip, or a batch of clips of one length, resampled to ``num_frames`` frames by TIM.

    Zhou et al., CVPR 2011; Pfister et al., ICCV 2011; Wang et al., Neurocomputing 2018, sec. 4.2 (TIM32,
    TIM64). See the module docstring for the reading: output frame j is the clip's cosine-series
    interpolant at s_j = 1 + j (T - 1) / (num_frames - 1), so frames 0 and num_frames - 1 are the
    clip's first and last.

    Args:
      clips: (T, H, W, C) frames, or (..., T, H, W, C) clips (time is axis -4), T >= 1; any dtype
        (integers are converted to float32).
      num_frames: number of output frames, >= 1.

    Returns:
      (..., num_frames, H, W, C) float array (the input's float dtype, else float32).

    Raises:
      ValueError: num_frames < 1, fewer than 4 axes, or no frame (T = 0); the message names the value.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1; got {num_frames}")
    clips = jnp.asarray(clips)
    if clips.ndim < 4:
        raise ValueError(f"expected a clip (T, H, W, C) or clips (..., T, H, W, C); got shape {clips.shape}")
    length = clips.shape[-4]
    if length < 1:
        raise ValueError(f"a clip needs at least one frame; got T = {length} (shape {clips.shape})")
    if not jnp.issubdtype(clips.dtype, jnp.floating):
        clips = clips.astype(jnp.float32)
    matrix = jnp.asarray(weights(length, num_frames), clips.dtype)
    return jnp.einsum("jt,...thwc->...jhwc", matrix, clips, precision=jax.lax.Precision.HIGHEST)
