"""The architecture search of Xia et al., TIP 2020, sec. IV-C-4 (eq. 8, Fig. 6): `mer-jax search`.

A supernet (mer_jax/methods/rcn/rcn_searched.py, `RCNSupernet`) holds every
candidate placement of the parameter-free modules, each node's two candidates
mixed by eq. 8 with weights alpha / sum(alpha). Per searched LOSO fold:

1. The fold's training subjects (never its held-out subject) are split by
   subject into a fitting part and a validation part (`validation_split`):
   in each source data set of the composite, `search.validation_fraction` of
   its training subjects, drawn with (search.seed, fold index), validate.
2. Network weights and alphas are updated alternately, one step each per
   mini-batch (the first-order alternation of DARTS, Liu et al., ICLR 2019,
   which sec. IV-C-4 follows: "we alternatively update them"): an alpha step
   on a validation batch (the weights fixed; its BatchNorm batch statistics are
   used but not kept), then a weight step on a fitting batch (the alphas
   fixed). The first `search.warmup_epochs` epochs update the weights only.
   Weights: the trainer's SGD (config.train); alphas: Adam.
3. Alphas are kept positive by projection: after every alpha step
   alpha <- max(alpha, search.alpha_min). The alphas stay the very numbers
   eq. 8 normalises (a softplus or |.| parametrisation would make the
   reported alphas functions of other numbers, and |.| lets an alpha cross
   zero), and eq. 8 is scale-free, so the projection only bounds a
   candidate's weight below by alpha_min / sum(alpha) (~1e-3).

The searched folds are the first `search.num_folds` of the protocol (LOSO
folds in sorted subject order; 0: all). Their eq. 8 weights are averaged over
the folds, node by node, and the discrete architectures are ranked by the
product over nodes of their candidates' averaged weights (the nodes are
independent choices, so the top one takes every node's heavier candidate).
The first is the choice. `search` writes:

- workdir/architecture.json: `alphas` (per node and candidate, the averaged
  eq. 8 weight), `ranking` (architectures, scores, and the rcn.py model each
  equals, if any), `choice`, and per fold the raw alphas, the validation
  subjects and the supernet's validation accuracy;
- workdir/derived_config.py: the search config's data, protocol and train
  settings with model rcn_searched of the chosen placement, for
  `mer-jax train --config workdir/derived_config.py --workdir W2`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm

from mer_jax.data import builds
from mer_jax.core import losses, protocols
from mer_jax.core.dataset import Dataset
from mer_jax.methods.rcn import rcn_searched
from mer_jax.methods.rcn.rcn_searched import ArchParam, Placement, RCNSupernet
from mer_jax.core.loop import check_dataset_matches_config, learning_rate, make_optimizer

SEARCH_KEYS = {
    "num_folds": "the first k folds of the protocol are searched (0: all)",
    "epochs": "passes over each fold's fitting part",
    "warmup_epochs": "first epochs that update the weights only",
    "validation_fraction": "of each source data set's training subjects, the share that validates",
    "alpha_learning_rate": "Adam's step size for the alphas",
    "alpha_beta1": "Adam's beta1 for the alphas",
    "alpha_min": "the projection alpha <- max(alpha, alpha_min) after every alpha step",
    "alpha_init": "every alpha's initial value (equal: every candidate weighted 1/2)",
    "ranking_size": "architectures listed in architecture.json's ranking",
    "seed": "validation subjects, batches, dropout and weights",
}


def default_search_config() -> ml_collections.ConfigDict:
    """`config.search`: small settings for the built-in synthetic maps (configs/rcn_search.py)."""
    return ml_collections.ConfigDict(
        {
            "num_folds": 3,  # the first 3 LOSO folds (sorted subjects)
            "epochs": 30,
            "warmup_epochs": 5,
            "validation_fraction": 0.5,  # DARTS's half of the training data (Liu et al., ICLR 2019, sec. 3.1)
            "alpha_learning_rate": 0.05,
            "alpha_beta1": 0.5,  # DARTS's (0.5, 0.999)
            "alpha_min": 1e-3,
            "alpha_init": 1.0,
            "ranking_size": 10,
            "seed": 0,
        }
    )


# ---------------------------------------------------------------- data


def validation_split(
    subjects: np.ndarray, datasets: np.ndarray, train_mask: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(fit_mask, validation_mask, validation subjects): a split of the True samples of `train_mask` by subject.

    In each source data set, round(fraction * n) of its n training subjects
    (at least 1, at most n - 1; none if n == 1) are drawn for validation.
    Samples outside `train_mask` (the held-out subject) are in neither part.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"search.validation_fraction must lie in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    chosen = []
    for name in np.unique(datasets[train_mask]):
        names = np.unique(subjects[train_mask & (datasets == name)])
        count = min(len(names) - 1, max(1, round(fraction * len(names))))
        chosen.extend(rng.permutation(names)[:count].tolist())
    if not chosen:
        raise ValueError("no source data set has two training subjects: no validation subject can be cut")
    validation = train_mask & np.isin(subjects, chosen)
    return train_mask & ~validation, validation, tuple(sorted(chosen))


# ---------------------------------------------------------------- steps


def make_supernet(config: ml_collections.ConfigDict, dataset_shape: tuple[int, ...], num_classes: int, key) -> RCNSupernet:
    model = config.model
    return RCNSupernet(
        num_classes=num_classes,
        in_features=dataset_shape[-1],
        features=model.features,
        pool_size=model.pool_size,
        recurrent_steps=model.recurrent_steps,
        dropout=model.dropout,
        alpha_init=config.search.alpha_init,
        rngs=nnx.Rngs(params=key),
    )


@dataclasses.dataclass(frozen=True)
class StepSettings:
    """What the steps read from the config (hashable: one compiled program per settings and supernet shape)."""

    loss: str
    momentum: float
    weight_decay: float
    alpha_beta1: float
    alpha_min: float

    @classmethod
    def of(cls, config: ml_collections.ConfigDict) -> StepSettings:
        train, search = config.train, config.search
        return cls(
            train.loss, float(train.momentum), float(train.weight_decay),
            float(search.alpha_beta1), float(search.alpha_min),
        )


@functools.cache
def search_steps(graphdef: nnx.GraphDef, settings: StepSettings) -> SearchSteps:
    """The (compiled once) steps of supernets of `graphdef` with `settings`: shared by folds and runs."""
    return SearchSteps(graphdef, settings)


class SearchSteps:
    """The pure steps of one fold's search on a state {arch, params, stats, weight_opt, alpha_opt}."""

    def __init__(self, graphdef: nnx.GraphDef, settings: StepSettings):
        self.graphdef = graphdef
        self.loss_fn = losses.get_loss(settings.loss)
        self.weight_optimizer = make_optimizer(
            ml_collections.ConfigDict({"momentum": settings.momentum, "weight_decay": settings.weight_decay})
        )
        # Adam's direction; the step size (search.alpha_learning_rate) is an argument, as the weights' lr is.
        self.alpha_optimizer = optax.scale_by_adam(b1=settings.alpha_beta1, b2=0.999)
        self.alpha_min = settings.alpha_min
        self.step = jax.jit(self._step, static_argnames=("update_alpha",))
        self.evaluate = jax.jit(self._evaluate)

    @classmethod
    def for_supernet(cls, supernet: RCNSupernet, config: ml_collections.ConfigDict) -> SearchSteps:
        return search_steps(nnx.split(supernet, ArchParam, nnx.Param, nnx.BatchStat)[0], StepSettings.of(config))

    def init(self, supernet: RCNSupernet) -> dict[str, Any]:
        _, arch, params, stats = nnx.split(supernet, ArchParam, nnx.Param, nnx.BatchStat)
        return {
            "arch": arch,
            "params": params,
            "stats": stats,
            "weight_opt": self.weight_optimizer.init(params),
            "alpha_opt": self.alpha_optimizer.init(arch),
        }

    def forward(self, arch, params, stats, x, *, train: bool, key=None):
        model = nnx.merge(self.graphdef, arch, params, stats, copy=True)
        logits = model(x, train=train, rngs=nnx.Rngs(dropout=key) if train else None)
        return logits, nnx.state(model, nnx.BatchStat)

    def alpha_step(self, state, x, labels, index, key, alpha_lr):
        """Adam on the alphas from the validation batch `index`, then alpha <- max(alpha, alpha_min).

        Only the alphas and their optimiser state change: the forward pass's
        BatchNorm statistics of the validation batch are discarded.
        """

        def objective(arch):
            logits, _ = self.forward(arch, state["params"], state["stats"], x[index], train=True, key=key)
            return self.loss_fn(logits, labels[index])

        loss, grads = jax.value_and_grad(objective)(state["arch"])
        updates, alpha_opt = self.alpha_optimizer.update(grads, state["alpha_opt"], state["arch"])
        arch = jax.tree.map(lambda a, u: jnp.maximum(a - alpha_lr * u, self.alpha_min), state["arch"], updates)
        return {**state, "arch": arch, "alpha_opt": alpha_opt}, loss

    def weight_step(self, state, x, labels, index, key, lr):
        """SGD (config.train) on the network weights and BatchNorm statistics from the fitting batch `index`."""

        def objective(params):
            logits, stats = self.forward(state["arch"], params, state["stats"], x[index], train=True, key=key)
            return self.loss_fn(logits, labels[index]), stats

        (loss, stats), grads = jax.value_and_grad(objective, has_aux=True)(state["params"])
        updates, weight_opt = self.weight_optimizer.update(grads, state["weight_opt"], state["params"])
        params = jax.tree.map(lambda p, u: p - lr * u, state["params"], updates)
        return {**state, "params": params, "stats": stats, "weight_opt": weight_opt}, loss

    def _step(self, state, x, labels, fit_index, val_index, key, lr, alpha_lr, *, update_alpha: bool):
        """One alternation: an alpha step on `val_index` (if `update_alpha`), then a weight step on `fit_index`."""
        val_loss = jnp.float32(jnp.nan)
        if update_alpha:
            state, val_loss = self.alpha_step(state, x, labels, val_index, jax.random.fold_in(key, 0), alpha_lr)
        state, fit_loss = self.weight_step(state, x, labels, fit_index, jax.random.fold_in(key, 1), lr)
        return state, fit_loss, val_loss

    def _evaluate(self, state, x, labels, index, valid):
        """Summed loss and correct count over the valid entries of `index` (eval mode: running statistics)."""
        logits, _ = self.forward(state["arch"], state["params"], state["stats"], x[index], train=False)
        log_p = jax.nn.log_softmax(logits)
        nll = -jnp.take_along_axis(log_p, labels[index][:, None], axis=-1)[:, 0]
        correct = logits.argmax(-1) == labels[index]
        return jnp.sum(jnp.where(valid, nll, 0.0)), jnp.sum(valid & correct)


def eq8_weights_of(arch: nnx.State) -> dict[str, np.ndarray]:
    """Node -> its eq. 8 weights, from a state of `ArchParam`s."""
    alphas = alphas_of(arch)
    return {node: alpha / alpha.sum() for node, alpha in alphas.items()}


def alphas_of(arch: nnx.State) -> dict[str, np.ndarray]:
    """Node -> its raw alphas, from a state of `ArchParam`s."""
    flat = nnx.to_flat_state(arch)
    return {str(path[-1]): np.asarray(variable[...]) for path, variable in flat}


# ---------------------------------------------------------------- one fold


def search_fold(
    config: ml_collections.ConfigDict,
    dataset: Dataset,
    fit_mask: np.ndarray,
    val_mask: np.ndarray,
    *,
    fold_id: int,
    progress: bool = False,
) -> dict[str, Any]:
    """Searches on one fold: the weights fit on `fit_mask`, the alphas on `val_mask`; no other sample is read.

    Returns the final raw alphas and eq. 8 weights per node, the history and the final state.
    """
    search, train = config.search, config.train
    fit_index, val_index = np.flatnonzero(fit_mask), np.flatnonzero(val_mask)
    batch = int(train.batch_size)
    if len(fit_index) < batch:
        raise ValueError(f"train.batch_size={batch} exceeds the fold's {len(fit_index)} fitting samples")
    val_batch = min(batch, len(val_index))
    steps_per_epoch = len(fit_index) // batch
    key = jax.random.fold_in(jax.random.PRNGKey(search.seed), fold_id)
    supernet = make_supernet(config, dataset.input_shape, dataset.num_classes, jax.random.fold_in(key, 0))
    steps = SearchSteps.for_supernet(supernet, config)
    state = steps.init(supernet)
    x, labels = jnp.asarray(dataset.x), jnp.asarray(dataset.label)
    rng = np.random.default_rng([search.seed, fold_id])
    eval_index = np.resize(val_index, -(-len(val_index) // val_batch) * val_batch)
    eval_valid = np.arange(len(eval_index)) < len(val_index)
    history = {"fit_loss": [], "alpha_loss": [], "val_loss": [], "val_accuracy": [], "weights": []}
    bar = tqdm(total=search.epochs, desc=f"search fold {fold_id}", unit="epoch", disable=not progress)
    for epoch in range(search.epochs):
        update_alpha = epoch >= search.warmup_epochs
        fit_order = rng.permutation(fit_index)[: steps_per_epoch * batch].reshape(steps_per_epoch, batch)
        val_order = np.resize(rng.permutation(val_index), steps_per_epoch * val_batch).reshape(steps_per_epoch, val_batch)
        lr = learning_rate(train, epoch)
        fit_losses, alpha_losses = [], []
        for s in range(steps_per_epoch):
            step_key = jax.random.fold_in(key, 1 + epoch * steps_per_epoch + s)
            state, fit_loss, val_loss = steps.step(
                state, x, labels, fit_order[s], val_order[s], step_key, lr, search.alpha_learning_rate,
                update_alpha=update_alpha,
            )
            fit_losses.append(fit_loss)
            alpha_losses.append(val_loss)
        loss_sum, correct = 0.0, 0
        for start in range(0, len(eval_index), val_batch):
            part = slice(start, start + val_batch)
            l, c = steps.evaluate(state, x, labels, eval_index[part], eval_valid[part])
            loss_sum, correct = loss_sum + float(l), correct + int(c)
        history["fit_loss"].append(float(np.mean(fit_losses)))
        history["alpha_loss"].append(float(np.mean(alpha_losses)) if update_alpha else None)
        history["val_loss"].append(loss_sum / len(val_index))
        history["val_accuracy"].append(correct / len(val_index))
        history["weights"].append({node: w.round(4).tolist() for node, w in eq8_weights_of(state["arch"]).items()})
        bar.set_postfix(fit_loss=f"{history['fit_loss'][-1]:.3f}", val_acc=f"{history['val_accuracy'][-1]:.3f}",
                        refresh=False)
        bar.update(1)
    bar.close()
    return {
        "alphas": alphas_of(state["arch"]),
        "weights": eq8_weights_of(state["arch"]),
        "history": history,
        "num_fit": len(fit_index),
        "num_validation": len(val_index),
        "state": state,
    }


# ---------------------------------------------------------------- ranking


def rank_architectures(weights: dict[str, np.ndarray], nodes: dict[str, tuple[str, ...]], size: int) -> list[dict]:
    """The `size` discrete architectures with the largest product of their candidates' weights, best first.

    A beam over the nodes in order, keeping the `size` best partial products, is
    exact: a prefix outside the best `size` prefixes has `size` better ones, each
    of which completed like it scores higher. Ties keep the earlier candidate
    (`plain` / `none`) first.
    """
    beam: list[tuple[float, tuple[int, ...]]] = [(1.0, ())]
    for node, candidates in nodes.items():
        extended = [
            (score * float(weights[node][i]), picks + (i,)) for score, picks in beam for i in range(len(candidates))
        ]
        extended.sort(key=lambda item: (-item[0], item[1]))
        beam = extended[:size]
    ranking = []
    for rank, (score, picks) in enumerate(beam, start=1):
        choice = {node: candidates[i] for (node, candidates), i in zip(nodes.items(), picks)}
        placement = Placement.from_choice(choice)
        ranking.append(
            {
                "rank": rank,
                "score": score,
                "model": placement.model_config(),
                "equals": rcn_searched.named_model(placement),
                "choice": choice,
            }
        )
    return ranking


# ---------------------------------------------------------------- outputs


def derived_config_text(config: ml_collections.ConfigDict, placement: Placement, summary: str) -> str:
    """A config file for `mer-jax train`: the search config's data, protocol and train, model rcn_searched."""
    lines = [
        '"""The architecture chosen by `mer-jax search` (mer_jax/methods/rcn/search.py; Xia et al., TIP 2020, sec. IV-C-4).',
        "",
        *summary.splitlines(),
        "",
        "Train it: mer-jax train --config THIS_FILE --workdir DIR",
        '"""',
        "",
        "from mer_jax.config import base_config",
        "",
        "",
        "def get_config():",
        '    config = base_config("rcn_searched")',
    ]
    model = {key: config.model[key] for key in rcn_searched.default_config() if key != "name"}
    model.update(placement.model_config())
    for key, value in model.items():
        lines.append(f"    config.model.{key} = {value!r}")

    def assign(prefix: str, section: ml_collections.ConfigDict):
        for key, value in section.items():
            if isinstance(value, ml_collections.ConfigDict):
                assign(f"{prefix}.{key}", value)
            else:
                lines.append(f"    {prefix}.{key} = {value!r}")

    for section in ("data", "protocol", "train"):
        assign(f"config.{section}", config[section])
    lines.append("    return config")
    return "\n".join(lines) + "\n"


def check_search_config(config: ml_collections.ConfigDict) -> None:
    if "search" not in config:
        raise ValueError("the config has no `search` section (see configs/rcn_search.py)")
    unknown = sorted(set(config.search) - set(SEARCH_KEYS))
    if unknown:
        raise ValueError(f"search.{', search.'.join(unknown)} unknown; valid: {', '.join(SEARCH_KEYS)}")
    if config.model.name != "rcn_searched":
        raise ValueError(
            f"the search builds the supernet of model rcn_searched (its features, pool_size, recurrent_steps, "
            f"dropout); model.name is {config.model.name!r}"
        )
    if not 0 <= config.search.warmup_epochs <= config.search.epochs:
        raise ValueError("search.warmup_epochs must lie in [0, search.epochs]")


def search(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    progress: bool = True,
    dataset: Dataset | None = None,
) -> dict:
    """Runs the search of `config` and writes architecture.json and derived_config.py into `workdir`.

    `dataset` replaces `builds.load(config.data)` (tests poison samples with it).
    """
    check_search_config(config)
    start = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dataset = builds.load(config.data) if dataset is None else dataset
    check_dataset_matches_config(dataset, config)
    folds = protocols.folds_of_config(config.protocol, subjects=dataset.subject, labels=dataset.label)
    count = config.search.num_folds or folds.num_folds
    if not 0 < count <= folds.num_folds:
        raise ValueError(f"search.num_folds={config.search.num_folds}: the protocol has {folds.num_folds} folds")
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
    nodes = rcn_searched.search_nodes(config.model.recurrent_steps)
    fold_results = []
    for f in range(count):
        fit_mask, val_mask, val_subjects = validation_split(
            dataset.subject, dataset.dataset, folds.train_masks[f], config.search.validation_fraction,
            seed=config.search.seed + f,
        )
        result = search_fold(config, dataset, fit_mask, val_mask, fold_id=f, progress=progress)
        fold_results.append(
            {
                "fold": folds.names[f],
                "held_out": sorted(np.unique(dataset.subject[folds.test_masks[f]]).tolist()),
                "validation_subjects": list(val_subjects),
                "num_fit": result["num_fit"],
                "num_validation": result["num_validation"],
                "alphas": {node: dict(zip(nodes[node], result["alphas"][node].tolist())) for node in nodes},
                "weights": {node: dict(zip(nodes[node], result["weights"][node].tolist())) for node in nodes},
                "validation_accuracy": result["history"]["val_accuracy"][-1],
                "history": result["history"],
            }
        )
    mean = {
        node: np.mean([list(r["weights"][node].values()) for r in fold_results], axis=0) for node in nodes
    }
    ranking = rank_architectures(mean, nodes, config.search.ranking_size)
    choice = ranking[0]
    placement = Placement.from_choice(choice["choice"])
    seconds = time.perf_counter() - start
    summary = (
        f"Searched on {count} fold(s) of {config.protocol.name} ({', '.join(r['fold'] for r in fold_results)}) "
        f"of {config.data.name}.\nChoice: stem {placement.stem}, recurrence {placement.recurrence}, "
        f"attention at {placement.attention or 'none'}"
        + (f", the architecture of {choice['equals']}" if choice["equals"] else "")
        + "."
    )
    (workdir / "derived_config.py").write_text(derived_config_text(config, placement, summary))
    architecture = {
        "paper": "Xia et al., TIP 2020, sec. IV-C-4, eq. 8, Fig. 6; sec. V-C-4",
        "nodes": {node: list(c) for node, c in nodes.items()},
        "alphas": {node: dict(zip(nodes[node], mean[node].tolist())) for node in nodes},
        "alphas_are": "eq. 8 weights alpha / sum(alpha) per node, averaged over the searched folds; "
        "raw alphas per fold under folds[].alphas",
        "ranking": ranking,
        "ranking_score": "product over nodes of the chosen candidates' averaged eq. 8 weights",
        "choice": {**choice["model"], "equals": choice["equals"], "score": choice["score"]},
        "derived_config": "derived_config.py",
        "folds": fold_results,
        "search": config.search.to_dict(),
        "seconds": seconds,
    }
    (workdir / "architecture.json").write_text(json.dumps(architecture, indent=2) + "\n")
    return architecture
