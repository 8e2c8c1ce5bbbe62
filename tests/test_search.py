"""The architecture search (mer_jax/methods/rcn/search.py) and its model family (mer_jax/methods/rcn/rcn_searched.py).

Xia et al., TIP 2020, sec. IV-C-4, eq. 8: eq. 8's mixing, alphas kept positive,
alphas learned from validation subjects only and weights from fitting subjects
only (the held-out subject never read), the outputs, and the derived config
training with `mer-jax train`'s library call.
"""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mer_jax.data import builds
from mer_jax.core.dataset import Dataset
from mer_jax.cli import load_config
from mer_jax.config import sibling_config
from mer_jax.methods.rcn import rcn, rcn_searched
from mer_jax.methods.rcn.rcn_searched import NAMED_PLACEMENTS, Placement, RCNSearched, RCNSupernet
from mer_jax.methods.rcn.search import (
    SearchSteps,
    alphas_of,
    make_supernet,
    rank_architectures,
    search,
    validation_split,
)
from mer_jax.train import train_and_evaluate

# 9 subjects x 8 clips of 30 x 30 maps: LOSO fold 0 holds out casme2/sub01 and keeps 8 training subjects.
SIZE = 30


def tiny_config():
    config = load_config("configs/rcn_search.py", [])
    config.data.toy_flow.update(subjects_per_dataset=(3, 3, 3), clips_per_subject=8, size=SIZE)
    config.data.input_shape = (SIZE, SIZE, 3)
    config.model.features = 6
    config.train.batch_size = 8
    config.train.epochs = 1  # the derived config's training
    config.search.update(num_folds=1, epochs=2, warmup_epochs=1)
    return config


@pytest.fixture(scope="module")
def dataset():
    return builds.load(tiny_config().data)


def small_input(seed=1, batch=4):
    return jax.random.normal(jax.random.PRNGKey(seed), (batch, SIZE, SIZE, 3))


@pytest.fixture(scope="module")
def supernet():
    return RCNSupernet(num_classes=3, features=6, recurrent_steps=3, rngs=nnx.Rngs(0))


def with_alphas(supernet: RCNSupernet, alphas: dict) -> RCNSupernet:
    """A copy of `supernet` with the given nodes' alphas."""
    model = nnx.clone(supernet)
    for node, value in alphas.items():
        model.alphas[node][...] = jnp.asarray(value, jnp.float32)
    return model


def test_eq8_mixes_the_two_stems_by_alpha_over_its_sum(supernet):
    model = with_alphas(supernet, {"stem": [0.3, 1.2]})
    x = small_input()
    mixed = model._stem(x, model._weights()["stem"], train=False, rngs=None)
    plain = model.stem_plain(x, train=False, rngs=None)
    wide = model.stem_wide(x, train=False, rngs=None)
    by_hand = (0.3 * np.asarray(plain) + 1.2 * np.asarray(wide)) / 1.5
    np.testing.assert_allclose(mixed, by_hand, rtol=1e-5, atol=1e-6)


def test_eq8_mixes_the_unfolded_convolutions_of_the_two_recurrences(supernet):
    """F_n = w_plain W_r * (x + h_{n-1}) + w_shortcut W_r * (x + h_0 + ... + h_{n-1}), each convolution on its own."""
    model = with_alphas(supernet, {"recurrence": [2.0, 0.5]})
    x = jax.random.normal(jax.random.PRNGKey(3), (2, 10, 10, 6))
    ones = jnp.ones((2, 5, 5))  # an attention map of ones: every attention node gives its features back
    got = model._recurrence(x, ones, model._weights(), train=False)
    rconv = model.rconv

    def g(norm, z):
        return jax.nn.relu(norm(z, use_running_average=True))

    h = g(rconv.feedforward_norm, rconv.feedforward(x))
    earlier = x + h
    for norm in rconv.recurrent_norms:
        h = g(norm, 0.8 * rconv.recurrent(x + h) + 0.2 * rconv.recurrent(earlier))
        earlier = earlier + h
    np.testing.assert_allclose(got, h, rtol=1e-5, atol=1e-5)


def test_eq8_attention_node_is_the_weighted_sum_of_features_and_attended_features():
    h = jax.random.uniform(jax.random.PRNGKey(4), (2, 5, 5, 6))
    attention = jax.random.uniform(jax.random.PRNGKey(5), (2, 5, 5))
    weights = tuple(rcn_searched.eq8_weights(jnp.array([1.0, 3.0])))
    got = RCNSupernet._attend(h, attention, weights)
    np.testing.assert_allclose(got, 0.25 * h + 0.75 * h * attention[..., None], rtol=1e-6)


@pytest.mark.parametrize("name", list(NAMED_PLACEMENTS))
def test_each_named_placement_is_that_rcn_model_with_the_same_weights(name):
    reference = rcn.RCN(num_classes=3, features=6, modules=rcn.MODULES[name], rngs=nnx.Rngs(0))
    model = RCNSearched(num_classes=3, features=6, placement=NAMED_PLACEMENTS[name], rngs=nnx.Rngs(1))
    nnx.update(model, nnx.state(reference))
    x = small_input()
    np.testing.assert_array_equal(model(x), reference(x))
    np.testing.assert_array_equal(  # training mode: the same dropout masks and batch statistics
        model(x, train=True, rngs=nnx.Rngs(dropout=7)), reference(x, train=True, rngs=nnx.Rngs(dropout=7))
    )
    assert rcn_searched.named_model(NAMED_PLACEMENTS[name]) == name


@pytest.mark.parametrize(
    "placement", [NAMED_PLACEMENTS["rcn_f"], Placement("plain", "plain", ("stem", "state_2", "parallel", "output"))]
)
def test_the_supernet_with_one_hot_alphas_is_the_derived_architecture(supernet, placement):
    choice = placement.choice(3)
    nodes = rcn_searched.search_nodes(3)
    supernet = with_alphas(supernet, {node: [c == choice[node] for c in options] for node, options in nodes.items()})
    model = supernet.copy_into(RCNSearched(num_classes=3, features=6, placement=placement, rngs=nnx.Rngs(9)))
    x = small_input()
    np.testing.assert_allclose(supernet(x), model(x), rtol=1e-5, atol=1e-6)


def test_validation_subjects_come_from_each_source_datasets_training_subjects(dataset):
    held_out = dataset.subject == "casme2/sub01"
    fit, validation, subjects = validation_split(dataset.subject, dataset.dataset, ~held_out, 0.5, seed=0)
    assert not (fit & validation).any() and not ((fit | validation) & held_out).any()
    assert ((fit | validation) == ~held_out).all()
    assert set(np.unique(dataset.subject[validation])) == set(subjects)
    assert "casme2/sub01" not in subjects
    for name in ("casme2", "samm", "smic"):  # every source data set both fits and validates
        assert (validation & (dataset.dataset == name)).any() and (fit & (dataset.dataset == name)).any()
    assert len(subjects) == 1 + 2 + 2  # round(0.5 * n) of casme2's 2, samm's 3 and smic's 3 training subjects


def test_alphas_learn_from_validation_samples_only_and_weights_from_fitting_samples_only(dataset):
    config = tiny_config()
    supernet = make_supernet(config, dataset.input_shape, 3, jax.random.PRNGKey(0))
    steps = SearchSteps.for_supernet(supernet, config)
    start = steps.init(supernet)
    fit_index, val_index = np.arange(8, 16), np.arange(40, 48)
    held_out = np.arange(0, 8)

    def run(poisoned, update_alpha, alpha_lr=0.05):
        x = dataset.x.copy()
        x[poisoned] = np.nan
        state, fit_loss, val_loss = steps.step(
            start, jnp.asarray(x), jnp.asarray(dataset.label), fit_index, val_index, jax.random.PRNGKey(1),
            0.01, alpha_lr, update_alpha=update_alpha,
        )
        return state

    def leaves(tree):
        return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]

    everything_else = np.setdiff1d(np.arange(len(dataset.x)), val_index)
    clean = run([], update_alpha=True)
    with_only_validation = run(everything_else, update_alpha=True)
    for a, b in zip(leaves(clean["arch"]), leaves(with_only_validation["arch"])):
        np.testing.assert_array_equal(a, b)  # the alpha step read the validation batch only
    assert all(np.isfinite(a).all() for a in leaves(with_only_validation["arch"]))
    assert any((a != b).any() for a, b in zip(leaves(clean["arch"]), leaves(start["arch"])))

    clean = run([], update_alpha=False)
    without_validation = run(np.concatenate([val_index, held_out]), update_alpha=False)
    for part in ("params", "stats", "arch"):
        for a, b in zip(leaves(clean[part]), leaves(without_validation[part])):
            np.testing.assert_array_equal(a, b)  # the weight step read the fitting batch only
    assert all(np.isfinite(p).all() for p in leaves(without_validation["params"]))
    for a, b in zip(leaves(clean["arch"]), leaves(start["arch"])):
        np.testing.assert_array_equal(a, b)  # and left the alphas alone

    # Alphas stay positive: a huge step drives the losing candidates to search.alpha_min, never below.
    state = run([], update_alpha=True, alpha_lr=100.0)
    alphas = np.stack(list(alphas_of(state["arch"]).values()))
    assert (alphas >= config.search.alpha_min).all() and (alphas == np.float32(config.search.alpha_min)).any()


@pytest.fixture(scope="module")
def searched(dataset, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("search")
    config = tiny_config()
    return config, workdir, search(config, workdir, progress=False, dataset=dataset)


def test_the_search_writes_the_architecture_and_a_config_that_trains(searched, tmp_path):
    config, workdir, result = searched
    architecture = json.loads((workdir / "architecture.json").read_text())
    assert {"alphas", "ranking", "choice"} <= set(architecture)
    nodes = rcn_searched.search_nodes(config.model.recurrent_steps)
    assert set(architecture["alphas"]) == set(nodes)
    for node, weights in architecture["alphas"].items():
        assert set(weights) == set(nodes[node]) and sum(weights.values()) == pytest.approx(1.0, abs=1e-5)
    first = architecture["ranking"][0]
    assert architecture["choice"] == {**first["model"], "attention": list(first["model"]["attention"]),
                                      "equals": first["equals"], "score": first["score"]}
    for node, weights in architecture["alphas"].items():  # the top architecture takes each node's heavier candidate
        assert first["choice"][node] == max(nodes[node], key=lambda c: (weights[c], -nodes[node].index(c)))
    scores = [entry["score"] for entry in architecture["ranking"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == config.search.ranking_size
    fold = architecture["folds"][0]
    assert fold["held_out"] == ["casme2/sub01"] and "casme2/sub01" not in fold["validation_subjects"]

    derived = load_config(str(workdir / "derived_config.py"), [])  # as `mer-jax train --config` loads it
    assert sibling_config(str(workdir / "derived_config.py"), "derived_config").to_dict() == derived.to_dict()
    assert derived.model.name == "rcn_searched"
    assert Placement(derived.model.stem, derived.model.recurrence, tuple(derived.model.attention)) == \
        Placement.from_choice(first["choice"])
    assert derived.data.to_dict() == config.data.to_dict() and derived.train.to_dict() == config.train.to_dict()
    report = train_and_evaluate(derived, tmp_path / "train", progress=False)
    assert report["num_folds"] == 9 and report["model"] == "rcn_searched"
    assert (tmp_path / "train" / "report.json").exists()


def test_the_held_out_subject_is_never_read(searched, dataset, tmp_path):
    config, _, clean = searched
    x = dataset.x.copy()
    x[dataset.subject == "casme2/sub01"] = np.nan  # the searched fold's held-out subject
    poisoned = search(config, tmp_path, progress=False, dataset=Dataset(
        x, dataset.label, dataset.subject, dataset.dataset, dataset.sample_id, dataset.class_names))
    assert poisoned["folds"][0]["alphas"] == clean["folds"][0]["alphas"]
    assert poisoned["ranking"] == clean["ranking"]
    assert all(np.isfinite(list(w.values())).all() for w in poisoned["alphas"].values())


def test_the_ranking_is_the_exact_top_of_every_architecture():
    nodes = rcn_searched.search_nodes(2)
    rng = np.random.default_rng(0)
    weights = {node: (lambda a: a / a.sum())(rng.uniform(0.1, 1.0, 2)) for node in nodes}
    every = sorted(
        (float(np.prod([weights[node][i] for node, i in zip(nodes, picks)])), picks)
        for picks in itertools.product(range(2), repeat=len(nodes))
    )[::-1]
    ranking = rank_architectures(weights, nodes, 10)
    assert [entry["score"] for entry in ranking] == pytest.approx([score for score, _ in every[:10]])
    best = {node: nodes[node][int(np.argmax(weights[node]))] for node in nodes}
    assert ranking[0]["choice"] == best
