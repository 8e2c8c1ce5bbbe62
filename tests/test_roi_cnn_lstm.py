"""Aouayeb et al., MLSP 2019: the six region CNNs (stage 1), the region LSTMs (stage 2) and eq. 2's focal loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mer_jax.describe import describe_model
from mer_jax.core.losses import focal_loss, inverse_frequency
from mer_jax.models import count_params, create_model, model_config

# Small regions on a 20x24 canvas, each smaller than the canvas so that the canvas around it can be perturbed.
SIZES = ((12, 14), (16, 12), (12, 12), (13, 15), (12, 20), (14, 12))
CANVAS = (6, 20, 24, 1)

# One compiled program per input shape and dtype; called eagerly, every op would compile on its own.
forward = nnx.jit(lambda model, x: model(x))
forward_with_features = nnx.jit(lambda model, x: (model(x), model.features(x)))


def _config(name, **overrides):
    config = model_config(name)
    config.update(overrides)
    return config


def _abstract(name, input_shape, **overrides):
    """Model `name` with shapes only, nothing initialised."""
    config = _config(name, **overrides)
    return nnx.eval_shape(lambda: create_model(config, num_classes=3, input_shape=input_shape, rngs=nnx.Rngs(0)))


def _random_weights(name, input_shape, **overrides):
    """Model `name` with weights drawn by NumPy (N(0, 1 / fan-in), biases N(0, 0.1^2)).

    The models' own initialisers compile one XLA program per parameter shape,
    seconds each on 2 cores; what these tests check does not depend on them.
    """
    graphdef, state = nnx.split(_abstract(name, input_shape, **overrides))
    rng = np.random.default_rng(0)

    def draw(leaf):
        scale = 1 / np.sqrt(np.prod(leaf.shape[:-1])) if len(leaf.shape) > 1 else 0.1
        return jnp.asarray(rng.normal(scale=scale, size=leaf.shape), leaf.dtype)

    return nnx.merge(graphdef, jax.tree.map(draw, state))


def _small_cnn():
    return _random_weights("roi_cnn", CANVAS, region_sizes=SIZES, dense=16, features=5)


def _small_lstm():
    return _random_weights("roi_lstm", (9, 6 * 3 + 1), features=3, lstm_units=5, fc=4)


def _cnn_counts(channels):
    """One region CNN's parameters by layer, written out from sec. 4.1.2 (weights + biases)."""
    return {
        "conv 4@5x5": 5 * 5 * channels * 4 + 4,
        "conv 8@3x3": 3 * 3 * 4 * 8 + 8,
        "branch 1x1": 1 * 1 * 8 * 16 + 16,
        "branch 3x3": 3 * 3 * 8 * 16 + 16,
        "branch 5x5": 5 * 5 * 8 * 16 + 16,
        "branch 7x7": 7 * 7 * 8 * 16 + 16,
        "dense 1024": (8 + 4 * 16) * 1024 + 1024,  # global average pool of 72 channels
        "dense 20": 1024 * 20 + 20,
        "head 3 + not me": 20 * 4 + 4,
    }


def test_parameter_counts_per_layer_and_the_papers_total():
    lstm = _abstract("roi_lstm", (500, 121))
    lstm_counts = {
        "lstms": 6 * 4 * (120 * (20 + 120) + 120),
        "fc": 6 * 120 * 64 + 64,
        "out": 64 * 3 + 3,
    }
    assert {name: count_params(getattr(lstm, name)) for name in lstm_counts} == lstm_counts
    assert count_params(lstm) == sum(lstm_counts.values()) == 452_419
    totals = {}
    for channels in (1, 3, 4):
        cnn = _abstract("roi_cnn", (6, 120, 160, channels))
        region = cnn.cnns[0]
        layers = [*region.convs, *region.branches, region.hidden, region.feature, region.head]
        assert [count_params(layer) for layer in layers] == list(_cnn_counts(channels).values())
        assert count_params(cnn) == 6 * sum(_cnn_counts(channels).values())
        totals[channels] = count_params(cnn) + count_params(lstm)
    # Grey and colour fall short of the paper's 1,093,531 (sec. 5); four input channels reach it (docs/models.md).
    assert totals == {1: 1_091_731, 3: 1_092_931, 4: 1_093_531}


def test_shapes_features_and_uint8_scaling():
    model = _small_cnn()
    x = np.random.default_rng(0).integers(0, 256, (2, *CANVAS), dtype=np.uint8)
    logits, features = forward_with_features(model, x)
    assert logits.shape == (2, 6, 4)  # 3 classes + "not me" per region
    assert features.shape == (2, 6, 5)
    assert np.all(np.asarray(features) >= 0)  # ReLU outputs (sec. 4.1.2: ReLU "for all previous layers")
    scaled, scaled_features = forward_with_features(model, x.astype(np.float32) / 255.0)
    np.testing.assert_allclose(scaled, logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scaled_features, features, rtol=1e-5, atol=1e-6)
    # The features are what each head reads: the head of region r applied to them gives region r's logits.
    heads = jnp.stack([cnn.head(features[:, r]) for r, cnn in enumerate(model.cnns)], axis=1)
    np.testing.assert_allclose(heads, logits, rtol=1e-5, atol=1e-6)


def test_each_region_cnn_sees_only_its_own_region():
    model = _small_cnn()
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(2, *CANVAS)).astype(np.float32)
    base, _ = forward_with_features(model, x)
    for r, (h, w) in enumerate(SIZES):
        inside = x.copy()
        inside[:, r, :h, :w] = rng.uniform(size=inside[:, r, :h, :w].shape)
        changed = np.abs(forward_with_features(model, inside)[0] - base).max(axis=(0, 2)) > 1e-6
        assert changed.tolist() == [i == r for i in range(6)], f"region {r}"
        outside = x.copy()
        outside[:, r, h:, :] = rng.uniform(size=outside[:, r, h:, :].shape)
        outside[:, r, :, w:] = rng.uniform(size=outside[:, r, :, w:].shape)
        np.testing.assert_array_equal(forward_with_features(model, outside)[0], base)


def test_regions_that_do_not_fit_the_canvas_are_refused():
    config = _config("roi_cnn", region_sizes=((12, 30),) * 6)
    with pytest.raises(ValueError, match=r"region 0 of size \(12, 30\) must fit the \(20, 24\) canvas"):
        create_model(config, num_classes=3, input_shape=CANVAS, rngs=nnx.Rngs(0))
    config = _config("roi_cnn", region_sizes=((11, 12),) * 6)
    with pytest.raises(ValueError, match="at least 12 on each side"):
        create_model(config, num_classes=3, input_shape=CANVAS, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"\(T, 6 regions x 20 features \+ 1 validity flag = 121\)"):
        create_model(model_config("roi_lstm"), num_classes=3, input_shape=(10, 120), rngs=nnx.Rngs(0))


def _sequences(lengths, steps, rng, features=3):
    x = np.zeros((len(lengths), steps, 6 * features + 1), np.float32)
    for i, n in enumerate(lengths):
        x[i, :n, :-1] = rng.normal(size=(n, 6 * features))
        x[i, :n, -1] = 1.0
    return x


def _numpy_lstm_head(model, x):
    """The region LSTMs run over each clip's real frames only, then dense LeakyReLU and dense, in NumPy."""
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    lstms = model.lstms
    kernel, recurrent, bias = (np.asarray(p[...], np.float64) for p in (lstms.kernel, lstms.recurrent_kernel, lstms.bias))
    regions, features, units = kernel.shape[0], kernel.shape[1], recurrent.shape[1]
    logits = []
    for clip in x.astype(np.float64):
        real = clip[clip[:, -1] == 1.0, :-1].reshape(-1, regions, features)
        states = []
        for r in range(regions):
            h, c = np.zeros(units), np.zeros(units)
            for frame in real[:, r]:
                z = frame @ kernel[r] + h @ recurrent[r] + bias[r]
                i, f, g, o = (z[k * units : (k + 1) * units] for k in range(4))  # keras's gate order
                c = sig(f) * c + sig(i) * np.tanh(g)
                h = sig(o) * np.tanh(c)
            states.append(h)
        hidden = np.concatenate(states) @ np.asarray(model.fc.kernel[...]) + np.asarray(model.fc.bias[...])
        hidden = np.where(hidden > 0, hidden, model.leaky_slope * hidden)
        logits.append(hidden @ np.asarray(model.out.kernel[...]) + np.asarray(model.out.bias[...]))
    return np.stack(logits)


def test_lstm_matches_numpy_restatement_over_the_real_frames():
    model = _small_lstm()
    x = _sequences([9, 4, 1], 9, np.random.default_rng(2))
    np.testing.assert_allclose(forward(model, x), _numpy_lstm_head(model, x), rtol=1e-4, atol=1e-5)
    assert model.leaky_slope == 0.3


def test_lstm_padding_is_masked():
    model = _small_lstm()
    rng = np.random.default_rng(3)
    x = _sequences([5, 3], 9, rng)
    base = np.asarray(forward(model, x))
    longer = np.concatenate([x, np.zeros((2, 6, x.shape[-1]), np.float32)], axis=1)  # more padding at the end
    np.testing.assert_allclose(forward(model, longer), base, rtol=1e-6, atol=1e-7)
    padded = x.copy()
    padded[0, 5:, :-1] = rng.normal(size=padded[0, 5:, :-1].shape)  # a padded frame's features (flag 0)
    np.testing.assert_allclose(forward(model, padded), base, rtol=1e-6, atol=1e-7)
    real = x.copy()
    real[0, 4, :-1] += 1.0  # the last real frame of clip 0
    moved = np.asarray(forward(model, real))
    assert np.abs(moved[0] - base[0]).max() > 1e-4
    np.testing.assert_allclose(moved[1], base[1], rtol=1e-6, atol=1e-7)


@pytest.mark.slow  # initialises both models for real: ~40 s of XLA compiles on 2 cores
def test_describe_shows_both_stages():
    config = _config("roi_cnn", region_sizes=SIZES, dense=16, features=5)
    cnn = describe_model(config, num_classes=3, input_shape=CANVAS, depth=3)
    assert "cnns/5/head" in cnn and f"params: {count_params(_small_cnn())}" in cnn
    config = _config("roi_lstm", features=3, lstm_units=5, fc=4)
    lstm = describe_model(config, num_classes=3, input_shape=(9, 19))
    assert "RegionLSTMs" in lstm and f"params: {count_params(_small_lstm())}" in lstm


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_focal_loss_is_eq_2_for_two_classes():
    """Eq. 2 as printed: -a (1 - p)^g log p if y = 1, -(1 - a) p^g log(1 - p) otherwise, p = P(class 1)."""
    rng = np.random.default_rng(4)
    logits = rng.normal(scale=2.0, size=(16, 2))
    labels = rng.integers(0, 2, 16)
    a, gamma = 0.7, 2.0
    p = _softmax(logits)[:, 1]
    eq2 = np.where(labels == 1, -a * (1 - p) ** gamma * np.log(p), -(1 - a) * p**gamma * np.log(1 - p))
    loss = focal_loss(logits.astype(np.float32), labels, gamma=gamma, alpha=np.array([1 - a, a]))
    np.testing.assert_allclose(loss, eq2.mean(), rtol=1e-5)


def _numpy_inverse_frequency(labels, num_classes, mask):
    alpha = np.zeros((labels.shape[1], num_classes))
    for r in range(labels.shape[1]):
        counts = np.array([np.sum(labels[mask, r] == c) for c in range(num_classes)])
        present = counts > 0
        alpha[r, present] = (1.0 / counts[present]) / np.sum(1.0 / counts[present])
    return alpha


def test_focal_loss_with_per_region_alpha_matches_numpy():
    rng = np.random.default_rng(5)
    labels = rng.choice(4, size=(40, 6), p=[0.5, 0.2, 0.1, 0.2])
    labels[:, 2] = np.where(labels[:, 2] == 1, 0, labels[:, 2])  # class 1 absent from region 2
    mask = rng.uniform(size=40) < 0.7
    alpha = jax.jit(inverse_frequency, static_argnums=1)(labels, 4, mask)
    expected_alpha = _numpy_inverse_frequency(labels, 4, mask)
    np.testing.assert_allclose(alpha, expected_alpha, rtol=1e-6)
    assert alpha[2, 1] == 0 and np.allclose(np.asarray(alpha).sum(axis=1), 1.0)

    logits = rng.normal(scale=2.0, size=(40, 6, 4))
    p = _softmax(logits)
    expected = np.mean(
        [
            -expected_alpha[r, labels[b, r]] * (1 - p[b, r, labels[b, r]]) ** 2 * np.log(p[b, r, labels[b, r]])
            for b in range(40)
            for r in range(6)
        ]
    )
    np.testing.assert_allclose(focal_loss(logits.astype(np.float32), labels, alpha=alpha), expected, rtol=1e-5)


def test_focal_loss_alpha_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"alpha of shape \(3,\) does not broadcast to the logits' \(2, 6, 4\)"):
        focal_loss(np.zeros((2, 6, 4)), np.zeros((2, 6), int), alpha=np.ones(3))
    with pytest.raises(ValueError, match=r"mask must have shape \(5,\), got \(4,\)"):
        inverse_frequency(np.zeros((5, 6), int), 4, mask=np.ones(4, bool))
