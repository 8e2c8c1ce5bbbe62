"""Onset -> apex optical flow (docs/design.md Preprocessing; Xia et al., TIP 2020, sec. IV-A)."""

import cv2
import numpy as np
import pytest
import skimage.data

from mer_jax.data.clips.builder import config_named
from mer_jax.data.preprocess import flow_map
from mer_jax.data.preprocess.flow import (
    METHODS,
    TVL1_EPSILON,
    flow_map_from_frames,
    optical_flow,
    resize_flow,
)

BORDER = 16  # pixels left out of the error: flow near image borders is extrapolated
STRCN_G_EPSILON = config_named("flow_strcn_g").variant.tvl1_epsilon


def true_flow(x, y, height, width):
    """A smooth sub-pixel field (max |flow| ~1.45 px), u and v of different shapes."""
    u = 1.0 * np.sin(2 * np.pi * x / width + 0.3) * np.cos(1.4 * np.pi * y / height) + 0.4
    v = 0.9 * np.cos(1.6 * np.pi * x / width) * np.sin(2 * np.pi * y / height + 1.0) - 0.3
    return u, v


@pytest.fixture(scope="module")
def face():
    """The astronaut's face (skimage, no download), RGB uint8, 180 x 160."""
    return skimage.data.astronaut()[20:200, 140:300]


@pytest.fixture(scope="module")
def warped(face):
    """(onset gray, apex gray, true flow) with apex(x + u, y + v) = onset(x, y).

    For each apex pixel q the onset point p with p + f(p) = q is found by the
    fixed-point iteration p <- q - f(p) (a contraction: |grad f| < 0.1), then
    the onset is sampled there bicubically.
    """
    onset = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    height, width = onset.shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    px, py = x.copy(), y.copy()
    for _ in range(30):
        u, v = true_flow(px, py, height, width)
        px, py = x - u, y - v
    u, v = true_flow(px, py, height, width)
    assert np.abs(px + u - x).max() < 1e-9 and np.abs(py + v - y).max() < 1e-9
    apex = cv2.remap(
        onset.astype(np.float32), px.astype(np.float32), py.astype(np.float32), cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT,
    )
    apex = np.clip(np.rint(apex), 0, 255).astype(np.uint8)
    return onset, apex, np.stack(true_flow(x, y, height, width), axis=-1)


def end_point_error(flow, truth):
    inner = (slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    return float(np.linalg.norm(flow[inner] - truth[inner], axis=-1).mean())


@pytest.mark.parametrize("epsilon", [TVL1_EPSILON, STRCN_G_EPSILON])
def test_tvl1_end_point_error_is_sub_pixel(warped, epsilon):
    """Also at the looser stopping threshold of the flow_strcn_g build (measured: 0.061 px at 0.01, 0.044 at 0.03)."""
    onset, apex, truth = warped
    flow = optical_flow(onset, apex, tvl1_epsilon=epsilon)  # tvl1 is the default
    assert flow.dtype == np.float32 and flow.shape == (*onset.shape, 2)
    assert end_point_error(flow, truth) < 0.15
    if epsilon != TVL1_EPSILON:  # the threshold reaches the solver
        assert np.abs(flow - optical_flow(onset, apex)).mean() > 1e-3


@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_far_better_than_zero_flow(warped, method):
    onset, apex, truth = warped
    zero = end_point_error(np.zeros_like(truth), truth)
    assert zero > 0.5
    assert end_point_error(optical_flow(onset, apex, method=method), truth) < 0.5 * zero


@pytest.mark.parametrize("method", METHODS)
def test_direction_onset_pixel_moves_by_plus_u_plus_v(face, method):
    onset = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    right = np.empty_like(onset)  # apex(x + 1, y) = onset(x, y)
    right[:, 1:], right[:, 0] = onset[:, :-1], onset[:, 0]
    down = np.empty_like(onset)  # apex(x, y + 1) = onset(x, y)
    down[1:], down[0] = onset[:-1], onset[0]
    inner = (slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    np.testing.assert_allclose(np.median(optical_flow(onset, right, method)[inner], axis=(0, 1)), [1, 0], atol=0.1)
    np.testing.assert_allclose(np.median(optical_flow(onset, down, method)[inner], axis=(0, 1)), [0, 1], atol=0.1)


def test_rgb_and_float_inputs_match_uint8_gray(face, warped):
    onset_rgb = face
    _, _, truth = warped
    height, width = face.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    map_x, map_y = (x - truth[..., 0]).astype(np.float32), (y - truth[..., 1]).astype(np.float32)
    apex_rgb = cv2.remap(face, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    from_rgb = optical_flow(onset_rgb, apex_rgb, "dis")
    # BT.601 luma, as documented: matches OpenCV's RGB -> gray up to rounding.
    gray = optical_flow(cv2.cvtColor(onset_rgb, cv2.COLOR_RGB2GRAY), cv2.cvtColor(apex_rgb, cv2.COLOR_RGB2GRAY), "dis")
    assert np.abs(from_rgb - gray).mean() < 0.02
    # Floats on [0, 255] give exactly the uint8 result; on [0, 1] the same up to
    # float rounding at luma ties (a wrong scale would give an all-black image).
    assert np.abs(optical_flow(onset_rgb / 255.0, apex_rgb / 255.0, "dis") - from_rgb).mean() < 0.01
    np.testing.assert_array_equal(
        optical_flow(onset_rgb.astype(np.float32), apex_rgb.astype(np.float32), "dis"), from_rgb
    )


def test_bad_inputs_raise_clear_errors(face):
    with pytest.raises(ValueError, match="tvl1, dis, farneback"):
        optical_flow(face, face, method="horn")
    with pytest.raises(ValueError, match=r"onset \(180, 160, 3\) and apex \(180, 150, 3\)"):
        optical_flow(face, face[:, :150])
    with pytest.raises(ValueError, match="dtype int64"):
        optical_flow(face.astype(np.int64), face)
    with pytest.raises(ValueError, match="at least 16"):
        optical_flow(face[:8, :8], face[:8, :8])


def test_resize_flow_rescales_u_by_width_and_v_by_height():
    flow = np.zeros((120, 90, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3.0, -2.0
    small = resize_flow(flow, (60, 30))
    assert small.shape == (60, 30, 2) and small.dtype == np.float32
    np.testing.assert_allclose(small[..., 0], 3.0 * 30 / 90, rtol=1e-6)
    np.testing.assert_allclose(small[..., 1], -2.0 * 60 / 120, rtol=1e-6)
    big = resize_flow(flow, (240, 100))
    np.testing.assert_allclose(big[..., 0], 3.0 * 100 / 90, rtol=1e-6)
    np.testing.assert_allclose(big[..., 1], -2.0 * 240 / 120, rtol=1e-6)
    with pytest.raises(ValueError, match="size"):
        resize_flow(flow, (60, 0))


def test_flow_map_from_frames_is_resized_flow_plus_strain(warped):
    onset, apex, _ = warped
    stacked = flow_map_from_frames(onset, apex, method="dis")
    assert isinstance(stacked, np.ndarray) and stacked.shape == (60, 60, 3) and stacked.dtype == np.float32
    expected = resize_flow(optical_flow(onset, apex, "dis"), (60, 60))
    np.testing.assert_allclose(stacked[..., :2], expected, atol=1e-6)
    np.testing.assert_allclose(stacked, np.asarray(flow_map(expected)), atol=1e-6)
    assert flow_map_from_frames(onset, apex, size=(45, 30), method="dis").shape == (45, 30, 3)
