"""The temporal interpolation model (mer_jax.data.preprocess.tim; Zhou et al., CVPR 2011; Pfister et al., ICCV 2011).

What TIM must do by its definition, and what it measurably does to a ramp (the module docstring's figures).
Small frames keep the file fast; the sweeps over clip lengths use :func:`tim.weights` (numpy), so the jitted
:func:`tim.interpolate` compiles for a few shapes only.
"""

from __future__ import annotations

import numpy as np
import pytest

from mer_jax.data.preprocess import temporal, tim

SHAPE = (5, 4, 3)  # H, W, C


def random_clip(length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (length, *SHAPE)).astype(np.float32)


def path_laplacian(n: int) -> np.ndarray:
    adjacency = np.eye(n, k=1) + np.eye(n, k=-1)
    return np.diag(adjacency.sum(axis=1)) - adjacency


@pytest.mark.parametrize("n", [2, 3, 8, 33])
def test_the_curve_is_the_path_graphs_laplacian_eigenvectors(n):
    """y_k at s = 1..n: eigenvectors of L with eigenvalue 2 - 2 cos(pi k / n), orthogonal to the constant."""
    embedded = tim.curve(n, np.arange(1, n + 1))
    eigenvalues = 2 - 2 * np.cos(np.pi * np.arange(1, n) / n)
    np.testing.assert_allclose(path_laplacian(n) @ embedded.T, embedded.T * eigenvalues, atol=1e-12)
    np.testing.assert_allclose(embedded.sum(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(embedded @ embedded.T, np.eye(n - 1) * n / 2, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 32])
def test_at_its_own_length_it_gives_back_the_clip(n):
    clip = random_clip(n, seed=n)
    np.testing.assert_allclose(tim.interpolate(clip, n), clip, rtol=0, atol=2e-3)
    np.testing.assert_allclose(tim.weights(n, n), np.eye(n), atol=1e-12)


def test_a_ramp_is_kept_at_the_frames_and_bends_between_them_by_the_stated_bound():
    """Frames a + s b: exact at the input positions; between them at most 0.079 |b| off the line (n = 3),
    0.060 |b| for n >= 4, 1e-4 |b| over a 64-frame clip's middle third; monotone; and not linear."""
    for n in range(2, 65):
        dense = 24 * (n - 1) + 1  # every input position is an output position
        ramp = tim.weights(n, dense) @ np.arange(n, dtype=np.float64)
        line = np.linspace(0, n - 1, dense)
        deviation = np.abs(ramp - line)
        np.testing.assert_allclose(ramp[::24], np.arange(n), atol=1e-9)
        assert deviation.max() <= (0.08 if n == 3 else 0.061), n
        assert np.all(np.diff(ramp) > 0), n
        if n >= 4:
            assert deviation.max() >= 0.04, n  # TIM is not linear interpolation
        if n == 64:
            middle = (line > 21) & (line < 42)
            assert deviation[middle].max() <= 2e-4
    # The same on pixels, through the jitted function: a + s b with a, b per pixel.
    rng = np.random.default_rng(1)
    a, b = rng.uniform(50, 150, SHAPE), rng.uniform(-3, 3, SHAPE)
    for n, m in ((10, 32), (40, 64)):
        clip = (a + np.arange(n)[:, None, None, None] * b).astype(np.float32)
        out = np.asarray(tim.interpolate(clip, m))
        line = a + np.linspace(0, n - 1, m)[:, None, None, None] * b
        assert np.all(np.abs(out - line) <= 0.061 * np.abs(b) + 1e-3)
        assert np.max(np.abs(out - line) / np.abs(b)) >= 0.02  # bent, as the weights say
        np.testing.assert_allclose(out, np.tensordot(tim.weights(n, m), clip, axes=1), rtol=0, atol=1e-3)


@pytest.mark.parametrize(("n", "m"), [(1, 5), (2, 32), (5, 64), (17, 32)])
def test_it_agrees_with_linear_interpolation_where_both_must(n, m):
    """Both keep a clip still in time, repeat a single frame, keep the first and last frames, and give back
    every input frame that falls on an output position ((m - 1) a multiple of (n - 1)); for two frames
    and an odd m, the middle output is their mean in both."""
    constant = np.broadcast_to(random_clip(1, seed=m), (n, *SHAPE))
    np.testing.assert_allclose(tim.interpolate(constant, m), temporal.interpolate(constant, m), atol=2e-3)
    clip = random_clip(n, seed=n)
    ours, linear = np.asarray(tim.interpolate(clip, m)), np.asarray(temporal.interpolate(clip, m))
    np.testing.assert_allclose(ours[[0, -1]], linear[[0, -1]], atol=2e-3)
    if n > 1 and (m - 1) % (n - 1) == 0:
        step = (m - 1) // (n - 1)
        np.testing.assert_allclose(ours[::step], linear[::step], atol=2e-3)
        np.testing.assert_allclose(ours[::step], clip, atol=2e-3)
    if n == 1:
        np.testing.assert_allclose(ours, linear, atol=1e-4)
    if n == 2:
        three = np.asarray(tim.interpolate(clip, 3))
        np.testing.assert_allclose(three, temporal.interpolate(clip, 3), atol=2e-3)
    # One output frame is the first in both.
    np.testing.assert_allclose(tim.interpolate(clip, 1), linear[:1], atol=2e-3)


def test_batched_equals_one_clip_at_a_time():
    clips = np.stack([random_clip(6, seed=s) for s in range(6)]).reshape(2, 3, 6, *SHAPE)
    batched = np.asarray(tim.interpolate(clips, 9))
    assert batched.shape == (2, 3, 9, *SHAPE)
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(batched[i, j], tim.interpolate(clips[i, j], 9), rtol=0, atol=1e-4)


def test_shape_dtype_and_errors():
    frames = np.random.default_rng(0).integers(0, 256, (7, *SHAPE), dtype=np.uint8)
    out = tim.interpolate(frames, 32)
    assert out.shape == (32, *SHAPE) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], frames[0], atol=2e-3)
    assert tim.interpolate(frames.astype(np.float16), 4).dtype == np.float16
    assert tim.interpolate(frames[:1], 3).shape == (3, *SHAPE)
    np.testing.assert_allclose(tim.interpolate(frames[:1], 3), np.repeat(frames[:1], 3, axis=0), atol=1e-4)
    with pytest.raises(ValueError, match="num_frames must be >= 1; got 0"):
        tim.interpolate(frames, 0)
    with pytest.raises(ValueError, match="got -3"):
        tim.interpolate(frames, -3)
    with pytest.raises(ValueError, match=r"T = 0"):
        tim.interpolate(frames[:0], 32)
    with pytest.raises(ValueError, match=r"got shape \(7, 5, 4\)"):
        tim.interpolate(frames[..., 0], 32)
    with pytest.raises(ValueError, match="length >= 1 and num_frames >= 1; got 0 and 4"):
        tim.weights(0, 4)
