"""TLCNN (Wang et al., Neurocomputing 2018): the layers' sizes and counts, the data layer, the LSTM, the transfer."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from mer_jax.core import protocols
from mer_jax.methods.tlcnn import stages as transfer
from mer_jax.config import base_config
from mer_jax.core.dataset import Dataset
from mer_jax.core.loop import FoldRun
from mer_jax.models import count_params, create_model, model_config
from mer_jax.methods.tlcnn import tlcnn


def small(name: str, **overrides):
    config = model_config(name)
    config.update({"width": 1 / 32, "crop": 65, "clip_frames": 4, **overrides})
    return config


def test_frame_cnn_has_the_papers_sizes_and_parameter_count():
    model = nnx.eval_shape(
        lambda: create_model(model_config("tlcnn_cnn"), num_classes=4, input_shape=(240, 320, 3), rngs=nnx.Rngs(0))
    )
    assert count_params(model) == 80_260_740  # sec. 3.4's layers with four outputs
    # sec. 3.4: C1 gives 96 x 111 x 111, M1 55 x 55, C2 26 x 26, M2 "384 x 13 x 13", M5 6 x 6
    assert tlcnn.pooled_size(111) == 55 and tlcnn.pooled_size(26) == 13 and tlcnn.pooled_size(13) == 6
    assert tlcnn.last_side(227) == 6
    assert model.trunk.fc6.in_features == 6 * 6 * 384


def test_joint_model_counts_the_trunk_and_an_lstm_of_256_units():
    model = nnx.eval_shape(
        lambda: create_model(model_config("tlcnn"), num_classes=4, input_shape=(32, 240, 320, 3), rngs=nnx.Rngs(0))
    )
    assert count_params(model.lstm) == 4 * (4096 + 256 + 1) * 256
    assert count_params(model) == count_params(model.trunk) + 4 * (4096 + 256 + 1) * 256 + 256 * 4 + 4


def test_caffe_pooling_takes_the_maximum_of_windows_overhanging_the_edge():
    x = np.random.default_rng(0).normal(size=(1, 26, 26, 2)).astype(np.float32)
    out = np.asarray(tlcnn.max_pool(jnp.asarray(x)))
    assert out.shape == (1, 13, 13, 2)
    for i in range(13):
        for j in range(13):
            window = x[0, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3]
            np.testing.assert_allclose(out[0, i, j], window.max(axis=(0, 1)))


def test_response_normalization_matches_its_formula():
    x = np.random.default_rng(1).normal(size=(2, 3, 3, 7)).astype(np.float32) * 30
    out = np.asarray(tlcnn.response_normalization(jnp.asarray(x)))
    for c in range(7):
        near = x[..., max(0, c - 2) : c + 3]
        expected = x[..., c] / (1 + 1e-4 / 5 * (near**2).sum(-1)) ** 0.75
        np.testing.assert_allclose(out[..., c], expected, rtol=1e-5)


def test_data_layer_crops_the_centre_for_testing_and_anywhere_inside_for_training():
    x = np.arange(2 * 3 * 10 * 12 * 1, dtype=np.float32).reshape(2, 3, 10, 12, 1)
    centre = np.asarray(tlcnn.data_layer(jnp.asarray(x), 6, train=False, rngs=None))
    np.testing.assert_array_equal(centre, x[:, :, 2:8, 3:9] - 0.5)
    seen = set()
    for seed in range(20):
        crop = np.asarray(tlcnn.data_layer(jnp.asarray(x), 6, train=True, rngs=nnx.Rngs(dropout=seed))) + 0.5
        for example in range(2):
            top, left = divmod(int(crop[example, 0, 0, 0, 0] - x[example, 0, 0, 0, 0]), 12)
            np.testing.assert_array_equal(crop[example], x[example, :, top : top + 6, left : left + 6])
            seen.add((top, left))
    assert len(seen) > 5  # the place varies


def test_lstm_matches_a_step_by_step_reference():
    lstm = tlcnn.LSTM(5, 3, rngs=nnx.Rngs(0))
    lstm.bias[...] = jnp.linspace(-1, 1, 12)
    x = np.random.default_rng(2).normal(size=(2, 4, 5)).astype(np.float32)
    out = np.asarray(lstm(jnp.asarray(x)))
    w, u, b = (np.asarray(p[...]) for p in (lstm.kernel, lstm.recurrent_kernel, lstm.bias))
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = c = np.zeros((2, 3))
    for t in range(4):
        i, f, o, g = np.split(x[:, t] @ w + h @ u + b, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        np.testing.assert_allclose(out[:, t], h, rtol=1e-5, atol=1e-6)


def test_training_clips_are_cut_to_consecutive_frames_and_test_clips_keep_all():
    model = create_model(small("tlcnn"), num_classes=3, input_shape=(6, 70, 70, 3), rngs=nnx.Rngs(0))
    x = np.random.default_rng(3).integers(0, 255, (2, 6, 70, 70, 3)).astype(np.uint8)
    seen = []
    original = tlcnn.FrameTrunk.__call__

    def spy(self, frames):
        seen.append(frames.shape)
        return original(self, frames)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tlcnn.FrameTrunk, "__call__", spy)
        nnx.eval_shape(lambda: model(jnp.asarray(x), train=True, rngs=nnx.Rngs(dropout=0)))  # shapes only
        nnx.eval_shape(lambda: model(jnp.asarray(x)))
    assert seen == [(2 * 4, 65, 65, 3), (2 * 6, 65, 65, 3)]


def test_a_crop_too_small_for_the_layers_names_the_smallest():
    with pytest.raises(ValueError, match="model.crop=40 .* at least 65"):
        create_model(small("tlcnn_cnn", crop=40), num_classes=3, input_shape=(70, 70, 3), rngs=nnx.Rngs(0))


def _state(name, classes, shape, folds, seed):
    model = create_model(small(name), num_classes=classes, input_shape=shape, rngs=nnx.Rngs(seed))
    params = nnx.state(model, nnx.Param)
    return {"params": jax.tree.map(lambda leaf: np.stack([np.asarray(leaf)] * folds), params), "opt": ()}


def test_transfer_copies_the_named_layers_to_every_fold_and_keeps_the_rest():
    source = _state("tlcnn_cnn", 9, (70, 70, 3), 1, seed=1)["params"]
    target = _state("tlcnn_cnn", 4, (70, 70, 3), 3, seed=2)
    moved = transfer.transferred(target, source, ("trunk", "fc7"))
    for fold in range(3):
        np.testing.assert_array_equal(moved["params"]["trunk"]["fc6"]["kernel"][fold], source["trunk"]["fc6"]["kernel"][0])
        np.testing.assert_array_equal(moved["params"]["fc7"]["kernel"][fold], source["fc7"]["kernel"][0])
        np.testing.assert_array_equal(moved["params"]["fc8"]["kernel"][fold], target["params"]["fc8"]["kernel"][fold])
    joint = _state("tlcnn", 4, (6, 70, 70, 3), 3, seed=3)
    moved = transfer.transferred(joint, target["params"], ("trunk",))
    np.testing.assert_array_equal(moved["params"]["trunk"]["convs"][0]["kernel"], target["params"]["trunk"]["convs"][0]["kernel"])
    with pytest.raises(ValueError, match="fc8"):
        transfer.transferred(target, source, ("trunk", "fc8"))  # nine classes there, four here
    with pytest.raises(ValueError, match="no such layer"):
        transfer.transferred(joint, target["params"], ("trunk", "fc7"))


def test_plateau_rule_stops_after_patience_epochs_of_little_change():
    accuracy = np.array([[0.2, 0.2], [0.5, 0.21], [0.7, 0.211], [0.705, 0.5], [0.706, 0.9], [0.9, 0.9]])
    np.testing.assert_array_equal(transfer.plateau_epochs(accuracy, 0.01, 2, 100), [5, 3])
    np.testing.assert_array_equal(transfer.plateau_epochs(accuracy[:3], 0.01, 3, 100), [100, 100])


def tiny_config(epochs=(3, 8, 15)):
    """Every stage at 1/32 of the paper's width on 70 x 70 frames: a few seconds of training each."""
    config = base_config("tlcnn_cnn")
    config.model = ml_collections.ConfigDict({"name": "tlcnn"})
    config.data.input_shape = (6, 70, 70, 3)
    config.train.strategy = "loop"
    config.train.learning_rate = 0.01
    config.train.weight_decay = 0.0
    cnn, joint = small("tlcnn_cnn"), small("tlcnn")
    config.stages = ml_collections.ConfigDict({
        "expressions": {
            "enabled": True, "model": cnn, "data": (), "input_shape": (70, 70, 3), "validation_fraction": 0.2,
            "stop_delta": 0.001, "stop_patience": 2, "transfer": (), "train": {"batch_size": 16, "epochs": epochs[0]},
        },
        "frames": {"enabled": True, "model": cnn, "transfer": ("trunk", "fc7"),
                   "train": {"batch_size": 32, "epochs": epochs[1]}},
        "clips": {"model": joint, "transfer": ("trunk",), "train": {"batch_size": 8, "epochs": epochs[2]}},
    })
    return config


def tiny_data(signal: bool):
    """36 clips of 6 subjects, each with two clips of each of 3 classes; with `signal`, a class brightens its
    own band of rows in every frame. 90 noise images of 10 people in 9 classes for stage a."""
    rng = np.random.default_rng(0)
    n = 36
    label = ((np.arange(n) // 6) % 3).astype(np.int32)
    x = rng.integers(0, 100, (n, 6, 70, 70, 3)).astype(np.uint8)
    if signal:
        for i in range(n):
            x[i, :, 8 + 18 * label[i] : 26 + 18 * label[i]] += 120
    clips = Dataset(
        x=x, label=label, subject=np.array([f"s{i % 6}" for i in range(n)]), dataset=np.full(n, "synthetic"),
        sample_id=np.array([f"c{i:02d}" for i in range(n)]), class_names=("a", "b", "c"),
    )
    m = 90
    images = Dataset(
        x=rng.integers(0, 255, (m, 70, 70, 3)).astype(np.uint8), label=(np.arange(m) % 9).astype(np.int32),
        subject=np.array([f"p{i % 10}" for i in range(m)]), dataset=np.full(m, "kdef"),
        sample_id=np.array([f"i{i:02d}" for i in range(m)]), class_names=tuple("abcdefghi"),
    )
    return clips, images


def held_out_accuracy(result, clips) -> float:
    return float((result.test_logits.argmax(-1) == clips.label[result.test_index])[result.test_valid].mean())


def test_three_stages_learn_a_visible_class_and_nothing_without_it():
    accuracy = {}
    for signal in (True, False):
        clips, images = tiny_data(signal)
        result = transfer.train_stages(
            tiny_config(),
            clips,
            protocols.loso(clips.subject),
            FoldRun(progress=False),
            images=images,
        )
        assert list(result.stages) == ["expressions", "frames", "clips"]
        accuracy[signal] = held_out_accuracy(result, clips)
    assert accuracy[True] >= 0.8, accuracy
    assert accuracy[False] <= 0.55, accuracy


@pytest.mark.parametrize("skipped", [(), ("expressions",), ("expressions", "frames")])
def test_ablations_skip_stages_and_start_the_next_from_fresh_weights(skipped, monkeypatch):
    config = tiny_config(epochs=(1, 1, 1))
    for stage in skipped:
        config.stages[stage].enabled = False
    clips, images = tiny_data(True)
    calls = []
    real = transfer.train_folds

    def spy(stage_config, dataset, folds, run, *, initial_state, **options):
        result = real(stage_config, dataset, folds, run, initial_state=initial_state, **options)
        start = None if initial_state is None else initial_state(result.state)["params"]["trunk"]
        calls.append((dataset.num_classes, dataset.x.ndim, start, result.state["params"]["trunk"]))
        return result

    monkeypatch.setattr(transfer, "train_folds", spy)
    result = transfer.train_stages(config, clips, protocols.loso(clips.subject), FoldRun(progress=False), images=images)
    ran = [stage for stage in transfer.STAGES if stage not in skipped]
    assert list(result.stages) == ran
    assert [(classes, rank) for classes, rank, _, _ in calls] == [
        {"expressions": (9, 4), "frames": (3, 4), "clips": (3, 5)}[stage] for stage in ran
    ]
    assert calls[0][2] is None  # the first stage run starts from fresh weights
    for (_, _, _, before), (_, _, start, _) in zip(calls, calls[1:]):  # each later one from the one before
        jax.tree.map(lambda b, s: np.testing.assert_array_equal(np.broadcast_to(b, s.shape), s), before, start)


def test_bfloat16_computes_the_layers_in_bfloat16_and_keeps_the_weights_and_logits_float32():
    x = np.random.default_rng(0).integers(0, 255, (2, 6, 70, 70, 3)).astype(np.uint8)
    full = create_model(small("tlcnn"), num_classes=3, input_shape=x.shape[1:], rngs=nnx.Rngs(0))
    mixed = create_model(small("tlcnn", dtype="bfloat16"), num_classes=3, input_shape=x.shape[1:], rngs=nnx.Rngs(0))
    assert {leaf.dtype for leaf in jax.tree.leaves(nnx.state(mixed, nnx.Param))} == {jnp.dtype(jnp.float32)}
    ours, theirs = full(x), mixed(x)
    assert theirs.dtype == jnp.float32
    np.testing.assert_allclose(theirs, ours, atol=0.05 * float(jnp.abs(ours).max()))
    assert not np.array_equal(theirs, ours)  # really computed in another precision
    with pytest.raises(ValueError, match="model.dtype='float16'"):
        create_model(small("tlcnn", dtype="float16"), num_classes=3, input_shape=x.shape[1:], rngs=nnx.Rngs(0))


@pytest.mark.slow  # bfloat16's layers are checked above, data off the device in tests/test_train.py
def test_three_stages_learn_in_bfloat16_with_the_data_off_the_device():
    clips, images = tiny_data(True)
    config = tiny_config()
    config.train.data_on_device = False
    for stage in config.stages.values():
        stage.model.dtype = "bfloat16"
    result = transfer.train_stages(config, clips, protocols.loso(clips.subject), FoldRun(progress=False), images=images)
    assert held_out_accuracy(result, clips) >= 0.8
