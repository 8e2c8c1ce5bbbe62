import json

import numpy as np
import pytest

from mer_jax.core.report import build_report, write_report

CLASS_NAMES = ["negative", "positive", "surprise"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _inputs(n=30, seed=0):
    rng = np.random.default_rng(seed)
    subjects = np.array([f"sub{i % 5:02d}" for i in range(n)])
    fold_names = sorted(set(subjects))
    return dict(
        labels=rng.integers(0, 3, n),
        predictions=rng.integers(0, 3, n),
        num_classes=3,
        class_names=CLASS_NAMES,
        subjects=subjects,
        datasets=np.where(np.arange(n) < n // 2, "casme2", "samm"),
        sample_ids=np.array([f"clip{i}" for i in range(n)]),
        folds=np.array([fold_names.index(s) for s in subjects], dtype=np.int32),
        fold_names=fold_names,
        strategy="loop",
        train_seconds=np.float32(12.5),
    )


def test_build_report_has_all_keys_and_predictions():
    inputs = _inputs()
    report = build_report(**inputs, extra={"config": {"lr": np.float64(5e-4), "layers": (1, 2)}})
    expected = {
        "accuracy", "f1", "macro_f1", "uar", "uf1", "confusion_matrix", "num_samples",
        "per_dataset", "per_fold", "class_names", "num_folds", "fold_names", "strategy",
        "train_seconds", "predictions", "config",
    }
    assert expected <= set(report)
    assert report["num_folds"] == 5 and report["num_samples"] == 30
    assert report["config"] == {"lr": 5e-4, "layers": [1, 2]}
    assert len(report["predictions"]) == 30
    first = report["predictions"][0]
    assert first == {
        "sample_id": "clip0",
        "subject": "sub00",
        "dataset": "casme2",
        "fold": 0,
        "label": CLASS_NAMES[inputs["labels"][0]],
        "prediction": CLASS_NAMES[inputs["predictions"][0]],
    }
    assert [entry["name"] for entry in report["per_fold"]] == inputs["fold_names"]
    assert sorted(report["per_dataset"]) == ["casme2", "samm"]
    json.dumps(report, allow_nan=False)


def test_write_report_files(tmp_path):
    report = build_report(**_inputs())
    epochs, folds = 7, 5
    loss = np.linspace(1.0, 0.2, epochs)[:, None] + np.zeros((1, folds))
    accuracy = np.full((epochs, folds), 0.5)
    accuracy[:, 2] = np.nan  # a fold with no value
    paths = write_report(tmp_path / "run", report, history={"train_loss": loss, "test_accuracy": accuracy})

    assert set(paths) == {"report", "markdown", "confusion_matrix", "curves"}
    assert json.loads(paths["report"].read_text()) == report

    markdown = paths["markdown"].read_text()
    for name in CLASS_NAMES:
        assert name in markdown
    assert f"{report['uf1']:.4f}" in markdown
    assert "casme2" in markdown and "samm" in markdown and "sub03" in markdown
    matrix_row = "| negative | " + " | ".join(str(v) for v in report["confusion_matrix"][0]) + " |"
    assert matrix_row in markdown

    for key in ["confusion_matrix", "curves"]:
        data = paths[key].read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_SIGNATURE)


def test_write_report_without_history_writes_no_curves(tmp_path):
    paths = write_report(tmp_path, build_report(**_inputs(n=9)))
    assert "curves" not in paths
    assert not (tmp_path / "fold_curves.png").exists()
    assert paths["confusion_matrix"].read_bytes().startswith(PNG_SIGNATURE)


def test_history_missing_key_raises(tmp_path):
    with pytest.raises(ValueError, match="test_accuracy"):
        write_report(tmp_path, build_report(**_inputs()), history={"train_loss": np.ones((2, 5))})


def test_mismatched_lengths_raise():
    inputs = _inputs()
    inputs["sample_ids"] = inputs["sample_ids"][:-1]
    with pytest.raises(ValueError, match=r"'labels': 30.*'sample_ids': 29"):
        build_report(**inputs)


def test_bad_fold_index_and_class_names_raise():
    inputs = _inputs()
    inputs["folds"] = inputs["folds"] + 1
    with pytest.raises(ValueError, match=r"fold index 5 is outside \[0, 5\)"):
        build_report(**inputs)
    with pytest.raises(ValueError, match="2 class names given for num_classes=3"):
        build_report(**{**_inputs(), "class_names": CLASS_NAMES[:2]})


def test_extra_may_not_overwrite_metrics():
    with pytest.raises(ValueError, match="'accuracy'"):
        build_report(**_inputs(), extra={"accuracy": 1.0})
