"""Onset -> apex optical flow and the Xia et al., TIP 2020 flow map.

Xia et al., TMM 2019 sec. III-C and Xia et al., TIP 2020
sec. IV-A compute one dense optical flow from the onset frame to the apex
frame. docs/design.md (Preprocessing) fixes TV-L1 (OpenCV contrib) as the default,
with DIS and Farneback as fast options.

Direction convention (OpenCV's ``calcOpticalFlow*``: prev = onset,
next = apex): ``flow[y, x] = (u, v)`` moves the onset pixel (x, y) to
(x + u, y + v) in the apex frame, i.e. ``apex(x + u, y + v) ~ onset(x, y)``.
x runs along the width axis, y along the height axis (image y points down).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mer_jax.data.preprocess.strain import flow_map

try:
    import cv2
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "mer_jax.data.preprocess.flow needs OpenCV with the contrib modules: "
        "pip install 'mer-jax[data]' (opencv-contrib-python-headless)"
    ) from err

METHODS = ("tvl1", "dis", "farneback")
MIN_SIDE = 16  # DIS (preset MEDIUM) rejects frames smaller than about 12 px
# ITU-R BT.601 luma weights, the ones cv2.COLOR_RGB2GRAY uses.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# OpenCV's stopping threshold of the TV-L1 iterations, the default of optical_flow.
TVL1_EPSILON = 0.01


def _tvl1(onset: np.ndarray, apex: np.ndarray, epsilon: float = TVL1_EPSILON) -> np.ndarray:
    # OpenCV defaults: tau 0.25, lambda 0.15, theta 0.3, 5 scales (step 0.8),
    # 5 warps, epsilon 0.01, median filtering 5.
    solver = cv2.optflow.DualTVL1OpticalFlow_create()
    solver.setEpsilon(epsilon)
    return solver.calc(onset, apex, None)


def _dis(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
    # Preset MEDIUM: 8x8 patches, stride 3, variational refinement.
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(onset, apex, None)


def _farneback(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
    return cv2.calcOpticalFlowFarneback(
        onset, apex, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0
    )


_ESTIMATORS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "tvl1": _tvl1,
    "dis": _dis,
    "farneback": _farneback,
}


def _gray_uint8_pair(onset: np.ndarray, apex: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert two frames to uint8 grayscale on [0, 255], the same way for both.

    - (H, W, 3) frames are RGB (channel order as skimage/PIL load them; convert
      ``cv2.imread``'s BGR first) and become luma with the BT.601 weights.
    - uint8 frames keep their values. Floating frames are on the [0, 1] scale
      when both frames' maximum is <= 1, else on the [0, 255] scale; they are
      scaled to [0, 255], clipped there and rounded.
    """
    onset, apex = np.asarray(onset), np.asarray(apex)
    if onset.shape != apex.shape:
        raise ValueError(
            f"onset and apex must have the same shape; got onset {onset.shape} and apex {apex.shape}"
        )
    if not (onset.ndim == 2 or (onset.ndim == 3 and onset.shape[-1] == 3)):
        raise ValueError(f"frames must be (H, W) grayscale or (H, W, 3) RGB; got shape {onset.shape}")
    if min(onset.shape[:2]) < MIN_SIDE:
        raise ValueError(f"frames must be at least {MIN_SIDE} x {MIN_SIDE} pixels; got shape {onset.shape}")
    for name, frame in (("onset", onset), ("apex", apex)):
        if frame.dtype != np.uint8 and not np.issubdtype(frame.dtype, np.floating):
            raise ValueError(f"{name} must be uint8 or floating point; got dtype {frame.dtype}")
    floats = [f for f in (onset, apex) if f.dtype != np.uint8]
    scale = 255.0 if floats and max(float(f.max()) for f in floats) <= 1.0 else 1.0

    def convert(frame: np.ndarray) -> np.ndarray:
        if frame.dtype == np.uint8 and frame.ndim == 2:
            return frame
        values = frame.astype(np.float32) * (scale if frame.dtype != np.uint8 else 1.0)
        if values.ndim == 3:
            values = values @ _LUMA
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)

    return convert(onset), convert(apex)


def optical_flow(
    onset: np.ndarray, apex: np.ndarray, method: str = "tvl1", *, tvl1_epsilon: float = TVL1_EPSILON
) -> np.ndarray:
    """Dense optical flow from the onset frame to the apex frame.

    Args:
      onset, apex: frames of the same shape, at least 16 x 16, (H, W)
        grayscale or (H, W, 3) RGB, uint8 or floating. Every method runs on
        uint8 gray: RGB becomes BT.601 luma; floating frames are on the [0, 1]
        scale when both frames' maximum is <= 1, else on [0, 255]; values are
        scaled to [0, 255], clipped and rounded.
      method: one of :data:`METHODS`: ``"tvl1"`` (Dual TV-L1, OpenCV contrib
        ``cv2.optflow.DualTVL1OpticalFlow_create``, the default), ``"dis"``
        (DIS, preset MEDIUM) or ``"farneback"``.
      tvl1_epsilon: tvl1 only: the change per iteration below which each
        warp stops iterating (OpenCV's default 0.01). 0.03 runs 3.5 to 8x as
        fast at the same accuracy on faces (docs/benchmarks.md, Builds).

    Returns:
      float32 (H, W, 2) displacements in pixels, channel 0 = u (x), 1 = v (y),
      with ``apex(x + u, y + v) ~ onset(x, y)`` (module docstring).
    """
    if method not in _ESTIMATORS:
        raise ValueError(f"unknown optical flow method {method!r}; valid methods: {', '.join(METHODS)}")
    if not tvl1_epsilon > 0:
        raise ValueError(f"tvl1_epsilon must be positive; got {tvl1_epsilon}")
    onset_gray, apex_gray = _gray_uint8_pair(onset, apex)
    if method == "tvl1":
        return np.asarray(_tvl1(onset_gray, apex_gray, tvl1_epsilon), dtype=np.float32)
    return np.asarray(_ESTIMATORS[method](onset_gray, apex_gray), dtype=np.float32)


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a flow field to ``size = (height, width)``, rescaling displacements.

    u is multiplied by width / W and v by height / H, so the flow stays in
    pixels of the new grid. Shrinking (both sides not larger) uses area
    averaging, otherwise bilinear interpolation.

    Args:
      flow: (H, W, 2) flow, u then v.
      size: (height, width) of the output, positive integers.

    Returns:
      float32 (height, width, 2) flow.
    """
    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow must have shape (H, W, 2) (u then v); got shape {flow.shape}")
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in size):
        raise ValueError(f"size must be (height, width) with positive integers; got {size!r}")
    height, width = int(size[0]), int(size[1])
    h0, w0 = flow.shape[:2]
    shrink = height <= h0 and width <= w0
    resized = cv2.resize(flow, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return resized * np.array([width / w0, height / h0], dtype=np.float32)


def flow_map_from_frames(
    onset: np.ndarray, apex: np.ndarray, size: tuple[int, int] = (60, 60), method: str = "tvl1"
) -> np.ndarray:
    """The Xia et al., TIP 2020 (sec. IV-A) network input from an onset and an apex frame.

    Flow is computed at the frames' own (face-crop) resolution, resized to
    ``size = (height, width)`` with displacements rescaled
    (:func:`resize_flow`), then u, v and optical strain (Xia et al., TIP 2020, eq. 2, as
    :func:`mer_jax.data.preprocess.strain.optical_strain` defines it) are stacked.

    Returns:
      float32 numpy (height, width, 3): u, v, strain.
    """
    flow = resize_flow(optical_flow(onset, apex, method=method), size)
    return np.asarray(flow_map(flow), dtype=np.float32)
