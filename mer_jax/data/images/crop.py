"""The face crop of an expression image (Wang et al., Neurocomputing 2018, sec. 4.1).

The paper crops "with a rectangle that is mostly suitable for containing all
the feature points", 66 DRMF points, and feeds 240 x 320 (H x W) RGB images to
its data layer (sec. 3.4). We use dlib's 68 points
(:func:`mer_jax.data.preprocess.faces.detect_landmarks`: the same brows, eyes, nose,
mouth and jaw line) and read the rectangle as their bounding box, widened
about its centre to the output's 4 : 3 (W : H) shape so that resizing it to
320 x 240 keeps the face's proportions (the paper does not say whether it
stretches; a face's point box is about square, so stretching would widen
faces by a third). Parts of the rectangle outside the image repeat its border
pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from mer_jax.data.preprocess.faces import detect_landmarks

SIZE = (320, 240)  # (width, height) of a crop: the paper's 240 x 320 (H x W) data-layer input (sec. 3.4)
DETECT_SIDE = 400  # faces are searched on a copy whose shorter side is at most this (px); landmarks scaled back


def point_box(landmarks: np.ndarray, size: tuple[int, int] = SIZE) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), x1 and y1 exclusive: the points' bounding box widened to ``size``'s shape about its centre.

    Not clipped to the image.
    """
    landmarks = np.asarray(landmarks, dtype=float)
    (left, top), (right, bottom) = landmarks.min(axis=0), landmarks.max(axis=0)
    width, height = right - left, bottom - top
    aspect = size[0] / size[1]
    if width < aspect * height:
        width = aspect * height
    else:
        height = width / aspect
    cx, cy = (left + right) / 2, (top + bottom) / 2
    x0, y0 = int(np.floor(cx - width / 2)), int(np.floor(cy - height / 2))
    return x0, y0, x0 + max(int(np.ceil(width)), 1), y0 + max(int(np.ceil(height)), 1)


def face_crop(image: np.ndarray, landmarks: np.ndarray, size: tuple[int, int] = SIZE) -> np.ndarray:
    """The :func:`point_box` of ``landmarks`` cut from ``image`` and resized to ``size`` (W, H): uint8 (H, W, C)."""
    x0, y0, x1, y1 = point_box(landmarks, size)
    height, width = image.shape[:2]
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = image[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    shrink = size[0] * size[1] < crop.shape[0] * crop.shape[1]
    return cv2.resize(crop, tuple(size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def crop_face(image: np.ndarray, *, name: str = "image", size: tuple[int, int] = SIZE) -> np.ndarray:
    """Detect the face's 68 points in ``image`` (uint8 RGB) and return its :func:`face_crop`.

    Raises:
      mer_jax.data.preprocess.faces.FaceNotFoundError: no face; its message names ``name``.
    """
    scale = min(1.0, DETECT_SIDE / min(image.shape[:2]))
    small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return face_crop(image, detect_landmarks(small, name=name) / scale, size)
