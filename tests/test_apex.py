"""Apex spotting by the difference deviation (Xia et al., TMM 2019, eq. 5)."""

import numpy as np
import pytest

from mer_jax.data.preprocess.apex import difference_curve, spot_apex

T = 20


def blob_clip(amplitude, channels=None):
    """A fixed random texture plus a Gaussian blob whose amplitude follows ``amplitude(t)``."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:24, 0:32]
    blob = np.exp(-((x - 20.0) ** 2 + (y - 10.0) ** 2) / (2 * 3.0**2))
    base = rng.uniform(0.2, 0.6, (24, 32))
    frames = np.stack([base + amplitude(t) * blob for t in range(T)]).astype(np.float32)
    return frames if channels is None else np.repeat(frames[..., None], channels, axis=-1)


def bump(t, peak, height, width=1.5):
    return height * np.exp(-((t - peak) ** 2) / (2 * width**2))


def test_single_rise_and_fall_peaks_at_its_apex():
    frames = blob_clip(lambda t: bump(t, 12, 0.3))
    curve = difference_curve(frames)
    assert curve.shape == (T,) and curve[0] == 0.0
    assert int(np.argmax(curve)) == 12
    assert spot_apex(frames) == 12
    assert spot_apex(blob_clip(lambda t: bump(t, 7, 0.3), channels=3)) == 7


def test_curve_is_std_of_the_difference_from_the_reference():
    frames = blob_clip(lambda t: bump(t, 12, 0.3), channels=3)
    curve = difference_curve(frames, reference=5)
    assert curve[5] == 0.0
    np.testing.assert_allclose(curve[9], np.std(frames[9].astype(np.float64) - frames[5]), rtol=1e-12)


def test_search_stays_inside_onset_offset():
    # A big expression at frame 4, a smaller one at frame 14.
    frames = blob_clip(lambda t: bump(t, 4, 0.6) + bump(t, 14, 0.2))
    assert spot_apex(frames) == 4
    assert spot_apex(frames, onset=9, offset=18) == 14
    assert spot_apex(frames, onset=9) == 14
    assert spot_apex(frames, offset=8) == 4
    # A window that ends before the peak returns its last (largest) frame.
    assert spot_apex(frames, onset=9, offset=12) == 12


def test_reference_frame_is_the_onset_not_the_first_frame():
    # The face starts in a held pose (frames 0..6), relaxes, then a small
    # expression peaks at frame 14: relative to frame 0 the relaxed frames
    # would differ most.
    frames = blob_clip(lambda t: 0.5 * (t < 7) + bump(t, 14, 0.2))
    assert spot_apex(frames, onset=9, offset=19) == 14


def test_static_clip_returns_the_onset():
    frames = blob_clip(lambda t: 0.0)
    assert spot_apex(frames, onset=3, offset=10) == 3


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"onset": -1}, "onset=-1"),
        ({"onset": T}, f"onset={T}"),
        ({"offset": T + 5}, f"offset={T + 5}"),
        ({"onset": 10, "offset": 4}, "onset=10 is after offset=4"),
        ({"onset": 2.5}, "onset must be an integer"),
    ],
)
def test_bad_indices_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        spot_apex(blob_clip(lambda t: bump(t, 12, 0.3)), **kwargs)


def test_bad_frames_raise():
    with pytest.raises(ValueError, match=r"\(T, H, W\)"):
        spot_apex(np.zeros((24, 32)))
    with pytest.raises(ValueError, match="T >= 1"):
        difference_curve(np.zeros((0, 24, 32)))
    with pytest.raises(ValueError, match="reference=20"):
        difference_curve(np.zeros((T, 24, 32)), reference=T)
