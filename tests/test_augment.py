"""STRCN's x50 training augmentation (mer_jax/data/variants.py; Xia et al., TMM 2019, sec. III-E).

Every clip's stored variants (alphas x frame-keeping levels) are rows of the
data set; a fold holds out and scores clips' own rows only (the test alpha,
every frame) and trains on every variant of the clips it does not hold out,
never on a variant of a clip it holds out. Frame keeping is done before
magnification and normalisation, so it changes STRCN-A's matrices and
STRCN-G's flows.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import data_builders
from mer_jax.data import builds
from mer_jax.core import protocols
from mer_jax.data import variants
from mer_jax.methods import strcn
from mer_jax.methods.strcn import heat_mask
from mer_jax.data.clips.builder import config_named
from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.data.clips.materialize import StoredVariant, find_apex, materialize
from mer_jax.config import base_config
from mer_jax.core.dataset import Dataset
from mer_jax.data.synth import write_synthetic_composite
from mer_jax.core.loop import examples_text
from mer_jax.train import train_and_evaluate

ALPHAS = (8.0, 12.0)
LEVELS = (1.0, 0.9, 0.8, 0.7, 0.6)  # the shipped configs' (temporal.KEEP_FRACTIONS)
NAME = "casme2/strcn_a_small"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """casme2's dummy_data (6 clips of 3 frames) built with strcn_a's code path at 24 x 32 pixels, 6 frames,
    two alphas, the five levels."""
    shipped = config_named("strcn_a")
    variant = dataclasses.replace(shipped.variant, size=(24, 32), alphas=ALPHAS, num_frames=6)
    assert variant.keep_fractions == LEVELS
    out = tmp_path_factory.mktemp("built")
    config = dataclasses.replace(shipped, name="strcn_a_small", variant=variant)
    builder = data_builders.BUILDERS["casme2"](config=config, data_dir=str(out))
    dummy = Path(data_builders.__file__).parent / "casme2" / "dummy_data"
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(dummy)))
    source = builder.as_data_source(split="train")
    stored = {source[i]["sample_id"].decode(): source[i]["x"] for i in range(len(source))}
    return out, stored


def test_the_shipped_configs_store_fifty_variants_with_every_frame_first():
    assert config_named("flow_strcn_g").variant.shape == (50, 245, 300, 2)
    assert config_named("strcn_a").variant.shape == (50, 30, 48, 64, 3)
    for name in ("flow_strcn_g", "strcn_a"):
        variant = config_named(name).variant
        assert variant.keep_fractions == LEVELS and StoredVariant.from_dict(variant.to_dict()) == variant
    with pytest.raises(ValueError, match="keep_fractions are the frame-keeping levels of magnified variants"):
        StoredVariant("flow", (60, 60), keep_fractions=(1.0, 0.6))  # unmagnified
    with pytest.raises(ValueError, match="1.0 first"):
        StoredVariant("flow", (60, 60), alphas=(8.0,), keep_fractions=(0.6, 1.0))


def strcn_a(data_dir, **keys):
    """The build NAME under `data_dir` as STRCN reads it, in its four classes."""
    return strcn.load({"name": NAME, "data_dir": str(data_dir), "labels": "strcn4", **keys})


def test_a_build_stores_fifty_variants_and_reading_it_augmented_gives_a_row_each(built):
    out, stored = built
    kept = variants.stored_variants(ALPHAS, LEVELS)
    assert kept[:2] == [(1.0, 8.0), (1.0, 12.0)] and len(kept) == 10  # x50 with the shipped 10 alphas
    plain = strcn_a(out, alpha=12.0, mask="per_fold")
    rows = strcn_a(out, alpha=12.0, mask="per_fold", augment=True)
    assert plain.num_samples == len(stored) and rows.num_samples == len(stored) * len(kept)
    assert rows.x.dtype == np.uint8 and rows.input_shape == (6, 24, 32, 3)  # frames kept compact
    clips = rows.extra[variants.CLIP]
    for sample, x in stored.items():
        assert x.shape == (10, 6, 24, 32, 3)
        own = rows.sample_id == sample
        np.testing.assert_array_equal(rows.x[own][0], x[1])  # the clip's own row: every frame, data.alpha = 12
        np.testing.assert_array_equal(plain.x[plain.sample_id == sample][0], x[1])
        for index, (keep, alpha) in enumerate(kept):
            row = rows.sample_id == sample + ("" if index == 1 else variants.variant_suffix(keep, alpha))
            assert row.sum() == 1 and clips[row][0] == sample
            np.testing.assert_array_equal(rows.x[row][0], x[index])
        # Each clip's heat counts once (its own row), so the paper's mask is that of the clips.
        heat, own = rows.extra[heat_mask.HEAT][clips == sample], rows.sample_id[clips == sample] == sample
        assert heat[own].any() and not heat[~own].any()
    assert (rows.label[variants.clip_of_row(rows)] == rows.label).all()


def test_frame_keeping_changes_the_strcn_a_matrices_and_not_the_papers_mask(built):
    out, stored = built
    matrices = strcn_a(out, alpha=8.0, augment=True)
    clips_only = strcn_a(out, alpha=8.0)
    assert matrices.input_shape == (int(0.3 * 24 * 32), 6, 3)
    for sample in stored:
        own = matrices.x[matrices.sample_id == sample][0]
        np.testing.assert_array_equal(own, clips_only.x[clips_only.sample_id == sample][0])  # same mask
        kept = matrices.x[matrices.sample_id == sample + variants.variant_suffix(0.6, 8.0)][0]
        magnified = matrices.x[matrices.sample_id == sample + variants.variant_suffix(1.0, 12.0)][0]
        assert np.abs(kept.astype(int) - own).mean() > 0.5, sample  # 60% of the frames: another matrix
        assert np.abs(magnified.astype(int) - own).mean() > 0.5, sample


def test_frame_keeping_changes_strcn_g_flow_through_the_magnified_apex(tmp_path):
    """Kept frames are magnified: the IIR band sees the motion faster, so the apex and its flow change.
    The clip with every frame kept is what the build gave before frame keeping existed."""
    composite = tmp_path / "composite"
    write_synthetic_composite(composite, seed=3, subjects={"casme2": 1}, clips_per_subject=1, progress=False)
    clip = LAYOUTS["casme2"].clips(composite)[0][0]
    paths = LAYOUTS["casme2"].frame_paths(str(composite), clip)
    apex, _ = find_apex(paths, clip.apex, clip.onset)
    assert apex + 1 >= 5  # 60% of onset..apex drops frames
    variant = StoredVariant("flow", (49, 60), alphas=ALPHAS, keep_fractions=(1.0, 0.6), tvl1_epsilon=0.03)
    flows, _ = materialize(paths, apex, variant, seed=7)
    assert flows.shape == (4, 49, 60, 2)
    every_frame, _ = materialize(paths, apex, dataclasses.replace(variant, keep_fractions=()), seed=7)
    np.testing.assert_allclose(flows[:2], every_frame, rtol=0, atol=1e-5)
    change = np.abs(flows[2:] - flows[:2]).mean()
    assert change > 0.1 * np.abs(flows[:2]).mean(), change
    again, _ = materialize(paths, apex, variant, seed=7)
    np.testing.assert_array_equal(again, flows)  # a clip's draws are the same in every build


def clip_rows(num_subjects=4, clips_per_subject=3, per_clip=10, shape=(16, 16, 2)) -> Dataset:
    """Clips of `num_subjects` subjects with `per_clip` rows each, as builds.load_built(augment=True) returns them."""
    rng = np.random.default_rng(0)
    clips = [f"casme2/sub{s:02d}/EP{c:02d}" for s in range(num_subjects) for c in range(clips_per_subject)]
    labels = rng.integers(0, 3, len(clips)).astype(np.int32)
    others = [variant for variant in variants.stored_variants(range(5, 15), LEVELS) if variant != (1.0, 8.0)]
    suffixes = [""] + [variants.variant_suffix(keep, alpha) for keep, alpha in others][: per_clip - 1]
    sample_id = np.array([clip + suffix for clip in clips for suffix in suffixes])
    order = np.argsort(sample_id)
    clip_of = np.repeat(clips, per_clip)[order]
    return Dataset(
        x=rng.normal(size=(len(sample_id), *shape)).astype(np.float32),
        label=np.repeat(labels, per_clip)[order],
        subject=np.array(["/".join(c.split("/")[:2]) for c in clip_of]),
        dataset=np.full(len(sample_id), "casme2"),
        sample_id=sample_id[order],
        class_names=("negative", "positive", "surprise"),
        extra={variants.CLIP: clip_of},
    )


@pytest.mark.parametrize("protocol", ["loso", "lovo", "kfold"])
def test_folds_hold_out_clips_own_rows_and_train_on_every_variant_of_the_other_clips_only(protocol):
    rows = clip_rows()
    clip_of_row = variants.clip_of_row(rows)
    own = clip_of_row == np.arange(rows.num_samples)
    config = base_config().protocol
    config.name, config.k, config.test_fraction = protocol, 3, 0.25
    folds = protocols.folds_of_config(config, subjects=rows.subject, labels=rows.label, clip_of_row=clip_of_row)
    clips = protocols.folds_of_config(config, subjects=rows.subject[own], labels=rows.label[own])
    assert folds.names == clips.names
    np.testing.assert_array_equal(folds.test_masks[:, own], clips.test_masks)  # the clips' folds, unchanged
    assert not folds.test_masks[:, ~own].any()  # an augmented row is never held out or scored
    for fold in range(folds.num_folds):
        held_out = set(rows.sample_id[folds.test_masks[fold]])
        trained = folds.train_masks[fold]
        assert not (set(rows.extra[variants.CLIP][trained]) & held_out)  # no variant of a held-out clip
        assert trained.sum() == 10 * (~clips.test_masks[fold]).sum()  # all 10 variants of every training clip
        if protocol == "loso":
            assert not (rows.subject[trained] == folds.names[fold]).any()


def test_a_row_of_a_clip_without_its_own_row_is_refused():
    rows = clip_rows()
    broken = rows.take(rows.sample_id != "casme2/sub01/EP02")
    with pytest.raises(ValueError, match="clip 'casme2/sub01/EP02', which has no row of its own"):
        variants.clip_of_row(broken)
    with pytest.raises(ValueError, match="alpha 9.0 is not among"):
        variants.rows(np.zeros((10, 2)), variants.stored_variants((5.0, 8.0), LEVELS), 9.0, True)


def test_training_takes_fifty_times_the_clips_an_epoch_and_scores_the_clips_only(tmp_path, monkeypatch):
    """Each fold's epoch draws every variant of its training clips; the report scores each clip once."""
    rows = clip_rows(per_clip=50)
    monkeypatch.setattr("mer_jax.method.load", lambda _config: rows)
    config = base_config("strcn_g")
    config.model.features, config.model.num_rcls = 4, 0
    config.data.input_shape, config.data.num_classes = (16, 16, 2), 3
    config.train.strategy, config.train.epochs, config.train.batch_size = "loop", 1, 50
    report = train_and_evaluate(config, tmp_path, progress=False)
    clips = np.unique(rows.extra[variants.CLIP])
    assert sorted(p["sample_id"] for p in report["predictions"]) == sorted(clips)
    for entry in report["per_fold"]:
        assert entry["num_samples"] == 3  # a subject's clips, as without augmentation
        assert entry["train_examples_per_epoch"] == 50 * (len(clips) - 3)
    assert json.loads((tmp_path / "report.json").read_text())["per_fold"][0]["train_examples_per_epoch"] == 450
    folds = protocols.folds_of_config(
        config.protocol, subjects=rows.subject, labels=rows.label, clip_of_row=variants.clip_of_row(rows)
    )
    assert examples_text(folds) == "450"  # the progress line: "4 folds of 450 training examples an epoch"
