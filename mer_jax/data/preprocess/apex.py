"""Apex frame spotting by the difference deviation (Xia et al., TMM 2019, eq. 5).

Xia et al., TMM 2019 sec. III-C locates the apex, "the frame ...
which [has] the greatest changes from the first frame", as

    t_a = argmax_t sigma(t),   sigma(t) = std(I(x, y, t) - I(x, y, 0))

where std is taken over every pixel (and channel) of the difference image.
docs/design.md (Preprocessing): searched inside the annotated onset..offset where
there is one; used where a dataset has no apex (SMIC) or an apex cell is
missing. The seed applies it to the magnified frames; this module takes
whatever frames it is given.
"""

from __future__ import annotations

import operator

import numpy as np


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4) or frames.shape[0] < 1:
        raise ValueError(f"frames must have shape (T, H, W) or (T, H, W, C) with T >= 1; got shape {frames.shape}")
    return frames


def _check_index(name: str, index: int, num_frames: int) -> int:
    try:
        index = operator.index(index)
    except TypeError:
        raise ValueError(f"{name} must be an integer frame index; got {index!r}") from None
    if not 0 <= index < num_frames:
        raise ValueError(f"{name}={index} is outside the clip's frame indices 0..{num_frames - 1}")
    return index


def difference_curve(frames: np.ndarray, reference: int = 0) -> np.ndarray:
    """sigma(t) = std(I_t - I_reference) for every frame t (Xia et al., TMM 2019, eq. 5).

    Args:
      frames: (T, H, W) or (T, H, W, C) clip.
      reference: index of I_0, the frame every other one is compared with.

    Returns:
      float64 (T,) curve; it is 0 at ``reference``.
    """
    frames = _check_frames(frames)
    reference = _check_index("reference", reference, len(frames))
    base = frames[reference].astype(np.float64)
    return np.array([np.std(frame.astype(np.float64) - base) for frame in frames])


def spot_apex(frames: np.ndarray, onset: int | None = None, offset: int | None = None) -> int:
    """Index of the apex frame by Xia et al., TMM 2019, eq. 5.

    I_0 is ``frames[onset]`` (``frames[0]`` without an onset) and the argmax
    runs over onset..offset inclusive (the whole clip where either is None).
    Indices are 0-based positions in ``frames``, not dataset frame numbers.
    Ties go to the earliest frame, so a clip without change returns the onset.

    Args:
      frames: (T, H, W) or (T, H, W, C) clip.
      onset, offset: optional annotated bounds of the expression.

    Returns:
      The apex index, onset <= apex <= offset.
    """
    frames = _check_frames(frames)
    first = 0 if onset is None else _check_index("onset", onset, len(frames))
    last = len(frames) - 1 if offset is None else _check_index("offset", offset, len(frames))
    if first > last:
        raise ValueError(f"onset={first} is after offset={last}")
    curve = difference_curve(frames, reference=first)
    return first + int(np.argmax(curve[first : last + 1]))
