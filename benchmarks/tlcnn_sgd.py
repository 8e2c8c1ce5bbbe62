"""Does TLCNN's stage b fit its training frames with the paper's SGD, given more of the paper's iterations?

    python benchmarks/tlcnn_sgd.py --data_dir DIR [--iterations 1000] [--optimizer sgd|adam]

Wang et al., Neurocomputing 2018, sec. 4.2 train stage b (the frame CNN on single frames of the training
clips) with SGD, momentum 0.9, lr 0.001, batch 224, for 10,000 iterations. The CPU config
(configs/tlcnn_synthetic.py) trains it with Adam for 4 epochs of about 50 steps. This trains stage b at the
CPU config's sizes (1/16 of the paper's width, a 113 x 113 crop of half-size frames) from fresh weights on
the frames of the first `subject_kfold` fold of a `tim32` build (`mer-jax build megc2019 --builder_config
tim32`), for `--iterations` steps: `sgd` as configs/tlcnn.py sets it (momentum 0.9, lr 0.001, weight decay
5e-4, dropout 0.5), `adam` as the CPU config (lr 0.001, no dropout). Every epoch it prints
the training loss and accuracy beside the training class prior, and the accuracy on the held-out
subjects' frames. The figures are in docs/models.md ("TLCNN").
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from mer_jax import method
from mer_jax.cli import load_config
from mer_jax.core import protocols
from mer_jax.core.loop import FoldRun, majority_share, train_folds
from mer_jax.core.protocols import Folds
from mer_jax.core.stages import stage_config
from mer_jax.methods.tlcnn.stages import frame_dataset

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="the --data_dir of a megc2019/tim32 build")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    args = parser.parse_args()

    config = load_config(str(REPO / "configs" / "tlcnn_synthetic.py"), [f"--config.data.data_dir={args.data_dir}"])
    paper = load_config(str(REPO / "configs" / "tlcnn.py"), [])
    clips = method.load(config)
    folds = protocols.folds_of_config(config.protocol, subjects=clips.subject, labels=clips.label)
    frames = frame_dataset(clips)
    clip = np.repeat(np.arange(clips.num_samples), clips.x.shape[1])
    first = Folds(folds.test_masks[:1, clip], folds.names[:1], folds.train_masks[:1, clip])

    single = stage_config(config, "frames")
    single.train.lr_step_epochs = 0
    single.train.schedule = "constant"
    if args.optimizer == "sgd":
        single.train.optimizer = "sgd"
        single.train.momentum = paper.train.momentum
        single.train.weight_decay = paper.train.weight_decay
        single.train.learning_rate = paper.stages.frames.train.learning_rate
        single.model.dropout = paper.stages.frames.model.dropout
    steps = math.ceil(first.train_masks[0].sum() / single.train.batch_size)
    single.train.epochs = math.ceil(args.iterations / steps)
    prior = float(majority_share(frames.label, first.train_masks, clips.num_classes)[0])
    print(f"{args.optimizer}: lr {single.train.learning_rate}, batch {single.train.batch_size}, {steps} steps an "
          f"epoch, {single.train.epochs} epochs; training prior {prior:.3f}", flush=True)

    result = train_folds(single, frames, first, FoldRun(progress=True))
    for epoch in range(single.train.epochs):
        print(f"epoch {epoch + 1:3d} ({(epoch + 1) * steps:5d} iterations): "
              f"loss {result.history['train_loss'][epoch, 0]:.3f} "
              f"train {result.history['train_accuracy'][epoch, 0]:.3f} "
              f"held out {result.history['test_accuracy'][epoch, 0]:.3f}", flush=True)
    print(f"{result.train_seconds:.0f} s of training", flush=True)


if __name__ == "__main__":
    main()
