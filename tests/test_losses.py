import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mer_jax.core.losses import balanced_cross_entropy, cross_entropy, focal_loss, get_loss


def _random_batch(batch=12, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(batch, classes)).astype(np.float32)
    labels = rng.integers(0, classes, size=batch)
    return logits, labels


def _numpy_balanced(logits, labels):
    """Xia et al., TMM 2019, eq. 9-10 written out with explicit loops."""
    logits = logits.astype(np.float64)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    batch, classes = logits.shape
    present = np.unique(labels)
    total = 0.0
    for i in range(batch):
        loss_i = 0.0
        for c in range(classes):
            y = 1.0 if labels[i] == c else 0.0
            loss_i -= np.log(p[i, c] ** y * (1 - p[i, c]) ** (1 - y))
        beta_i = batch / (len(present) * np.sum(labels == labels[i]))
        total += beta_i * loss_i
    return total / batch


def test_cross_entropy_matches_optax():
    logits, labels = _random_batch()
    expected = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    np.testing.assert_allclose(cross_entropy(logits, labels), expected, rtol=1e-6)


def test_balanced_matches_numpy_reference_on_imbalanced_batch():
    logits, _ = _random_batch(batch=10, classes=4, seed=1)
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])  # class 3 absent
    np.testing.assert_allclose(
        balanced_cross_entropy(logits, labels), _numpy_balanced(logits, labels), rtol=1e-5
    )


def test_balanced_gives_each_present_class_equal_weight():
    # Three confident samples of class 0 (loss l_a each) and one unsure sample of
    # class 1 (loss l_b): betas 4/(2*3) and 4/(2*1), so the loss is (l_a + l_b) / 2.
    logits = np.array([[3.0, 0.0], [3.0, 0.0], [3.0, 0.0], [0.0, 0.0]], np.float32)
    labels = np.array([0, 0, 0, 1])
    l_a = 2 * np.log1p(np.exp(-3.0))  # -log p_0 - log(1 - p_1), both equal -log p_0 for C = 2
    l_b = 2 * np.log(2.0)
    np.testing.assert_allclose(balanced_cross_entropy(logits, labels), (l_a + l_b) / 2, rtol=1e-5)


def test_balanced_equals_unweighted_on_balanced_batch():
    logits, _ = _random_batch(batch=9, classes=3, seed=2)
    labels = np.array([0, 1, 2, 2, 1, 0, 1, 0, 2])
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    one_hot = np.eye(3)[labels]
    unweighted = -np.mean(np.sum(one_hot * np.log(p) + (1 - one_hot) * np.log(1 - p), axis=1))
    np.testing.assert_allclose(balanced_cross_entropy(logits, labels), unweighted, rtol=1e-5)
    assert not np.isclose(balanced_cross_entropy(logits, labels), cross_entropy(logits, labels))


def test_focal_gamma_zero_is_cross_entropy_and_gamma_two_matches_formula():
    logits, labels = _random_batch(seed=3)
    np.testing.assert_allclose(focal_loss(logits, labels, gamma=0.0), cross_entropy(logits, labels), rtol=1e-6)
    p_t = np.exp(-optax.softmax_cross_entropy_with_integer_labels(logits, labels))
    expected = np.mean(-((1 - p_t) ** 2) * np.log(p_t))
    np.testing.assert_allclose(focal_loss(logits, labels), expected, rtol=1e-5)


@pytest.mark.parametrize("name", ["cross_entropy", "balanced", "focal"])
def test_gradients_finite_for_extreme_logits(name):
    logits = jnp.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 1e4], [50.0, -50.0, 0.0]])
    labels = jnp.array([0, 0, 2, 1])
    loss_fn = get_loss(name)
    value, grad = jax.value_and_grad(loss_fn)(logits, labels)
    assert np.isfinite(value)
    assert np.all(np.isfinite(grad))
    assert grad.shape == logits.shape


def test_focal_gamma_zero_gradient_finite_when_confident():
    logits = jnp.array([[1e4, -1e4], [0.0, 1.0]])
    grad = jax.grad(focal_loss)(logits, jnp.array([0, 1]), 0.0)
    assert np.all(np.isfinite(grad))


def test_losses_are_jittable_scalars():
    logits, labels = _random_batch()
    for name in ["cross_entropy", "balanced", "focal"]:
        value = jax.jit(get_loss(name))(logits, labels)
        assert value.shape == ()


def test_get_loss_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"'hinge'.*balanced.*cross_entropy.*focal"):
        get_loss("hinge")


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(3,\)"):
        cross_entropy(np.zeros((4, 2)), np.zeros(3, int))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        balanced_cross_entropy(np.zeros(4), np.zeros(4, int))
    with pytest.raises(ValueError, match="-1"):
        focal_loss(np.zeros((2, 2)), np.zeros(2, int), gamma=-1)
