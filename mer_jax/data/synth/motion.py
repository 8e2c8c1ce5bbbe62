"""Facial motion of a clip: action-unit-like displacement fields, timing, head drift, warping.

Geometry (all in pixels of the written frames, (x, y) with y down):

  - An action unit (AU) moves the skin around a few landmarks of the face's own
    68 dlib points: a sum of isotropic Gaussian bumps, one per anchor, each
    pushing along a direction given in the face's frame (x along the eye line,
    y perpendicular, down the face). Anchors, widths and directions are
    jittered per clip.
  - A clip's expression field ``M`` (H, W, 2) is a weighted sum of its AUs'
    fields, scaled so that its largest displacement is the clip's amplitude
    (about 1 pixel).
  - At frame t the neutral point p moves to ``A_t(p + a(t) M(p))``: first the
    expression with intensity ``a(t)`` (0 at the onset, 1 at the apex, back
    to 0 at the offset, raised-cosine ramps), then the head's rigid drift
    ``A_t`` (a sub-pixel rotation about the face centre plus translation,
    the identity at the onset).

Rendering uses the backward map of that forward motion (:func:`backward_map`):
frame_t(q) = neutral(p) where ``A_t(p + a M(p)) = q``, solved by inverting
``A_t`` exactly and the expression by fixed-point iteration. The ground-truth
onset -> apex flow is the forward displacement ``A_apex(p + M(p)) - p`` at
every onset pixel p (:func:`forward_flow`), which is the convention of
:func:`mer_jax.data.preprocess.flow.optical_flow`: ``apex(x + u, y + v) ~ onset(x, y)``.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from mer_jax.data.preprocess.faces import eye_centres


@dataclasses.dataclass(frozen=True)
class ActionUnit:
    """An action-unit-like motion.

    code: as written in the coding sheets ('12', 'R14').
    name: what the motion does ('lip_corner_pull').
    anchors: (landmark indices whose mean is the bump centre, (dx, dy) direction
      in the face's frame: x towards the image-right eye, y down the face).
    width: bump standard deviation, in inter-ocular distances.
    """

    code: str
    name: str
    anchors: tuple[tuple[tuple[int, ...], tuple[float, float]], ...]
    width: float


def _pair(left: tuple[int, ...], right: tuple[int, ...], dx: float, dy: float) -> tuple:
    """Mirror-symmetric anchors: ``dx`` points outwards (away from the face's midline)."""
    return ((left, (-dx, dy)), (right, (dx, dy)))


# dlib numbering: brows 17-21 (image-left) and 22-26, eyes 36-41 and 42-47,
# nose 27-35, mouth 48-67 (48 and 54 the corners), chin 8. Unilateral AUs use
# FACS sides as in an unmirrored photograph: the subject's right is image-left.
ACTION_UNITS = {
    au.code: au
    for au in (
        ActionUnit("1", "inner_brow_raise", _pair((20,), (23,), 0.0, -1.0) + _pair((21,), (22,), 0.0, -1.0), 0.16),
        ActionUnit("2", "outer_brow_raise", _pair((17,), (26,), 0.0, -1.0) + _pair((18,), (25,), 0.0, -1.0), 0.16),
        ActionUnit("4", "brow_lower", _pair((20,), (23,), -0.45, 0.9) + _pair((21,), (22,), -0.45, 0.9), 0.16),
        ActionUnit("5", "upper_lid_raise", _pair((37, 38), (43, 44), 0.0, -1.0), 0.11),
        ActionUnit("6", "cheek_raise", _pair((41, 48), (46, 54), 0.0, -1.0), 0.22),
        ActionUnit("7", "lid_tighten", _pair((40, 41), (46, 47), 0.0, -1.0), 0.11),
        ActionUnit("9", "nose_wrinkle", _pair((31,), (35,), 0.2, -1.0) + _pair((21, 39), (22, 42), -0.3, 0.6), 0.14),
        ActionUnit("10", "upper_lip_raise", ((tuple(range(50, 53)), (0.0, -1.0)),), 0.18),
        ActionUnit("12", "lip_corner_pull", _pair((48,), (54,), 0.8, -0.6), 0.17),
        ActionUnit("14", "dimpler", _pair((48,), (54,), 1.0, -0.1), 0.15),
        ActionUnit("R14", "right_dimpler", (((48,), (-1.0, -0.1)),), 0.15),
        ActionUnit("L14", "left_dimpler", (((54,), (1.0, -0.1)),), 0.15),
        ActionUnit("15", "lip_corner_depress", _pair((48,), (54,), 0.2, 1.0), 0.16),
        ActionUnit("17", "chin_raise", (((8, 57), (0.0, -1.0)),), 0.24),
        ActionUnit("20", "lip_stretch", _pair((48,), (54,), 1.0, 0.2), 0.17),
        ActionUnit("24", "lip_press", (((51, 62), (0.0, 1.0)), ((57, 66), (0.0, -1.0))), 0.12),
        ActionUnit("45", "blink", _pair((37, 38), (43, 44), 0.0, 1.0), 0.11),
    )
}

_HAPPINESS = (("12",), ("6", "12"))
_SURPRISE = (("1", "2"), ("1", "2", "5"), ("2",))
_ANGER = (("4",), ("4", "7"), ("4", "24"))
_DISGUST = (("9",), ("4", "9"), ("10",), ("4", "10"))
_SADNESS = (("1", "4"), ("15",), ("1", "4", "15"))
_FEAR = (("1", "4"), ("20",), ("1", "2", "4"))
_OTHERS = (("45",), ("7",), ("17",))

# AU combinations each emotion label shows; a clip draws one. Keys are the
# labels lower-cased (CASME II 'others' and SAMM 'Other' share theirs).
EMOTION_ACTION_UNITS: dict[str, tuple[tuple[str, ...], ...]] = {
    "happiness": _HAPPINESS,
    "positive": _HAPPINESS,
    "surprise": _SURPRISE,
    "anger": _ANGER,
    "disgust": _DISGUST,
    "repression": (("14",), ("15",), ("17",), ("24",), ("15", "17")),
    "contempt": (("R14",), ("L14",)),
    "sadness": _SADNESS,
    "fear": _FEAR,
    "negative": _ANGER + _DISGUST + _SADNESS,
    "others": _OTHERS,
    "other": _OTHERS,
}

_ANCHOR_JITTER = 0.04  # std of bump-centre jitter, inter-ocular distances
_DIRECTION_JITTER = np.deg2rad(8.0)  # std of direction jitter
_WIDTH_RANGE = (0.85, 1.2)  # bump-width factor range
_WEIGHT_RANGE = (0.6, 1.0)  # weight of each AU after the first in a combination


def action_unit_names(codes: tuple[str, ...]) -> str:
    """The motion's name, e.g. ('1', '2') -> 'inner_brow_raise+outer_brow_raise'."""
    return "+".join(ACTION_UNITS[c].name for c in codes)


def face_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(x unit vector along the eye line, y unit vector down the face, inter-ocular distance)."""
    left, right = eye_centres(landmarks)
    distance = float(np.linalg.norm(right - left))
    ex = (right - left) / distance
    return ex, np.array([-ex[1], ex[0]]), distance


def expression_field(
    landmarks: np.ndarray, codes: tuple[str, ...], amplitude: float, size: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """The apex displacement field (H, W, 2) float32 of the AUs ``codes``.

    Each AU's field is normalised to a peak of 1, the AUs are summed with
    weights (1 for the first, drawn for the others) and the sum is scaled so
    that its largest displacement is ``amplitude`` pixels.

    Args:
      landmarks: the neutral face's 68 points, (x, y).
      codes: AU codes from :data:`ACTION_UNITS`.
      amplitude: peak displacement, pixels.
      size: (width, height) of the frames.
      rng: draws the per-clip jitter of anchors, widths, directions, weights.
    """
    width, height = size
    ex, ey, distance = face_frame(landmarks)
    xs, ys = np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)
    total = np.zeros((height, width, 2))
    for k, code in enumerate(codes):
        field = np.zeros_like(total)
        au = ACTION_UNITS[code]
        for points, (dx, dy) in au.anchors:
            centre = landmarks[list(points)].mean(axis=0) + rng.normal(0.0, _ANCHOR_JITTER * distance, 2)
            sigma = au.width * distance * rng.uniform(*_WIDTH_RANGE)
            turn = rng.normal(0.0, _DIRECTION_JITTER)
            cos, sin = np.cos(turn), np.sin(turn)
            direction = (dx * cos - dy * sin) * ex + (dx * sin + dy * cos) * ey
            bump = np.outer(
                np.exp(-0.5 * ((ys - centre[1]) / sigma) ** 2), np.exp(-0.5 * ((xs - centre[0]) / sigma) ** 2)
            )
            field += bump[..., None] * direction
        weight = 1.0 if k == 0 else rng.uniform(*_WEIGHT_RANGE)
        total += weight * field / np.linalg.norm(field, axis=-1).max()
    return (total * (amplitude / np.linalg.norm(total, axis=-1).max())).astype(np.float32)


def intensity(frames: np.ndarray, onset: int, apex: int, offset: int) -> np.ndarray:
    """Expression intensity a(t) at frame numbers ``frames``: 0 at onset and offset, 1 at the apex.

    Raised-cosine ramps onset -> apex and apex -> offset (smooth, no jump in speed
    at either end).
    """
    t = np.asarray(frames, dtype=np.float64)
    rise = np.clip((t - onset) / max(apex - onset, 1), 0.0, 1.0)
    fall = np.clip((t - apex) / max(offset - apex, 1), 0.0, 1.0)
    return np.where(t <= apex, 0.5 - 0.5 * np.cos(np.pi * rise), 0.5 + 0.5 * np.cos(np.pi * fall))


@dataclasses.dataclass(frozen=True)
class HeadDrift:
    """Slow rigid head motion over a clip, zero at the onset.

    At clip progress s in [0, 1] the head has turned by ``rotation * s`` radians
    about ``centre`` and moved by ``shift * s + bow * sin(pi s)`` pixels.
    """

    centre: np.ndarray
    rotation: float
    shift: np.ndarray
    bow: np.ndarray

    @classmethod
    def draw(cls, centre: np.ndarray, rng: np.random.Generator) -> HeadDrift:
        """Sub-pixel drift: typically 0.25 px of translation and 0.1 degree of rotation over a clip.

        Draws are clipped (translation 0.6 px, bow 0.25 px, rotation 0.004
        rad), so the head never moves by a pixel or more.
        """
        return cls(
            centre=np.asarray(centre, dtype=np.float64),
            rotation=float(np.clip(rng.normal(0.0, 0.0015), -0.004, 0.004)),
            shift=np.clip(rng.normal(0.0, 0.25, 2), -0.6, 0.6),
            bow=np.clip(rng.normal(0.0, 0.1, 2), -0.25, 0.25),
        )

    def affine(self, progress: float) -> np.ndarray:
        """The 2 x 3 matrix moving neutral-face points at clip progress ``progress``."""
        angle = self.rotation * progress
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        shift = self.shift * progress + self.bow * np.sin(np.pi * progress)
        return np.hstack([rotation, (self.centre + shift - rotation @ self.centre)[:, None]])


def _grid(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    width, height = size
    return np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))


def backward_map(expression: np.ndarray, a: float, head: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(map_x, map_y) for ``cv2.remap``: where each output pixel comes from in the neutral frame.

    Inverts the forward motion q = A(p + a M(p)) (module docstring): p' =
    A^-1(q) exactly, then p = p' - a M(p) by three fixed-point steps (a
    contraction, since the expression's gradient is far below 1; the error
    after three steps is under 1e-3 pixels). M between pixels is bilinear.
    """
    height, width = expression.shape[:2]
    x, y = _grid((width, height))
    inverse = cv2.invertAffineTransform(head).astype(np.float32)
    base_x = inverse[0, 0] * x + inverse[0, 1] * y + inverse[0, 2]
    base_y = inverse[1, 0] * x + inverse[1, 1] * y + inverse[1, 2]
    map_x, map_y = base_x, base_y
    if a != 0.0:
        for _ in range(3):
            moved = cv2.remap(expression, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            map_x, map_y = base_x - a * moved[..., 0], base_y - a * moved[..., 1]
    return map_x, map_y


def forward_flow(expression: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Onset -> apex flow (H, W, 2) float32: onset pixel p moves by A(p + M(p)) - p."""
    height, width = expression.shape[:2]
    x, y = _grid((width, height))
    px, py = x + expression[..., 0], y + expression[..., 1]
    u = head[0, 0] * px + head[0, 1] * py + head[0, 2] - x
    v = head[1, 0] * px + head[1, 1] * py + head[1, 2] - y
    return np.stack([u, v], axis=-1).astype(np.float32)
