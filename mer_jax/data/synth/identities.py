"""Identities: one neutral face frame per subject, drawn from a source photograph.

A draw places the source face in the frame with a similarity transform
(a random scale for the dataset's face size, the source's head roll undone
and a small new roll added), a yaw-like horizontal squeeze and shear, an
optional mirror, a smooth random warp of a few pixels (face shape), a
lighting gradient, colour gains and a gamma, and a slight optical blur.
A draw is kept only if :func:`mer_jax.data.preprocess.faces.detect_landmarks`
finds the face, at about the intended size and well inside the frame;
otherwise the next draw from the same random stream is tried, so the result
stays deterministic.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from mer_jax.data.preprocess.faces import FaceNotFoundError, detect_landmarks
from mer_jax.data.synth.motion import face_frame
from mer_jax.data.synth.photos import FacePhoto

MAX_DRAWS = 25
_ROLL = np.deg2rad(4.0)  # std of the new head roll (clipped at 2 std)
_SQUEEZE = (0.86, 1.0)  # horizontal squeeze in the face's frame (yaw-like)
_SHEAR = 0.05  # largest horizontal shear
_SHAPE_WARP = 0.04  # std of the smooth shape warp, inter-ocular distances
_GAIN = (0.85, 1.15)  # per-channel colour gain range
_GRADIENT = np.array([0.35, 0.2])  # largest lighting change across the width, the height
_GAMMA = (0.8, 1.25)
_OPTICS_BLUR = 0.6  # Gaussian sigma of the lens, pixels
_SIZE_TOLERANCE = 0.2  # detected inter-ocular distance may differ by this fraction
_MARGIN = 0.04  # landmarks must stay this fraction of the frame inside its edges


@dataclasses.dataclass(frozen=True)
class Identity:
    """A subject's neutral face.

    neutral: float32 (H, W, 3) RGB or (H, W) gray on [0, 255], without noise.
    landmarks: its 68 detected points (x, y).
    source: the source photograph's name.
    redraws: draws rejected before this one.
    """

    neutral: np.ndarray
    landmarks: np.ndarray
    source: str
    redraws: int


def _face_centre(landmarks: np.ndarray) -> np.ndarray:
    """Midway between the eyes' centre and the mouth's centre."""
    return 0.5 * (landmarks[36:48].mean(axis=0) + landmarks[48:68].mean(axis=0))


def _placement(photo: FacePhoto, size: tuple[int, int], interocular: float, rng: np.random.Generator) -> np.ndarray:
    """The 2 x 3 affine matrix from source pixels to frame pixels."""
    width, height = size
    ex, _, distance = face_frame(photo.landmarks)
    undo_roll = np.arctan2(ex[1], ex[0])
    roll = float(np.clip(rng.normal(0.0, _ROLL), -2 * _ROLL, 2 * _ROLL))

    def rotation(angle: float) -> np.ndarray:
        return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])

    mirror = np.diag([-1.0 if rng.random() < 0.5 else 1.0, 1.0])
    yaw = np.array([[rng.uniform(*_SQUEEZE), rng.uniform(-_SHEAR, _SHEAR)], [0.0, 1.0]])
    linear = (interocular / distance) * rotation(roll) @ yaw @ mirror @ rotation(-undo_roll)
    target = np.array(
        [width * (0.5 + np.clip(rng.normal(0.0, 0.03), -0.06, 0.06)), height * (0.53 + rng.uniform(-0.02, 0.02))]
    )
    return np.hstack([linear, (target - linear @ _face_centre(photo.landmarks))[:, None]])


def _shape_warp(image: np.ndarray, interocular: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random warp: 4 x 4 control displacements, bicubically upsampled."""
    height, width = image.shape[:2]
    control = rng.normal(0.0, _SHAPE_WARP * interocular, (4, 4, 2)).astype(np.float32)
    field = cv2.resize(control, (width, height), interpolation=cv2.INTER_CUBIC)
    x, y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image, x + field[..., 0], y + field[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)


def _lighting(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour gains, a linear lighting gradient and a gamma, on [0, 255]."""
    height, width = image.shape[:2]
    x = np.linspace(-0.5, 0.5, width, dtype=np.float32)
    y = np.linspace(-0.5, 0.5, height, dtype=np.float32)
    across, down = (rng.uniform(-1.0, 1.0, 2) * _GRADIENT).astype(np.float32)
    gradient = 1.0 + across * x[None, :] + down * y[:, None]
    gains = rng.uniform(*_GAIN, 3).astype(np.float32)
    lit = np.clip(image * gradient[..., None] * gains / 255.0, 0.0, 1.0)
    return 255.0 * lit ** np.float32(rng.uniform(*_GAMMA))


def _draw(photo: FacePhoto, size: tuple[int, int], interocular: float, colour: bool, rng) -> np.ndarray:
    """One candidate neutral frame, float32 on [0, 255]."""
    matrix = _placement(photo, size, interocular, rng)
    image = photo.image.astype(np.float32)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 1.0:  # anti-alias before shrinking
        image = cv2.GaussianBlur(image, (0, 0), 0.5 * np.sqrt(1.0 / scale**2 - 1.0))
    image = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    image = _lighting(_shape_warp(image, interocular, rng), rng)
    image = cv2.GaussianBlur(image, (0, 0), _OPTICS_BLUR)
    if not colour:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.clip(image, 0.0, 255.0).astype(np.float32)


def _acceptable(landmarks: np.ndarray, size: tuple[int, int], interocular: float) -> bool:
    width, height = size
    _, _, distance = face_frame(landmarks)
    inside = (landmarks.min(axis=0) >= _MARGIN * np.array(size)).all() and (
        landmarks.max(axis=0) <= (1 - _MARGIN) * np.array([width, height])
    ).all()
    return bool(inside and abs(distance - interocular) <= _SIZE_TOLERANCE * interocular)


def make_identity(
    photo: FacePhoto,
    size: tuple[int, int],
    interocular: tuple[float, float],
    colour: bool,
    rng: np.random.Generator,
    name: str = "identity",
) -> Identity:
    """Draw neutral frames from ``photo`` until one's face is found (see module docstring).

    Args:
      photo: the photograph.
      size: (width, height) of the frame.
      interocular: range of the eye-centre distance to draw from, pixels.
      colour: RGB if True, else gray.
      rng: the subject's random stream.
      name: the subject, for the error message.

    Raises:
      RuntimeError: no acceptable draw in :data:`MAX_DRAWS` tries.
    """
    for redraws in range(MAX_DRAWS):
        distance = rng.uniform(*interocular)
        neutral = _draw(photo, size, distance, colour, rng)
        try:
            landmarks = detect_landmarks(np.rint(neutral).astype(np.uint8), name=name)
        except FaceNotFoundError:
            continue
        if _acceptable(landmarks, size, distance):
            return Identity(neutral, landmarks, photo.name, redraws)
    raise RuntimeError(
        f"{name}: no face was detected in {MAX_DRAWS} draws from {photo.name} at {size[0]} x {size[1]} "
        f"with an inter-ocular distance of {interocular[0]:.0f}-{interocular[1]:.0f} px; use larger frames"
    )
