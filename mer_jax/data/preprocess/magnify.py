"""Eulerian video magnification (EVM) of face clips, batched, in JAX.

Xia et al., TMM 2019 sec. III-B amplifies the subtle motion of a
clip with EVM (its ref. [58]: Wu et al., SIGGRAPH 2012), eq. 3:

    I~(x, t) = f(x) + (1 + alpha) delta(t) grad f(x),

i.e. each band of a spatial Laplacian pyramid is filtered in time by one IIR
band-pass filter (k = 1) and the filtered signal, multiplied by alpha, is added
back before the pyramid is collapsed. Sec. IV-A fixes the numbers: filter
interval [0.05, 0.4], alpha = 8 for testing (5..14 for training, sec. III-E),
and alpha = min(alpha, alpha_c) with alpha_c = lambda / (8 delta) - 1 and
lambda = 16.

Temporal filter. Xia et al., TMM 2019 calls [0.05, 0.4] cut-off frequencies "in Hz"; they
are read here as the two coefficients (r2 = 0.05, r1 = 0.4) of EVM's IIR
variant, the filter the seed names, which EVM parameterises this way: two
first-order low-pass filters run over time,

    lp_r[t] = (1 - r) lp_r[t-1] + r x[t],   lp_r[0] = x[0],

and the band is lp_high - lp_low. The coefficients are dimensionless (per
frame), so the pass band does not depend on the frame rate. That difference
peaks near 0.026 cycles/frame with gain G ~ 0.82 (phase ~ +4 deg), falls to 0 at
DC and to 0.4/1.6 - 0.05/1.95 ~ 0.22 at Nyquist (a first-order filter leaks
there). Here the band is divided by G, so that a motion at the band's peak
comes out scaled by (1 + alpha) as eq. 3 states. EVM's code does not divide:
its alpha equals G * alpha here (EVM's alpha = 8 is alpha ~ 6.5 here).

Wavelength bound (documented rule). Following EVM, alpha is meant for motions
delta small enough that (1 + alpha) delta < lambda_c / 8 at the cut-off
wavelength lambda_c = ``wavelength_cutoff``; so delta = lambda_c / (8 (1 + alpha)).
Pyramid level l (0 = finest, the last level is the low-pass residual) is
sampled every 2^l pixels and its band carries wavelengths from 2^(l + 1) (its
Nyquist) to about 2^(l + 3) pixels; the middle (geometric) one, lambda_l =
2^(l + 2), stands for it. Its factor is the seed's bound at that wavelength,

    alpha_l = clip(min(alpha, lambda_l / (8 delta) - 1), 0)
            = clip(min(alpha, (1 + alpha) lambda_l / lambda_c - 1), 0).

With alpha = 8, lambda_c = 16: alpha_l = 1.25, 3.5, 8, 8, ... Every level, the
residual included, gets its alpha_l ("all images of each band are amplified",
sec. III-B). EVM's released code instead takes lambda from the frame size
(diagonal / 3 at the residual, halved per finer level), doubles alpha_l
("exaggeration") and zeroes the finest band and the residual.

Since the pyramid and the temporal filter are both linear, the filter runs once
on the frames and the pyramid is built of the filtered frames; this equals
filtering each pyramid level. Channels are magnified independently (no
chrominance attenuation).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

ArrayLike = np.ndarray | jax.Array

# Burt-Adelson 5-tap binomial kernel, the Gaussian of the Laplacian pyramid.
_KERNEL = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def _blur(x: jax.Array, axis: int, gain: float = 1.0) -> jax.Array:
    """5-tap Gaussian along ``axis`` with mirror (reflect) borders."""
    pad = [(0, 0)] * x.ndim
    pad[axis] = (2, 2)
    padded = jnp.pad(x, pad, mode="reflect")
    n = x.shape[axis]
    taps = [jax.lax.slice_in_dim(padded, k, k + n, axis=axis) for k in range(5)]
    return gain * sum(w * tap for w, tap in zip(_KERNEL, taps))


def _reduce(x: jax.Array) -> jax.Array:
    """Blur and keep every other row and column of (..., H, W, C)."""
    return _blur(_blur(x, -3), -2)[..., ::2, ::2, :]


def _expand(x: jax.Array, height: int, width: int) -> jax.Array:
    """Upsample (..., h, w, C) to (..., height, width, C): zero insertion, then 4x the blur."""
    up = jnp.zeros(x.shape[:-3] + (height, width, x.shape[-1]), x.dtype)
    up = up.at[..., ::2, ::2, :].set(x)
    return _blur(_blur(up, -3, 2.0), -2, 2.0)


def _check_levels(height: int, width: int, levels: int) -> None:
    if levels < 1:
        raise ValueError(f"levels must be >= 1; got {levels}")
    side = min(height, width)
    for level in range(levels - 1):
        if side < 3:
            raise ValueError(
                f"{levels} pyramid levels need each of levels 0..{levels - 2} to be at least 3 pixels "
                f"on a side; a {height}x{width} frame is {side} at level {level}: use fewer levels"
            )
        side = -(-side // 2)


def laplacian_pyramid(frames: jax.Array, levels: int) -> list[jax.Array]:
    """Laplacian pyramid of (..., H, W, C) frames: ``levels - 1`` bands, then the low-pass residual."""
    _check_levels(frames.shape[-3], frames.shape[-2], levels)
    pyramid = []
    for _ in range(levels - 1):
        smaller = _reduce(frames)
        pyramid.append(frames - _expand(smaller, frames.shape[-3], frames.shape[-2]))
        frames = smaller
    pyramid.append(frames)
    return pyramid


def collapse_pyramid(pyramid: list[jax.Array]) -> jax.Array:
    """Inverse of :func:`laplacian_pyramid` (exact: the same expand is added back)."""
    frames = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        frames = band + _expand(frames, band.shape[-3], band.shape[-2])
    return frames


def level_alphas(alpha: ArrayLike, levels: int, wavelength_cutoff: float = 16.0) -> jax.Array:
    """Per-level factors alpha_l by the module's wavelength rule (Xia et al., TMM 2019, sec. IV-A bound).

    Args:
      alpha: scalar or (B,) magnification factors.
      levels: number of pyramid levels, the residual included.
      wavelength_cutoff: lambda_c in pixels (Xia et al., TMM 2019: lambda = 16).

    Returns:
      (levels,) + alpha.shape array; row l is alpha_l for wavelength 2^(l + 2).
    """
    alpha = jnp.asarray(alpha, jnp.float32)
    wavelengths = 2.0 ** jnp.arange(2, levels + 2, dtype=jnp.float32)
    wavelengths = wavelengths.reshape((levels,) + (1,) * alpha.ndim)
    bound = (1.0 + alpha) * wavelengths / wavelength_cutoff - 1.0
    return jnp.clip(jnp.minimum(alpha, bound), 0.0, None)


def _peak_gain(low: float, high: float) -> float:
    """max over frequency of |lp_high - lp_low| (frequency response on a fine grid)."""
    z = np.exp(-2j * np.pi * np.linspace(0.0, 0.5, 8193))
    response = high / (1 - (1 - high) * z) - low / (1 - (1 - low) * z)
    return float(np.abs(response).max())


def iir_bandpass(clips: ArrayLike, low: float = 0.05, high: float = 0.4) -> jax.Array:
    """EVM's IIR temporal band-pass along axis 1 of (B, T, ...) clips (Xia et al., TMM 2019, sec. III-B).

    ``low`` and ``high`` are the coefficients r of the two first-order low-pass
    filters (see the module docstring), both started at the first frame, so the
    output is 0 at t = 0 and for a static clip. The output is divided by the
    filter's peak gain (unit gain at the band's peak frequency).
    """
    if not 0.0 < low < high <= 1.0:
        raise ValueError(f"need 0 < low < high <= 1 (IIR coefficients); got low={low}, high={high}")
    clips = jnp.asarray(clips)
    frames = jnp.moveaxis(clips, 1, 0)
    scale = 1.0 / _peak_gain(low, high)

    def step(state, frame):
        fast, slow = state
        fast = (1.0 - high) * fast + high * frame
        slow = (1.0 - low) * slow + low * frame
        return (fast, slow), scale * (fast - slow)

    _, band = jax.lax.scan(step, (frames[0], frames[0]), frames)
    return jnp.moveaxis(band, 0, 1)


def _amplified(video, band, alpha, wavelength_cutoff, levels):
    """``video`` plus its band-passed ``band`` amplified per pyramid level: eq. 3 for (B, T, H, W, C) frames."""
    pyramid = laplacian_pyramid(band, levels)
    factors = level_alphas(alpha, levels, wavelength_cutoff).astype(video.dtype)
    pyramid = [factor.reshape(factor.shape + (1,) * 4) * level for factor, level in zip(factors, pyramid)]
    return video + collapse_pyramid(pyramid)


@functools.partial(jax.jit, static_argnames=("low", "high", "levels"))
def _magnify(video, alpha, wavelength_cutoff, low, high, levels):
    return _amplified(video, iir_bandpass(video, low, high), alpha, wavelength_cutoff, levels)


@functools.partial(jax.jit, static_argnames=("low", "high", "levels"))
def _magnify_frame(video, frame, alpha, wavelength_cutoff, low, high, levels):
    # The pyramid is spatial, frame by frame: frame t needs the band of frame t only (the IIR scan is cheap).
    band = jax.lax.dynamic_index_in_dim(iir_bandpass(video, low, high), frame, axis=1)
    still = jax.lax.dynamic_index_in_dim(video, frame, axis=1)
    return _amplified(still, band, alpha, wavelength_cutoff, levels)[:, 0]


def magnify(
    clips: ArrayLike,
    alpha: ArrayLike,
    *,
    low: float = 0.05,
    high: float = 0.4,
    levels: int = 4,
    wavelength_cutoff: float = 16.0,
    frame: int | None = None,
) -> jax.Array:
    """Motion-magnify a batch of clips by EVM (Xia et al., TMM 2019, eq. 3, sec. IV-A numbers).

    Output = clip + collapse(alpha_l * pyramid_l(bandpass(clip))), see the
    module docstring for the filter and the per-level rule. A motion at a
    temporal frequency where the (normalised) filter's response is H, and at
    wavelengths where alpha_l = alpha, comes out scaled by |1 + alpha H|, which
    is ~ 1 + alpha at the band's peak (~0.026 cycles/frame).

    Compiled once per clip shape, dtype, ``low``, ``high`` and ``levels``;
    ``alpha`` and ``wavelength_cutoff`` are traced, and the function may be
    called inside ``jax.jit`` (then ``alpha`` may be a tracer).

    Args:
      clips: (B, T, H, W) or (B, T, H, W, C) frames (integers are cast to float32).
      alpha: scalar, or (B,) to magnify each clip by its own factor; a batch of
        one clip with a (B,) alpha gives that clip magnified by each factor, the
        band-pass and the pyramid computed once (e.g. alphas 5..14 for training
        augmentation, Xia et al., TMM 2019, sec. III-E).
      low, high: IIR coefficients of the band (Xia et al., TMM 2019: [0.05, 0.4]).
      levels: pyramid levels including the low-pass residual.
      wavelength_cutoff: lambda_c in pixels of the alpha bound (Xia et al., TMM 2019: 16).
      frame: None magnifies every frame; an index t magnifies frame t only (the
        same values as ``magnify(...)[:, t]``, without the pyramids of the other
        frames: STRCN-G's onset -> apex flow needs the apex alone, the onset
        being unchanged by EVM). Traced: one compilation serves every t.

    Returns:
      Float array shaped like ``clips``, or without its time axis for a ``frame``.
    """
    clips = jnp.asarray(clips)
    if clips.ndim not in (4, 5):
        raise ValueError(f"clips must have shape (B, T, H, W) or (B, T, H, W, C); got shape {clips.shape}")
    if not jnp.issubdtype(clips.dtype, jnp.floating):
        clips = clips.astype(jnp.float32)
    video = clips if clips.ndim == 5 else clips[..., None]
    alpha = jnp.asarray(alpha, jnp.float32)
    if alpha.ndim > 1 or (alpha.ndim == 1 and video.shape[0] not in (1, alpha.shape[0])):
        raise ValueError(f"alpha must be a scalar or have shape ({video.shape[0]},); got shape {alpha.shape}")
    _check_levels(video.shape[2], video.shape[3], levels)
    cutoff = jnp.asarray(wavelength_cutoff, jnp.float32)
    if frame is None:
        out = _magnify(video, alpha, cutoff, low, high, levels)
    elif 0 <= frame < video.shape[1]:
        out = _magnify_frame(video, jnp.asarray(frame, jnp.int32), alpha, cutoff, low, high, levels)
    else:
        raise ValueError(f"frame {frame} is outside the clips' {video.shape[1]} frames")
    return out if clips.ndim == 5 else out[..., 0]
