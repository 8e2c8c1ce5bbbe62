"""Eulerian video magnification (docs/design.md Preprocessing; Xia et al., TMM 2019, sec. III-B, IV-A)."""

import jax
import numpy as np
import pytest

from mer_jax.data.preprocess.magnify import collapse_pyramid, iir_bandpass, laplacian_pyramid, level_alphas, magnify

SIZE, SIGMA, AMPLITUDE = 32, 6.0, 0.05  # a smooth blob moved by a tiny sub-pixel sinusoid
IN_BAND = 1 / 38  # cycles/frame, at the peak of the [0.05, 0.4] IIR band


def blob_clip(freq, num_frames, amplitude=AMPLITUDE):
    """Gaussian blob translated along x by amplitude * sin(2 pi freq t); also its d/dx at rest."""
    d = amplitude * np.sin(2 * np.pi * freq * np.arange(num_frames))
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) - (SIZE - 1) / 2
    frames = np.exp(-((x[None] - d[:, None, None]) ** 2 + y[None] ** 2) / (2 * SIGMA**2))
    grad_x = -x / SIGMA**2 * frames[0]
    return frames.astype(np.float32), frames[0], grad_x


def displacement_amplitude(out, rest, grad_x, freq, skip):
    """Amplitude of the x displacement of ``out`` at ``freq``, frames from ``skip`` on.

    Per frame, I(x - D) ~ f - D df/dx, so D = -<I - f, df/dx> / |df/dx|^2; a
    least-squares sine + cosine fit at the known frequency gives the amplitude.
    """
    shift = -np.tensordot(out - rest, grad_x, axes=([1, 2], [0, 1])) / np.sum(grad_x**2)
    t = np.arange(len(shift))[skip:]
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, shift[skip:], rcond=None)
    return float(np.hypot(*coef))


def filter_response(freq, low=0.05, high=0.4):
    """Analytic response of lp_high - lp_low, divided by its peak gain (as iir_bandpass)."""
    def band(f):
        z = np.exp(-2j * np.pi * f)
        return high / (1 - (1 - high) * z) - low / (1 - (1 - low) * z)

    return band(freq) / np.abs(band(np.linspace(0, 0.5, 100001))).max()


def measured_gain(freq, num_frames, skip, wavelength_cutoff=16.0):
    clip, rest, grad_x = blob_clip(freq, num_frames)
    out = np.asarray(magnify(clip[None], 8.0, wavelength_cutoff=wavelength_cutoff))[0]
    return displacement_amplitude(out, rest, grad_x, freq, skip) / AMPLITUDE


def test_measurement_reads_the_input_motion():
    clip, rest, grad_x = blob_clip(IN_BAND, 64)
    assert displacement_amplitude(clip, rest, grad_x, IN_BAND, 30) / AMPLITUDE == pytest.approx(1.0, rel=0.02)


def test_in_band_motion_is_amplified_by_one_plus_alpha_for_each_alpha_of_a_batch():
    clip, rest, grad_x = blob_clip(IN_BAND, 64)
    alphas = np.array([0.0, 4.0, 8.0, 14.0], np.float32)
    out = np.asarray(magnify(np.repeat(clip[None], len(alphas), axis=0), alphas))
    gains = [displacement_amplitude(o, rest, grad_x, IN_BAND, 30) / AMPLITUDE for o in out]
    print("in-band amplification for alphas", alphas.tolist(), "->", np.round(gains, 3).tolist())
    np.testing.assert_allclose(gains, 1 + alphas, rtol=0.2)
    assert gains[0] == pytest.approx(1.0, abs=1e-3)


def test_motion_far_below_the_band_is_not_amplified():
    gain = measured_gain(0.0005, 1200, skip=200)  # a 2000-frame period
    print("amplification at 0.0005 cycles/frame, alpha 8:", round(gain, 3))
    assert gain < 1.5


def test_near_nyquist_motion_gets_the_filters_small_leak_only():
    gain = measured_gain(0.45, 64, skip=30)
    print("amplification at 0.45 cycles/frame, alpha 8:", round(gain, 3))
    assert gain < 0.4 * 9.0


@pytest.mark.parametrize("freq,num_frames,skip", [(IN_BAND, 64, 30), (0.0005, 1200, 200), (0.1, 64, 30), (0.45, 64, 30)])
def test_gain_is_one_plus_alpha_times_the_iir_response(freq, num_frames, skip):
    # wavelength_cutoff = 4 lets every level take the full alpha, isolating the temporal filter.
    gain = measured_gain(freq, num_frames, skip, wavelength_cutoff=4.0)
    assert gain == pytest.approx(abs(1 + 8.0 * filter_response(freq)), rel=0.03)


@pytest.mark.parametrize("wavelength,expected", [(4.0, 1 + 1.25), (32.0, 9.0)])
def test_fine_structure_gets_the_wavelength_bound(wavelength, expected):
    # A grating of wavelength 4 px lies in the finest band: alpha_0 = 9 * 4 / 16 - 1 = 1.25.
    t = np.arange(64)
    d = AMPLITUDE * np.sin(2 * np.pi * IN_BAND * t)
    x = np.arange(SIZE, dtype=np.float64)[None, None, :] * np.ones((1, SIZE, 1))
    frames = np.cos(2 * np.pi * (x - d[:, None, None]) / wavelength).astype(np.float32)
    grad_x = -2 * np.pi / wavelength * np.sin(2 * np.pi * x[0] / wavelength)
    out = np.asarray(magnify(frames[None], 8.0))[0]
    inner = (slice(None), slice(8, 24), slice(8, 24))
    gain = displacement_amplitude(out[inner], frames[0][inner[1:]], grad_x[inner[1:]], IN_BAND, 30) / AMPLITUDE
    assert gain == pytest.approx(expected, rel=0.15)


def test_level_alphas_follow_the_documented_rule():
    np.testing.assert_allclose(np.asarray(level_alphas(8.0, 5)), [1.25, 3.5, 8.0, 8.0, 8.0])
    table = np.asarray(level_alphas(np.array([5.0, 14.0]), 3))
    np.testing.assert_allclose(table, [[0.5, 2.75], [2.0, 6.5], [5.0, 14.0]])
    # alpha_c = (1 + alpha) lambda_l / lambda_c - 1 < 0 is clipped to no magnification.
    np.testing.assert_allclose(np.asarray(level_alphas(8.0, 2, wavelength_cutoff=64.0)), [0.0, 0.125])


def test_pyramid_collapses_back_exactly_and_odd_sizes_work():
    frames = np.random.default_rng(0).normal(size=(2, 3, 23, 17, 2)).astype(np.float32)
    pyramid = jax.eval_shape(lambda f: laplacian_pyramid(f, 4), frames)
    assert [band.shape[2:4] for band in pyramid] == [(23, 17), (12, 9), (6, 5), (3, 3)]
    round_trip = jax.jit(lambda f: collapse_pyramid(laplacian_pyramid(f, 4)))(frames)
    np.testing.assert_allclose(np.asarray(round_trip), frames, atol=1e-5)


def test_static_clip_and_alpha_zero_leave_clips_unchanged():
    rng = np.random.default_rng(1)
    static = np.repeat(rng.uniform(size=(2, 1, 16, 20)), 10, axis=1).astype(np.float32)
    np.testing.assert_allclose(np.asarray(magnify(static, 8.0)), static, atol=1e-5)
    moving = rng.uniform(size=(2, 10, 16, 20)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(magnify(moving, 0.0)), moving, atol=1e-5)


def test_bandpass_starts_at_zero_and_removes_constants():
    clips = np.random.default_rng(2).normal(size=(2, 12, 4, 4)).astype(np.float32)
    band = np.asarray(iir_bandpass(clips))
    np.testing.assert_allclose(band[:, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(iir_bandpass(clips + 5.0)), band, atol=1e-4)


def test_colour_channels_and_batch_elements_are_independent():
    rng = np.random.default_rng(3)
    clips = rng.uniform(size=(2, 12, 16, 16, 3)).astype(np.float32)
    alphas = np.array([5.0, 10.0], np.float32)
    out = np.asarray(magnify(clips, alphas))
    assert out.shape == clips.shape
    # Each (clip, channel) magnified alone, as one grey clip of a batch of 6.
    grey = np.moveaxis(clips, -1, 1).reshape(6, 12, 16, 16)
    separate = np.asarray(magnify(grey, np.repeat(alphas, 3)))
    np.testing.assert_allclose(np.moveaxis(out, -1, 1).reshape(6, 12, 16, 16), separate, atol=1e-5)
    # Batch elements do not mix: changing the others leaves element 3 as it was.
    others_changed = grey * np.arange(6, dtype=np.float32)[:, None, None, None] / 3
    changed = np.asarray(magnify(others_changed, np.repeat(alphas, 3)))
    np.testing.assert_allclose(changed[3], separate[3], atol=1e-5)


def test_one_clip_with_several_alphas_is_that_clip_repeated_once_per_alpha():
    clip = np.random.default_rng(6).uniform(0, 255, size=(1, 9, 16, 20, 3)).astype(np.float32)
    alphas = np.array([5.0, 8.0, 14.0], np.float32)
    repeated = np.asarray(magnify(np.repeat(clip, 3, axis=0), alphas))
    np.testing.assert_allclose(np.asarray(magnify(clip, alphas)), repeated, rtol=0, atol=1e-3)
    np.testing.assert_allclose(np.asarray(magnify(clip, alphas, frame=8)), repeated[:, 8], rtol=0, atol=1e-3)
    assert np.abs(repeated[0] - repeated[2]).max() > 1.0


@pytest.mark.parametrize("channels", [(), (3,)])
def test_one_frame_magnified_alone_is_that_frame_of_the_whole_clip(channels):
    """magnify(..., frame=t) == magnify(...)[:, t]: what STRCN-G's apex needs, without the other frames' pyramids."""
    clips = np.random.default_rng(5).uniform(0, 255, size=(2, 11, 20, 24, *channels)).astype(np.float32)
    alphas = np.array([5.0, 14.0], np.float32)
    whole = np.asarray(magnify(clips, alphas))
    for t in (0, 6, 10):
        alone = np.asarray(magnify(clips, alphas, frame=t))
        assert alone.shape == clips[:, t].shape
        np.testing.assert_allclose(alone, whole[:, t], rtol=0, atol=1e-3)
    np.testing.assert_allclose(np.asarray(magnify(clips, alphas, frame=0)), clips[:, 0], atol=1e-3)  # no band at t = 0
    assert np.abs(whole[:, 6] - clips[:, 6]).max() > 1.0  # the frames do move: the comparison is not empty
    with pytest.raises(ValueError, match="frame 11 is outside the clips' 11 frames"):
        magnify(clips, alphas, frame=11)


def test_integer_frames_are_accepted():
    clips = np.random.default_rng(4).integers(0, 256, size=(2, 10, 16, 20), dtype=np.uint8)
    out = magnify(clips, 8.0)
    assert out.dtype == np.float32 and out.shape == clips.shape


@pytest.mark.parametrize(
    "shape,alpha,kwargs,match",
    [
        ((6, 16, 16), 8.0, {}, "clips"),
        ((2, 6, 16, 16), np.ones(3), {}, "alpha"),
        ((1, 6, 8, 8), 8.0, {"levels": 4}, "levels"),
        ((1, 6, 16, 16), 8.0, {"low": 0.4, "high": 0.05}, "low"),
    ],
)
def test_bad_arguments_raise(shape, alpha, kwargs, match):
    with pytest.raises(ValueError, match=match):
        magnify(np.zeros(shape, np.float32), alpha, **kwargs)
