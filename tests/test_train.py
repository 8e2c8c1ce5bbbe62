"""The fold-parallel trainer: strategies agree with separate runs, resume is exact, learning is real."""

import collections
import dataclasses
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from mer_jax.data import builds
from mer_jax.core import protocols, runners
from mer_jax.core import loop
from mer_jax.core.checkpoint import RESUMABLE_ACROSS
from mer_jax.config import base_config, sibling_config
from mer_jax.speed.cores import usable_cores
from mer_jax.models import layers
from mer_jax.speed.platform import resolve_concurrent_folds, resolve_steps_per_call, resolve_strategy, tuning_for
from mer_jax.core.loop import FoldRun, fold_inputs, learning_rate, majority_share, train_folds
from mer_jax.train import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]


def tiny_config(strategy="loop", epochs=2):
    config = base_config()
    config.model.features = 8
    config.model.pool_size = 3
    config.data.toy_flow = {"subjects_per_dataset": (2, 1, 1), "clips_per_subject": 8, "size": 30}
    config.data.input_shape = (30, 30, 3)
    config.train.strategy = strategy
    config.train.epochs = epochs
    config.train.batch_size = 8
    config.train.learning_rate = 0.01
    config.train.checkpoint_every = 1
    return config


def tiny_setup(strategy="loop", epochs=2):
    config = tiny_config(strategy, epochs)
    dataset = builds.load(config.data)
    folds = protocols.make_folds("loso", subjects=dataset.subject, labels=dataset.label)
    return config, dataset, folds


def subset(folds, index):
    return protocols.Folds(folds.test_masks[list(index)], tuple(folds.names[i] for i in index))


def test_vmap_loop_and_separate_runs_agree():
    config, dataset, folds = tiny_setup("vmap")
    vmapped = train_folds(config, dataset, folds, FoldRun(progress=False))
    config.train.fold_chunk = 3  # groups of 3 folds per call: 4 folds padded to 6
    chunked = train_folds(config, dataset, folds, FoldRun(progress=False))
    np.testing.assert_allclose(chunked.test_logits, vmapped.test_logits, rtol=1e-4, atol=1e-4)
    config.train.strategy = "loop"
    looped = train_folds(config, dataset, folds, FoldRun(progress=False))
    np.testing.assert_allclose(vmapped.test_logits, looped.test_logits, rtol=1e-4, atol=1e-4)
    for f in range(folds.num_folds):
        alone = train_folds(config, dataset, subset(folds, [f]), FoldRun(fold_ids=[f], progress=False))
        valid = alone.test_valid[0]
        np.testing.assert_allclose(
            alone.test_logits[0][valid], vmapped.test_logits[f][: valid.sum()], rtol=1e-4, atol=1e-4
        )
        np.testing.assert_array_equal(
            alone.test_logits[0][valid].argmax(-1), vmapped.test_logits[f][: valid.sum()].argmax(-1)
        )
    # Folds really differ: different held-out subjects and different initialisations.
    assert not np.allclose(vmapped.history["train_loss"][:, 0], vmapped.history["train_loss"][:, 1])


def test_steps_per_call_and_concurrent_folds_change_no_result():
    """RCN-A of the released code (the fused stem, dropout) split into calls and run on threads, against one call per epoch."""
    config, dataset, folds = tiny_setup("loop", epochs=2)
    config.model.update(name="rcn_a", variant="xia2020_code", recurrent_steps=2)
    config.train.update(steps_per_call=0, concurrent_folds=1)
    whole = train_folds(config, dataset, folds, FoldRun(progress=False))
    for strategy, steps_per_call, concurrent_folds in (("loop", 1, 2), ("loop", 2, 1), ("loop", 2, 3), ("vmap", 1, 1)):
        config.train.update(strategy=strategy, steps_per_call=steps_per_call, concurrent_folds=concurrent_folds)
        split = train_folds(config, dataset, folds, FoldRun(progress=False))
        np.testing.assert_allclose(split.test_logits, whole.test_logits, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(split.history["train_loss"], whole.history["train_loss"], rtol=1e-4)
        np.testing.assert_allclose(split.history["train_accuracy"], whole.history["train_accuracy"], atol=1e-6)


def test_eight_simulated_devices_agree_with_one():
    script = f"""
import json, numpy as np, jax
from mer_jax.core.loop import FoldRun, train_folds
import sys; sys.path.insert(0, {str(REPO / 'tests')!r})
from test_train import tiny_setup
assert jax.device_count() == 8
out = {{}}
for strategy in ("vmap", "loop"):
    config, dataset, folds = tiny_setup(strategy)
    out[strategy] = train_folds(config, dataset, folds, FoldRun(progress=False)).test_logits.tolist()
print(json.dumps(out))
"""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    eight = json.loads(result.stdout.strip().splitlines()[-1])
    config, dataset, folds = tiny_setup("loop")
    one = train_folds(config, dataset, folds, FoldRun(progress=False)).test_logits
    for strategy in ("vmap", "loop"):
        np.testing.assert_allclose(np.asarray(eight[strategy]), one, rtol=1e-4, atol=1e-4)


def test_killed_run_resumes_to_the_same_result(tmp_path):
    config, dataset, folds = tiny_setup("loop", epochs=4)
    straight = train_folds(config, dataset, folds, FoldRun(checkpoint_dir=tmp_path / "a", progress=False))

    def crash(epoch):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_folds(
            config, dataset, folds, FoldRun(checkpoint_dir=tmp_path / "b", progress=False, on_epoch_end=crash),
        )
    trained = []  # the epochs the resumed run really trains
    resumed = train_folds(
        config, dataset, folds, FoldRun(checkpoint_dir=tmp_path / "b", progress=False, on_epoch_end=trained.append),
    )
    assert trained == [2, 3]  # epochs 0 and 1 were checkpointed before the crash
    np.testing.assert_allclose(resumed.test_logits, straight.test_logits, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(resumed.history["train_loss"], straight.history["train_loss"], rtol=1e-6)
    assert resumed.train_seconds > 0
    # A finished run started again trains nothing, only predicts, and reports the training time it had.
    trained.clear()
    again = train_folds(
        config, dataset, folds, FoldRun(checkpoint_dir=tmp_path / "b", progress=False, on_epoch_end=trained.append),
    )
    assert trained == []
    np.testing.assert_allclose(again.test_logits, straight.test_logits, rtol=1e-5, atol=1e-5)
    assert again.train_seconds == pytest.approx(resumed.train_seconds, rel=1e-3)
    # A crash between checkpoints resumes from the last one.
    config.train.checkpoint_every = 2
    with pytest.raises(KeyboardInterrupt):
        train_folds(
            config, dataset, folds, FoldRun(checkpoint_dir=tmp_path / "c", progress=False, on_epoch_end=crash),
        )
    trained.clear()
    resumed = train_folds(
        config, dataset, folds, FoldRun(checkpoint_dir=tmp_path / "c", progress=False, on_epoch_end=trained.append),
    )
    assert trained == [2, 3]  # the crash came after epoch 1 too, but only epoch 0..1 (checkpoint 2) was saved
    np.testing.assert_allclose(resumed.test_logits, straight.test_logits, rtol=1e-6, atol=1e-6)
    # A different configuration in the same folder is refused, not silently mixed.
    config.train.learning_rate = 0.5
    with pytest.raises(ValueError, match="different configuration"):
        train_folds(config, dataset, folds, FoldRun(checkpoint_dir=tmp_path / "b", progress=False))


def test_a_run_resumes_after_a_change_of_how_folds_are_run_only(tmp_path):
    config, dataset, folds = tiny_setup("loop", epochs=3)
    straight = train_folds(config, dataset, folds, FoldRun(progress=False))
    config.train.update(epochs=1, steps_per_call=1, concurrent_folds=1)
    train_folds(config, dataset, folds, FoldRun(checkpoint_dir=tmp_path, progress=False))
    # Groups of 3 folds pad the 4 folds to 6, and back: a checkpoint takes the other run's empty folds.
    changes = {"epochs": 2, "checkpoint_every": 2, "strategy": "vmap", "fold_chunk": 3, "steps_per_call": 2,
               "concurrent_folds": 2, "data_on_device": False}
    assert set(changes) == set(RESUMABLE_ACROSS)
    for update in (changes, {"epochs": 3, "strategy": "loop", "fold_chunk": 0, "data_on_device": True}):
        config.train.update(update)
        epochs_run = []
        resumed = train_folds(
            config,
            dataset,
            folds,
            FoldRun(checkpoint_dir=tmp_path, progress=False, on_epoch_end=epochs_run.append),
        )
        assert epochs_run == [config.train.epochs - 1]
    np.testing.assert_allclose(resumed.test_logits, straight.test_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(resumed.history["train_loss"], straight.history["train_loss"], rtol=1e-4)
    config.train.learning_rate *= 2  # changes the result: refused
    with pytest.raises(ValueError, match="different configuration"):
        train_folds(config, dataset, folds, FoldRun(checkpoint_dir=tmp_path, progress=False))


def test_fold_inputs_mask_each_folds_held_out_subject_pad_the_folds_and_refuse_oversized_batches():
    """The masks fold_inputs hands the program; that the program draws only from them is the poisoning test's."""
    config, dataset, folds = tiny_setup()
    inputs = fold_inputs(folds, np.arange(folds.num_folds), batch_size=8, seed=0, fold_multiple=4)
    assert inputs.num_folds % 4 == 0 and inputs.num_folds >= folds.num_folds
    assert not inputs.train_mask[folds.num_folds :].any() and (inputs.num_steps[folds.num_folds :] == 0).all()
    for f in range(folds.num_folds):
        held_out = set(dataset.subject[folds.test_masks[f]])
        assert held_out.isdisjoint(dataset.subject[inputs.train_mask[f]])
    with pytest.raises(ValueError, match="batch_size=1000 exceeds the training set of fold"):
        fold_inputs(folds, np.arange(folds.num_folds), batch_size=1000, seed=0)


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
def test_a_folds_training_never_touches_its_held_out_samples(strategy):
    """Held-out inputs made NaN and held-out labels permuted: the fold trains bit for bit as before."""
    config, dataset, folds = tiny_setup(strategy)
    held_out = folds.test_masks[1]
    x, label = dataset.x.copy(), dataset.label.copy()
    x[held_out] = np.nan
    label[held_out] = np.random.default_rng(0).permutation((label[held_out] + 1) % dataset.num_classes)
    poisoned = dataclasses.replace(dataset, x=x, label=label)
    clean = train_folds(config, dataset, folds, FoldRun(progress=False))
    dirty = train_folds(config, poisoned, folds, FoldRun(progress=False))
    fold_1 = [np.asarray(leaf[1]) for leaf in jax.tree.leaves((clean.state["params"], clean.state["stats"]))]
    poisoned_1 = [np.asarray(leaf[1]) for leaf in jax.tree.leaves((dirty.state["params"], dirty.state["stats"]))]
    assert all(np.isfinite(leaf).all() for leaf in poisoned_1)
    for a, b in zip(fold_1, poisoned_1, strict=True):
        np.testing.assert_array_equal(a, b)
    for name in ("train_loss", "train_accuracy"):
        np.testing.assert_array_equal(clean.history[name][:, 1], dirty.history[name][:, 1])
    # The poison is real: the folds that train on those samples change.
    assert not np.array_equal(clean.history["train_loss"][:, 0], dirty.history["train_loss"][:, 0])


def test_seeds_of_one_run_are_the_runs_of_those_seeds(tmp_path):
    """train.num_seeds=2 in one run: seed 1's scores are those of a run with train.seed=1; the report's
    mean and interval are over both seeds."""
    config = tiny_config()
    config.train.num_seeds = 2
    both = train_and_evaluate(config, tmp_path / "both", progress=False)
    config.train.update(num_seeds=1, seed=1)
    alone = train_and_evaluate(config, tmp_path / "alone", progress=False)
    assert both["seeds"] == [0, 1] and alone["seeds"] == [1]
    assert both["per_seed"][1] == alone["per_seed"][0]
    assert both["uf1"] == both["per_seed"][0]["uf1"]  # the top-level tables are train.seed's
    assert both["uf1_mean"] == pytest.approx((both["per_seed"][0]["uf1"] + both["per_seed"][1]["uf1"]) / 2)
    assert both["per_seed"][0] != both["per_seed"][1]  # the seeds really differ
    assert both["uf1_ci95"][0] <= both["uf1_mean"] <= both["uf1_ci95"][1]
    assert "## Over seeds" in (tmp_path / "both" / "results.md").read_text()


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
def test_a_fold_stops_after_its_first_epoch_below_the_stop_loss(strategy, tmp_path):
    """Xia et al., TIP 2020, sec. V-A's stopping rule: per fold, on its training loss, state frozen after."""
    config, dataset, folds = tiny_setup(strategy, epochs=5)
    full = train_folds(config, dataset, folds, FoldRun(progress=False))
    losses = full.history["train_loss"]
    config.train.stop_loss = float(np.median(losses[1]))  # some folds fall below it at epoch 2, some later or never
    below = losses < config.train.stop_loss
    expected = np.where(below.any(0), below.argmax(0) + 1, 5)
    assert len(set(expected)) > 1, expected
    stopped = train_folds(config, dataset, folds, FoldRun(progress=False))
    np.testing.assert_array_equal(stopped.epochs_trained, expected)
    for f, epochs in enumerate(expected):
        assert np.isnan(stopped.history["train_loss"][epochs:, f]).all()
        np.testing.assert_array_equal(stopped.history["train_loss"][:epochs, f], losses[:epochs, f])
        if epochs == 5:  # never stopped: as the run without the rule
            np.testing.assert_allclose(stopped.test_logits[f], full.test_logits[f], rtol=1e-5, atol=1e-5)
    first = int(expected.argmin())  # the first to stop is frozen: as that fold trained for its epochs only
    config.train.update(epochs=int(expected[first]), stop_loss=0.0)
    alone = train_folds(config, dataset, subset(folds, [first]), FoldRun(fold_ids=[first], progress=False))
    np.testing.assert_allclose(stopped.test_logits[first], alone.test_logits[0], rtol=1e-5, atol=1e-5)
    config.train.update(epochs=5, stop_loss=float(np.median(losses[1])))

    def crash(epoch):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # killed after some folds stopped; resumed, they stay stopped
        train_folds(config, dataset, folds, FoldRun(checkpoint_dir=tmp_path, progress=False, on_epoch_end=crash))
    resumed = train_folds(config, dataset, folds, FoldRun(checkpoint_dir=tmp_path, progress=False))
    np.testing.assert_array_equal(resumed.epochs_trained, expected)
    np.testing.assert_allclose(resumed.test_logits, stopped.test_logits, rtol=1e-5, atol=1e-5)


def tensorboard_scalars(folder: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} of every scalar in the TensorBoard event files under `folder` (TFRecord framing)."""
    from tensorboardX.proto.event_pb2 import Event

    scalars = collections.defaultdict(dict)
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, offset = path.read_bytes(), 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            event = Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4  # length, its crc, the record, its crc
            for value in event.summary.value:
                scalars[value.tag][event.step] = value.simple_value
    return scalars


def test_each_epoch_is_logged_once_as_it_trains_even_across_a_resume(tmp_path):
    config, dataset, folds = tiny_setup("loop", epochs=4)
    config.train.checkpoint_every = 2  # the crash comes after epoch 2 is logged but not checkpointed

    def crash(epoch):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_folds(
            config,
            dataset,
            folds,
            FoldRun(checkpoint_dir=tmp_path / "checkpoints", log_dir=tmp_path, progress=False, on_epoch_end=crash),
        )
    result = train_folds(
        config, dataset, folds, FoldRun(checkpoint_dir=tmp_path / "checkpoints", log_dir=tmp_path, progress=False),
    )
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]  # epoch 2 trained twice, logged once
    for epoch, record in enumerate(records):
        assert record["train_loss"] == pytest.approx(float(result.history["train_loss"][epoch].mean()), rel=1e-6)
        assert list(record["per_fold"]) == list(folds.names)
        assert record["per_fold"][folds.names[0]]["train_loss"] == pytest.approx(
            float(result.history["train_loss"][epoch, 0]), rel=1e-6
        )
        assert record["learning_rate"] == pytest.approx(config.train.learning_rate)
        assert record["steps_per_second"] > 0
    scalars = tensorboard_scalars(tmp_path / "tensorboard")
    assert sorted(scalars["train/loss"]) == [1, 2, 3, 4]
    assert scalars["train/loss"][4] == pytest.approx(records[3]["train_loss"], rel=1e-6)
    assert f"train_loss_per_fold/{folds.names[0]}" in scalars and "speed/compile_seconds" in scalars
    assert not any("test" in tag or "held" in tag for tag in scalars)  # no held-out curve to pick an epoch on


def test_schedule_and_strategy_choice():
    config = base_config()
    config.train.schedule = "exponential"
    config.train.learning_rate = 1e-3
    config.train.lr_decay = 0.8  # Xia et al., TMM 2019, sec. IV-A
    assert learning_rate(config.train, 0) == pytest.approx(1e-3)
    assert learning_rate(config.train, 3) == pytest.approx(1e-3 * 0.8**3)
    assert resolve_strategy("auto", "cpu") == "loop"
    assert resolve_strategy("auto", "gpu") == "vmap"
    assert resolve_steps_per_call(0, "cpu") == 1 and resolve_steps_per_call(0, "gpu") == 0
    assert resolve_steps_per_call(3, "gpu") == 3
    assert resolve_concurrent_folds(0, "gpu") == 1 and resolve_concurrent_folds(0, "cpu") == usable_cores()
    assert resolve_concurrent_folds(2, "gpu") == 2
    with pytest.raises(ValueError, match="steps_per_call must be >= 0"):
        resolve_steps_per_call(-1, "cpu")
    with pytest.raises(ValueError, match="concurrent_folds must be >= 0"):
        resolve_concurrent_folds(-1, "cpu")
    with pytest.raises(ValueError, match="unknown train.strategy 'pmap'"):
        resolve_strategy("pmap", "cpu")


CPU_ONLY = ("unroll_steps", "unoptimized_init", "retain_freed_memory", "sliced_weight_grad", "windowed_stem")


@pytest.mark.parametrize("backend", ["gpu", "tpu"])
def test_tuning_off_cpu_turns_every_cpu_path_off(backend):
    cpu, other = tuning_for("cpu"), tuning_for(backend)
    assert (cpu.strategy, cpu.steps_per_call, cpu.concurrent_folds) == ("loop", 1, usable_cores())
    assert all(getattr(cpu, name) for name in CPU_ONLY)
    assert (other.strategy, other.steps_per_call, other.concurrent_folds) == ("vmap", 0, 1)
    assert not any(getattr(other, name) for name in CPU_ONLY)
    # The config's settings apply as given; the formulations stay the backend's.
    overridden = tuning_for(backend, strategy="loop", steps_per_call=3, concurrent_folds=2)
    assert overridden == dataclasses.replace(other, strategy="loop", steps_per_call=3, concurrent_folds=2)
    assert tuning_for("cpu", strategy="vmap").strategy == "vmap"


def test_a_gpu_tuning_takes_no_cpu_path_and_trains_as_the_cpu_tuning(monkeypatch):
    """RCN-A of the released code trained on this CPU with the tuning of a GPU: no CPU formulation is
    traced, no glibc setting made, and the held-out logits are those of the CPU tuning."""
    config, dataset, folds = tiny_setup("auto", epochs=2)
    config.model.update(name="rcn_a", variant="xia2020_code", recurrent_steps=2)
    calls = collections.Counter()
    for module, name in (
        (layers, "conv_pooling_windows"),
        (layers, "batch_norm_relu_max"),
        (layers, "conv_sliced_weight_grad"),
        (runners, "retain_freed_memory"),
    ):
        def spy(*args, _name=name, _original=getattr(module, name), **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    results, used = {}, {}
    for backend in ("cpu", "gpu"):
        calls.clear()
        monkeypatch.setattr(loop, "tuning_for", lambda _, _b=backend, **kw: tuning_for(_b, **kw))
        results[backend] = train_folds(config, dataset, folds, FoldRun(progress=False))
        used[backend] = set(calls)
    assert used["cpu"] == {
        "conv_pooling_windows", "batch_norm_relu_max", "conv_sliced_weight_grad", "retain_freed_memory"
    }
    assert used["gpu"] == set()
    assert (results["cpu"].strategy, results["gpu"].strategy) == ("loop", "vmap")
    np.testing.assert_allclose(results["gpu"].test_logits, results["cpu"].test_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(results["gpu"].history["train_loss"], results["cpu"].history["train_loss"], rtol=1e-4)


def quickstart(**train):
    config = sibling_config(str(REPO / "configs" / "quickstart.py"), "quickstart")
    config.train.update(train)
    return config


def test_a_run_writes_its_report_plots_and_checkpoints(tmp_path):
    """The README's quick start cut to 2 epochs: everything a run leaves in its workdir."""
    report = train_and_evaluate(quickstart(epochs=2), tmp_path, progress=False)
    assert report["num_folds"] == 18 and len(report["predictions"]) == 216
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["uf1"] == pytest.approx(report["uf1"])
    for key in ("accuracy", "f1", "uar", "uf1", "per_dataset", "per_fold", "confusion_matrix", "predictions",
                "strategy", "num_folds", "train_seconds"):
        assert key in on_disk
    assert set(on_disk["per_dataset"]) == {"casme2", "samm", "smic"}
    assert len(on_disk["per_fold"]) == 18
    history = np.array([json.loads(line)["train_accuracy"] for line in (tmp_path / "metrics.jsonl").open()])
    assert on_disk["fit"]["final_train_accuracy"] == pytest.approx(history[-1])  # the fold mean, last epoch
    assert 1 / 3 < on_disk["fit"]["train_prior"] < 0.5  # the synthetic maps' classes are nearly balanced
    for name in ("results.md", "confusion_matrix.png", "fold_curves.png", "config.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert any((tmp_path / "checkpoints").iterdir())


def test_majority_share_is_each_folds_largest_class_among_its_training_labels_counting_every_entry():
    labels = np.array([0, 0, 1, 2, 2, 2])
    masks = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]], bool)
    np.testing.assert_allclose(majority_share(labels, masks, 3), [2 / 3, 3 / 4, 1.0])
    per_region = np.array([[0, 3], [1, 3], [3, 3]])  # Aouayeb et al.'s region labels, "not me" = 3
    np.testing.assert_allclose(majority_share(per_region, np.array([[1, 1, 0], [0, 1, 1]], bool), 4), [0.5, 0.75])


@pytest.mark.slow
def test_the_quickstart_reaches_the_readmes_uf1(tmp_path):
    """The README's figure, on the data its values were chosen on (seed 0): a regression check, not a
    measure of learning (tests/test_controls.py is that, on other data)."""
    report = train_and_evaluate(quickstart(), tmp_path, progress=False)
    assert report["uf1"] >= 0.8, report["uf1"]  # measured 0.82


def test_auto_times_each_strategy_once_per_setup_and_takes_the_fastest(tmp_path, monkeypatch):
    from mer_jax.speed import strategy_timing

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = quickstart(epochs=1)
    config.data.toy_flow.update(subjects_per_dataset=(2, 2, 2), clips_per_subject=8, size=24)
    config.data.input_shape = (24, 24, 3)
    config.model.pool_size = 3
    config.train.batch_size = 8
    report = train_and_evaluate(config, tmp_path / "run", progress=False)
    timing = report["strategy_timing"]
    assert set(timing) == {"loop", "vmap"} and all(ms > 0 for ms in timing.values())
    assert report["strategy"] == min(timing, key=timing.get)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["strategy"] == report["strategy"]
    monkeypatch.setattr(strategy_timing, "measure", lambda *a, **k: pytest.fail("measured again"))
    again = train_and_evaluate(config, tmp_path / "again", progress=False)  # the cached timing
    assert again["strategy_timing"] == timing
    config.train.strategy = "vmap"  # forced: no timing
    assert train_and_evaluate(config, tmp_path / "forced", progress=False)["strategy_timing"] is None
    fold_of = np.array([0, 0, 1, 2, 2, 2, 2, 2, 3, 3])  # fold 2 holds out most, fold 1 fewest
    folds = protocols.Folds(fold_of[None, :] == np.arange(4)[:, None], ("a", "b", "c", "d"))
    np.testing.assert_array_equal(strategy_timing.timing_folds(folds), [2, 1])


def test_the_memory_estimate_counts_each_folds_state_and_shrinks_with_fold_chunk(capsys):
    config, dataset, folds = tiny_setup("vmap", epochs=1)
    config.train.optimizer = "sgd"  # its state: one momentum per parameter
    whole = train_folds(config, dataset, folds, FoldRun(progress=True)).memory
    assert "MiB a fold" in capsys.readouterr().err  # printed before the first epoch
    params = sum(leaf.size * 4 for leaf in jax.tree.leaves(train_folds(
        config, dataset, subset(folds, [0]), FoldRun(progress=False),
    ).state["params"]))
    stats = whole.state_per_fold - 2 * params
    assert 0 <= stats < params / 10  # params + momentum (+ BatchNorm's few running statistics)
    assert whole.data == dataset.x.nbytes + dataset.label.nbytes
    assert (whole.folds_per_call, whole.folds_per_device) == (folds.num_folds, folds.num_folds)
    config.train.fold_chunk = 2
    chunked = train_folds(config, dataset, folds, FoldRun(progress=False)).memory
    assert chunked.folds_per_call == 2
    assert 0 < chunked.temp_per_call < whole.temp_per_call  # half the folds a call: fewer activations at once
    assert chunked.per_device < whole.per_device


def test_data_kept_off_the_device_trains_as_data_on_it(tmp_path, monkeypatch):
    config, dataset, folds = tiny_setup("vmap")
    on_device = train_folds(config, dataset, folds, FoldRun(progress=False))
    calls = collections.Counter()
    for name in ("retain_freed_memory", "release_large_blocks"):  # glibc's settings: which one a run makes
        monkeypatch.setattr(runners, name, lambda _name=name: calls.update([_name]))
    np.save(tmp_path / "x.npy", dataset.x)  # read through a memory map, as a decoded cache would be
    mapped = dataclasses.replace(dataset, x=np.load(tmp_path / "x.npy", mmap_mode="r"))
    config.train.data_on_device = False
    for strategy, fold_chunk, steps_per_call in (("vmap", 2, 0), ("loop", 0, 2)):
        config.train.update(strategy=strategy, fold_chunk=fold_chunk, steps_per_call=steps_per_call)
        fed = train_folds(config, mapped, folds, FoldRun(progress=False))
        np.testing.assert_allclose(fed.test_logits, on_device.test_logits, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(fed.history["train_loss"], on_device.history["train_loss"], rtol=1e-5)
        assert not fed.memory.data_on_device and on_device.memory.data_on_device
    # Each call's batches are new host arrays: glibc hands them back, not keeps them (docs/benchmarks.md, TLCNN)
    assert set(calls) == {"release_large_blocks"}
