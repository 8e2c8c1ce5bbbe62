"""STRCN-A's heat-map mask per fold (mer_jax/methods/strcn/heat_mask.py; Xia et al., TMM 2019, sec. III-C-1, eq. 4).

Under data.mask=per_fold nothing of a fold's held-out subject may reach that
fold's inputs: changing the held-out subject's clips leaves the fold's mask and
training inputs as they were. Under the paper's mask (every clip) it does not.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mer_jax.core import protocols
from mer_jax.data import variants
from mer_jax.methods.strcn import heat_mask
from mer_jax.config import base_config
from mer_jax.core.dataset import Dataset
from mer_jax.data.preprocess.appearance import appearance_matrix
from mer_jax.train import train_and_evaluate

T, H, W = 5, 8, 10  # frames of 8 x 10 pixels: a 30% mask keeps 24
SUBJECTS, CLIPS = 4, 3


def moving_frames(rng, row: int) -> np.ndarray:
    """(T, H, W, 3) frames still everywhere but in rows row..row+2, which brighten frame after frame."""
    clip = np.repeat(rng.uniform(0.2, 0.4, size=(1, H, W, 3)), T, axis=0).astype(np.float32)
    clip[:, row : row + 3] += np.linspace(0.0, 0.5, T, dtype=np.float32)[:, None, None, None]
    return clip


def frames_dataset(moving_rows=(0, 2, 4, 5), seed=0) -> Dataset:
    """SUBJECTS x CLIPS clips as the loader keeps them under per_fold: frames and each clip's heat term."""
    rng = np.random.default_rng(seed)
    x = np.stack([moving_frames(rng, moving_rows[s]) for s in range(SUBJECTS) for _ in range(CLIPS)])
    subject = np.repeat([f"casme2/sub{s:02d}" for s in range(SUBJECTS)], CLIPS)
    return Dataset(
        x=x,
        label=np.tile(np.arange(CLIPS, dtype=np.int32), SUBJECTS),
        subject=subject,
        dataset=np.full(len(x), "casme2"),
        sample_id=np.char.add(subject, [f"/EP{i:02d}" for i in range(len(x))]),
        class_names=("negative", "positive", "surprise"),
        extra={heat_mask.HEAT: np.stack([heat_mask.clip_heat(clip[None], [8.0]) for clip in x])},
    )


def own_training_rows(folds: protocols.Folds, fold: int) -> np.ndarray:
    return np.flatnonzero(folds.train_masks[fold])


def test_per_fold_inputs_ignore_the_held_out_subject_and_the_papers_do_not():
    before = frames_dataset()
    after = frames_dataset(moving_rows=(0, 2, 4, 0))  # subject 3 now moves where subject 0 does
    folds = protocols.loso(before.subject)
    held_out = 3  # the fold of casme2/sub03
    assert folds.names[held_out] == "casme2/sub03"
    one, folds_one, _ = heat_mask.per_fold(before, folds, 0.3)
    two, folds_two, _ = heat_mask.per_fold(after, folds, 0.3)
    masks_one, masks_two = heat_mask.fold_masks(before, folds, 0.3), heat_mask.fold_masks(after, folds, 0.3)
    np.testing.assert_array_equal(masks_one[held_out], masks_two[held_out])
    rows = own_training_rows(folds_one, held_out)
    np.testing.assert_array_equal(own_training_rows(folds_two, held_out), rows)
    np.testing.assert_array_equal(one.x[rows], two.x[rows])
    # The change matters: a fold that trains on subject 3 gets another mask.
    assert (masks_one[0] != masks_two[0]).any()
    # The paper's mask sums every clip: subject 0..2's clips, the same frames, become other inputs.
    paper_one, paper_two = heat_mask.paper(before, 0.3), heat_mask.paper(after, 0.3)
    training = ~folds.test_masks[held_out]
    assert not np.array_equal(paper_one.x[training], paper_two.x[training])


def test_each_fold_trains_and_tests_on_its_own_copy_masked_by_its_own_mask():
    dataset = frames_dataset()
    folds = protocols.loso(dataset.subject)
    stacked, copies, clip_of_row = heat_mask.per_fold(dataset, folds, 0.3)
    n = dataset.num_samples
    assert stacked.num_samples == folds.num_folds * n and stacked.input_shape == (24, T, 3)
    assert heat_mask.HEAT not in stacked.extra
    masks = heat_mask.fold_masks(dataset, folds, 0.3)
    for fold in range(folds.num_folds):
        own = np.zeros(folds.num_folds * n, bool)
        own[fold * n : (fold + 1) * n] = True
        assert not (copies.test_masks[fold] & ~own).any() and not (copies.train_masks[fold] & ~own).any()
        np.testing.assert_array_equal(clip_of_row[copies.test_masks[fold]], np.flatnonzero(folds.test_masks[fold]))
        np.testing.assert_array_equal(clip_of_row[copies.train_masks[fold]], np.flatnonzero(~folds.test_masks[fold]))
        for row in np.flatnonzero(own)[:: CLIPS]:
            expected = appearance_matrix(dataset.x[clip_of_row[row]], masks[fold], num_frames=T)
            np.testing.assert_allclose(stacked.x[row], expected, atol=1e-6)
        # Fold f's mask is the top 30% of the heat of the clips it trains on.
        heat = dataset.extra[heat_mask.HEAT][~folds.test_masks[fold]].sum(axis=0)
        assert heat[masks[fold]].min() >= heat[~masks[fold]].max()
    assert copies.test_masks.sum(axis=0).max() == 1 and copies.test_masks.sum() == n  # each clip tested once
    assert stacked.sample_id[copies.test_masks[1]][0].endswith("@casme2/sub01")


def test_augmented_rows_add_no_heat_of_their_own():
    """Eq. 4 sums each clip once: an augmented variant (mer_jax.data.variants) of a clip moves neither mask."""
    dataset = frames_dataset()
    clips = dataset.num_samples
    variant = moving_frames(np.random.default_rng(1), row=5)
    hot = np.zeros((1, H, W), np.float32)
    hot[:, :, :4] = 1e6  # a variant hot in the first four columns: counted, it would take them into every mask
    augmented = Dataset(
        x=np.concatenate([dataset.x, variant[None]]),
        label=np.append(dataset.label, dataset.label[0]),
        subject=np.append(dataset.subject, dataset.subject[0]),
        dataset=np.append(dataset.dataset, dataset.dataset[0]),
        sample_id=np.append(dataset.sample_id, f"{dataset.sample_id[0]}@keep90_alpha5"),
        class_names=dataset.class_names,
        extra={
            heat_mask.HEAT: np.concatenate([dataset.extra[heat_mask.HEAT], hot]),
            variants.CLIP: np.append(dataset.sample_id, dataset.sample_id[0]),
        },
    )
    folds = protocols.loso(dataset.subject)
    train = np.concatenate([folds.train_masks, folds.train_masks[:, :1]], axis=1)  # the variant trains with its clip
    with_variant = protocols.Folds(np.pad(folds.test_masks, ((0, 0), (0, 1))), folds.names, train)
    np.testing.assert_array_equal(heat_mask.paper(augmented, 0.3).x[:clips], heat_mask.paper(dataset, 0.3).x)
    np.testing.assert_array_equal(
        heat_mask.fold_masks(augmented, with_variant, 0.3), heat_mask.fold_masks(dataset, folds, 0.3)
    )


def test_training_inputs_are_the_clips_under_the_papers_mask_and_per_fold_has_no_final_model():
    dataset = frames_dataset()
    folds = protocols.loso(dataset.subject)
    config = base_config("strcn_a")
    same, same_folds, rows = heat_mask.training_inputs(config, dataset, folds)
    assert same is dataset and same_folds is folds and (rows == np.arange(dataset.num_samples)).all()
    config.data.mask = "per_fold"
    config.train.final_model = True
    with pytest.raises(ValueError, match="no final model"):
        heat_mask.training_inputs(config, dataset, folds)
    config.data.mask = "fold"
    with pytest.raises(ValueError, match="unknown data.mask 'fold'"):
        heat_mask.training_inputs(config, dataset, folds)


def test_per_fold_run_reports_each_clip_once_under_its_own_id(tmp_path, monkeypatch):
    """train_and_evaluate on the F copies: one prediction per clip, named as the clip, from the fold holding it out."""
    dataset = frames_dataset()
    monkeypatch.setattr("mer_jax.method.load", lambda _config: dataset)
    config = base_config("strcn_a")
    config.model.name = "strcn_a"
    config.model.features = 4
    config.model.num_rcls = 0
    config.data.mask = "per_fold"
    config.data.input_shape = (24, T, 3)
    config.data.num_classes = 3
    config.train.strategy = "loop"
    config.train.epochs = 1
    config.train.batch_size = 3
    train_and_evaluate(config, tmp_path, progress=False)
    report = json.loads((tmp_path / "report.json").read_text())
    predictions = report["predictions"]
    assert sorted(p["sample_id"] for p in predictions) == sorted(dataset.sample_id)
    assert all(report["fold_names"][p["fold"]] == p["subject"] for p in predictions)
