"""Run report: report.json, results.md, a confusion-matrix plot and per-fold curves.

``build_report`` gathers the held-out predictions of every fold into one
json-serialisable dict (metrics from ``mer_jax.core.metrics.summarize``);
``write_report`` writes it out. Plots use matplotlib's Agg canvas directly, so
no pyplot state or display is touched.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from mer_jax.core.metrics import METRIC_NAMES, summarize
from mer_jax.core.seeds import INTERVALS, SUMMARIZED

_METRIC_TITLES = {"accuracy": "Accuracy", "f1": "F1 (TMM 2019)", "macro_f1": "Macro F1", "uar": "UAR", "uf1": "UF1"}
_CURVES_CAPTION = (
    "Held-out accuracy is shown for inspection only; it is never used to pick an epoch or a model."
)


def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples and paths turned into json types."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pathlib.PurePath):
        return str(value)
    return value


def build_report(
    *,
    labels: ArrayLike,
    predictions: ArrayLike,
    num_classes: int,
    class_names: Sequence[str],
    subjects: ArrayLike,
    datasets: ArrayLike,
    sample_ids: ArrayLike,
    folds: ArrayLike,
    fold_names: Sequence[str],
    strategy: str,
    train_seconds: float,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """All held-out predictions of a run and their metrics as one json-ready dict.

    Per-sample inputs (labels, predictions, subjects, datasets, sample_ids,
    folds) must have equal lengths; ``folds[i]`` indexes ``fold_names``. The
    result is ``summarize(...)`` plus class_names, num_folds, fold_names,
    strategy, train_seconds and ``predictions`` (one record per held-out
    sample, labels as class names); per_fold entries also get the fold's name.
    ``extra`` is merged in at top level and may not overwrite those keys.
    """
    per_sample = {
        "labels": np.asarray(labels),
        "predictions": np.asarray(predictions),
        "subjects": np.asarray(subjects),
        "datasets": np.asarray(datasets),
        "sample_ids": np.asarray(sample_ids),
        "folds": np.asarray(folds),
    }
    lengths = {key: len(array) for key, array in per_sample.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"per-sample inputs differ in length: {lengths}")
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names given for num_classes={num_classes}")
    fold_index = per_sample["folds"].astype(np.int64)
    if fold_index.size and (fold_index.min() < 0 or fold_index.max() >= len(fold_names)):
        bad = fold_index[(fold_index < 0) | (fold_index >= len(fold_names))][0]
        raise ValueError(f"fold index {bad} is outside [0, {len(fold_names)}) of the {len(fold_names)} fold names")

    report = summarize(
        per_sample["labels"], per_sample["predictions"], num_classes, per_sample["datasets"], fold_index
    )
    for entry in report["per_fold"]:
        entry["name"] = str(fold_names[entry["fold"]])
    class_names = [str(name) for name in class_names]
    report.update(
        class_names=class_names,
        num_folds=len(fold_names),
        fold_names=[str(name) for name in fold_names],
        strategy=str(strategy),
        train_seconds=float(train_seconds),
        predictions=[
            {
                "sample_id": _jsonable(sample_id),
                "subject": str(subject),
                "dataset": str(dataset),
                "fold": int(fold),
                "label": class_names[int(label)],
                "prediction": class_names[int(prediction)],
            }
            for sample_id, subject, dataset, fold, label, prediction in zip(
                per_sample["sample_ids"],
                per_sample["subjects"],
                per_sample["datasets"],
                fold_index,
                per_sample["labels"],
                per_sample["predictions"],
            )
        ],
    )
    if extra:
        clashes = sorted(set(extra) & set(report))
        if clashes:
            raise ValueError(f"extra keys {clashes} would overwrite report keys")
        report.update(_jsonable(dict(extra)))
    return report


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _markdown(report: Mapping[str, Any]) -> str:
    """results.md: pooled, per-dataset and per-fold metric tables and the confusion matrix."""
    titles = [_METRIC_TITLES[name] for name in METRIC_NAMES]
    lines = [
        "# Results",
        "",
        f"Strategy `{report['strategy']}`, {report['num_folds']} folds, "
        f"{report['num_samples']} held-out samples, training {report['train_seconds']:.1f} s.",
        "",
        "## Pooled over all folds",
        "",
        *_table(["Samples", *titles], [[report["num_samples"], *(_fmt(report[m]) for m in METRIC_NAMES)]]),
        "F1 (TMM 2019) follows Xia et al., TMM 2019, sec. IV-B as written and so equals accuracy for "
        "single-label predictions; UF1 (= macro F1) and UAR are the class-balanced MEGC2019 metrics.",
        "",
        "## Per source dataset",
        "",
        *_table(
            ["Dataset", "Samples", *titles],
            [
                [name, metrics["num_samples"], *(_fmt(metrics[m]) for m in METRIC_NAMES)]
                for name, metrics in report["per_dataset"].items()
            ],
        ),
        "## Per fold",
        "",
        *_table(
            ["Fold", "Held out", "Samples", *titles, "Epochs trained"],
            [
                [entry["fold"], entry["name"], entry["num_samples"], *(_fmt(entry[m]) for m in METRIC_NAMES),
                 entry.get("epochs_trained", "")]
                for entry in report["per_fold"]
            ],
        ),
        *_seed_section(report),
        "## Confusion matrix (rows: true class, columns: predicted class)",
        "",
        *_table(
            ["true \\ predicted", *report["class_names"]],
            [[name, *row] for name, row in zip(report["class_names"], report["confusion_matrix"])],
        ),
    ]
    return "\n".join(lines)


def _seed_section(report: Mapping[str, Any]) -> list[str]:
    """results.md's scores over seeds (mer_jax/core/seeds.py), when the report has them."""
    if "per_seed" not in report:
        return []
    names = SUMMARIZED
    spread = [
        f"{_fmt(report[f'{m}_mean'])} ± {_fmt(report[f'{m}_std'])}" if report[f"{m}_std"] is not None
        else _fmt(report[f"{m}_mean"])
        for m in names
    ]
    intervals = ", ".join(
        f"{_METRIC_TITLES[m]} [{_fmt(report[f'{m}_ci95'][0])}, {_fmt(report[f'{m}_ci95'][1])}]" for m in INTERVALS
    )
    return [
        "## Over seeds",
        "",
        f"{len(report['seeds'])} training seeds of every fold; the tables above are seed {report['seeds'][0]}'s.",
        "",
        *_table(
            ["Seed", *(_METRIC_TITLES[m] for m in names)],
            [[entry["seed"], *(_fmt(entry[m]) for m in names)] for entry in report["per_seed"]]
            + [["mean ± std", *spread]],
        ),
        f"95% intervals of the mean over seeds, from {report['bootstrap']['resamples']} bootstrap draws of "
        f"subjects: {intervals}.",
        "",
    ]


def _save(figure: Figure, path: pathlib.Path) -> None:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=120, bbox_inches="tight")


def _plot_confusion(report: Mapping[str, Any], path: pathlib.Path) -> None:
    matrix = np.asarray(report["confusion_matrix"])
    names = report["class_names"]
    size = 1.2 + 0.9 * len(names)
    figure = Figure(figsize=(size + 1.5, size))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, label="samples")
    threshold = (matrix.min() + matrix.max()) / 2  # dark cells get white text
    for (row, col), count in np.ndenumerate(matrix):
        axes.text(col, row, str(count), ha="center", va="center",
                  color="white" if count > threshold else "black")
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(
        f"Pooled over {report['num_folds']} folds: UF1 {_fmt(report['uf1'])}, UAR {_fmt(report['uar'])}"
    )
    _save(figure, path)


def _fold_mean(values: np.ndarray) -> np.ndarray:
    """Mean over the fold axis ignoring NaN; NaN where no fold has a value."""
    present = ~np.isnan(values)
    count = present.sum(axis=1)
    total = np.where(present, values, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _plot_curves(history: Mapping[str, ArrayLike], path: pathlib.Path) -> None:
    panels = {"train_loss": "training loss", "test_accuracy": "held-out accuracy"}
    missing = sorted(set(panels) - set(history))
    if missing:
        raise ValueError(f"history lacks {missing}; it needs {sorted(panels)}")
    figure = Figure(figsize=(11, 4.2))
    for index, (key, label) in enumerate(panels.items()):
        values = np.asarray(history[key], dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(f"history[{key!r}] must have shape (epochs, folds), got {values.shape}")
        axes = figure.add_subplot(1, 2, index + 1)
        epochs = np.arange(1, values.shape[0] + 1)
        axes.plot(epochs, values, color="tab:blue", linewidth=0.6, alpha=0.35)
        axes.plot(epochs, _fold_mean(values), color="black", linewidth=2.5, label="mean over folds")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.set_title(f"{label} per fold ({values.shape[1]} folds)")
        axes.legend(loc="best")
    figure.suptitle("Per-fold training curves")
    figure.text(0.5, -0.02, _CURVES_CAPTION, ha="center", fontsize=9, style="italic")
    _save(figure, path)


def write_report(
    workdir: str | pathlib.Path,
    report: Mapping[str, Any],
    history: Mapping[str, ArrayLike] | None = None,
) -> dict[str, pathlib.Path]:
    """Write report.json, results.md, confusion_matrix.png and (with history) fold_curves.png.

    history = {"train_loss": (epochs, folds), "test_accuracy": (epochs, folds)},
    NaN where a fold has no value. Returns the written paths under the keys
    'report', 'markdown', 'confusion_matrix' and, with history, 'curves'.
    """
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": workdir / "report.json",
        "markdown": workdir / "results.md",
        "confusion_matrix": workdir / "confusion_matrix.png",
    }
    paths["report"].write_text(json.dumps(_jsonable(report), indent=2) + "\n")
    paths["markdown"].write_text(_markdown(report))
    _plot_confusion(report, paths["confusion_matrix"])
    if history is not None:
        paths["curves"] = workdir / "fold_curves.png"
        _plot_curves(history, paths["curves"])
    return paths
