"""How well `mer-jax predict` classifies the clips of a synthetic composite its model never saw.

Trains nothing: it applies the final model of a finished run (the README's
main job) to every MEGC2019 clip of another composite (`mer-jax synth --seed 7`),
each read from its frame folder exactly as a user would pass it to `mer-jax
predict` (apex spotted), and scores the predictions against the composite's
ground truth:

    python benchmarks/predict_accuracy.py --workdir runs/synth_megc2019 --composite runs/synth_new
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mer_jax.core import metrics
from mer_jax.data.clips.layouts import LAYOUTS
from mer_jax.predict import Predictor
from mer_jax.data.synth.render import GROUND_TRUTH


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="a finished run with train.final_model=True")
    parser.add_argument("--composite", required=True, help="a folder written by `mer-jax synth` with another seed")
    parser.add_argument("--true-apex", action="store_true", help="give predict the true apex instead of spotting it")
    args = parser.parse_args()
    composite = Path(args.composite)
    predictor = Predictor(args.workdir)
    classes = predictor.final.class_names
    labels, predictions, datasets = [], [], []
    start = time.perf_counter()
    for truth_file in tqdm(sorted((composite / GROUND_TRUTH).glob("*/*/*.npz")), unit="clip"):
        dataset, subject, clip = truth_file.parts[-3], truth_file.parts[-2], truth_file.stem
        truth = np.load(truth_file)
        label = str(truth["megc2019"])
        if not label:  # outside the MEGC2019 composite
            continue
        folder = LAYOUTS[dataset].clip_dir(composite, subject, clip, str(truth["emotion"]))
        labels.append(classes.index(label))
        apex = int(truth["apex"] - truth["onset"]) if args.true_apex else None
        predictions.append(classes.index(predictor.predict(folder, apex=apex).label))
        datasets.append(dataset)
    seconds = time.perf_counter() - start
    pooled = metrics.compute_metrics(labels, predictions, len(classes))
    print(f"{len(labels)} clips in {seconds:.0f} s ({seconds / len(labels):.2f} s per clip)")
    print(f"accuracy {pooled['accuracy']:.3f}  UF1 {pooled['uf1']:.3f}  UAR {pooled['uar']:.3f}  "
          f"(chance: accuracy of the majority class {np.bincount(labels).max() / len(labels):.3f}, UF1 ~0.33)")
    for name in sorted(set(datasets)):
        at = np.asarray(datasets) == name
        score = metrics.compute_metrics(np.asarray(labels)[at], np.asarray(predictions)[at], len(classes))
        print(f"  {name}: {at.sum()} clips, accuracy {score['accuracy']:.3f}, UF1 {score['uf1']:.3f}")


if __name__ == "__main__":
    main()
