"""The six regions of Aouayeb et al. (MLSP 2019, sec. 3.1, 4.1.2) cut from a clip's frames (docs/data.md, regions).

The boxes are placed once, from the first frame's 68 landmarks
(:func:`mer_jax.data.preprocess.faces.facial_regions`), and every frame is cut by
them, unaligned: the paper sees no head motion worth aligning (sec. 3.1) and
holds the boxes still so that the movement shows inside them, where boxes that
follow each frame's landmarks would follow the movement too.

Each crop is made grayscale and put on a black canvas of its region's size
(:data:`mer_jax.data.region_geometry.REGION_SIZES`), at the top-left: the paper's "resized
them to the same size by adding a black background" (sec. 4.1.2). A crop larger
than its canvas is first shrunk, keeping its aspect, until it fits; a smaller
one keeps its pixels as they are. The six canvases of a frame are stored on one
common canvas (:data:`mer_jax.data.region_geometry.CANVAS`), each at its top-left.
"""

from __future__ import annotations

import cv2
import numpy as np

from mer_jax.data.preprocess import faces
from mer_jax.data.region_geometry import CANVAS, CHANNELS, REGION_NAMES, REGION_SIZES

Box = faces.Box


def region_boxes(first_frame: np.ndarray, *, name: str = "frame") -> list[Box]:
    """The six boxes (x0, y0, x1, y1), in :data:`REGION_NAMES` order, from ``first_frame``'s landmarks.

    Boxes are :func:`~mer_jax.data.preprocess.faces.facial_regions` clipped to the image.

    Raises:
      FaceNotFoundError: no face in ``first_frame``.
      ValueError: a box outside the image (naming the frame and the region).
    """
    height, width = first_frame.shape[:2]
    found = faces.facial_regions(faces.detect_landmarks(first_frame, name=name))
    boxes = []
    for region in REGION_NAMES:
        x0, y0, x1, y1 = found[region]
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"{name}: the {region} box {found[region]} lies outside the {width} x {height} image")
        boxes.append((x0, y0, x1, y1))
    return boxes


def fitted_size(crop: tuple[int, int], canvas: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a ``crop`` of (height, width) on a ``canvas``: unchanged where it fits, else shrunk
    by one factor until it does (each side at least 1 pixel)."""
    scale = min(1.0, canvas[0] / crop[0], canvas[1] / crop[1])
    return max(1, int(crop[0] * scale)), max(1, int(crop[1] * scale))


def cut_regions(frame: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """(6, H, W, 1) uint8: the six grayscale crops of an RGB (or grayscale) uint8 ``frame``, each at the
    top-left of the common black canvas (H, W) = :data:`CANVAS`, within its region's size."""
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    out = np.zeros((len(REGION_NAMES), *CANVAS, CHANNELS), np.uint8)
    for r, ((x0, y0, x1, y1), size) in enumerate(zip(boxes, REGION_SIZES, strict=True)):
        crop = gray[y0:y1, x0:x1]
        height, width = fitted_size(crop.shape, size)
        if (height, width) != crop.shape:
            crop = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
        out[r, :height, :width, 0] = crop
    return out
