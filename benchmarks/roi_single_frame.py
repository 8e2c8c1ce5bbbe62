"""Can stage 1 of the six-region CNN+LSTM (Aouayeb et al., MLSP 2019, sec. 3.2) tell a clip's class from one frame?

    python benchmarks/roi_single_frame.py --data_dir DIR [--epochs 12] [--fill] [--focal]

Trains the six region CNNs (`roi_cnn`, configs/roi_cnn_lstm_synthetic.py's sizes) on
the frames of the first `subject_kfold` fold's training clips of a `regions` build
(`mer-jax build megc2019 --builder_config regions`), with Adam at 1e-3 and cross
entropy (`--focal`: eq. 2 with the fold's inverse-frequency alpha), and prints per
epoch the training loss and, on the training and held-out frames, the accuracy over
all region labels and over the regions that take part ("me": the clip's class is
the answer, chance 1/3). `--fill` stretches each region's crop to fill its canvas
instead of the paper's black padding (docs/models.md, "Six regions, CNN + LSTM").
The figures are in docs/models.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from mer_jax.data import builds
from mer_jax.core.dataset import Dataset
from mer_jax.methods.six_regions import stages
from mer_jax.core import losses, protocols
from mer_jax.config import sibling_config
from mer_jax.models import create_model

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "roi_cnn_lstm_synthetic.py"
BATCH = 64  # the paper's stage-1 batch, sec. 4.1.2


def filled(clips: Dataset, sizes) -> np.ndarray:
    """The clips with each region's crop (its extent in frame 0) stretched over the region's whole canvas."""
    x = clips.x.copy()
    for n in range(len(x)):
        for r, (h, w) in enumerate(sizes):
            rows, cols = np.nonzero(x[n, 0, r, :h, :w, 0])
            if len(rows):
                bottom, right = rows.max() + 1, cols.max() + 1
                for t in range(clips.extra["num_frames"][n]):
                    x[n, t, r, :h, :w, 0] = cv2.resize(x[n, t, r, :bottom, :right, 0], (w, h))
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="the --data_dir of a megc2019/regions build")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--fill", action="store_true", help="crops stretched to their canvas, not padded")
    parser.add_argument("--focal", action="store_true", help="eq. 2 with inverse-frequency alpha, not cross entropy")
    args = parser.parse_args()

    config = sibling_config(str(CONFIG), CONFIG.stem)
    config.data.data_dir = args.data_dir
    clips = builds.load(config.data)
    sizes = config.stages.cnn.model.region_sizes
    if args.fill:
        clips = Dataset(**{**clips.__dict__, "x": filled(clips, sizes)})
    frames, region_label, clip = stages.frame_dataset(clips)
    folds = protocols.subject_kfold(clips.subject, k=config.protocol.k)
    train = np.flatnonzero(folds.train_masks[0][clip])
    test = np.flatnonzero(folds.test_masks[0][clip])
    shares = np.bincount(region_label[train].ravel(), minlength=4) / region_label[train].size
    print(f"{len(train)} training and {len(test)} held-out frames; region label shares (negative, positive, "
          f"surprise, not me): {np.round(shares, 3).tolist()}")

    model = create_model(config.stages.cnn.model, num_classes=3, input_shape=frames.x.shape[1:], rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    alpha = losses.inverse_frequency(jnp.asarray(region_label[train]), 4) if args.focal else None

    @nnx.jit
    def step(model, optimizer, x, y, key):
        def loss_fn(model):
            logits = model(x, train=True, rngs=nnx.Rngs(dropout=key))
            if alpha is None:
                return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return losses.focal_loss(logits, y, gamma=2.0, alpha=alpha)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    @nnx.jit
    def predict(model, x):
        return model(x).argmax(-1)

    def accuracy(rows: np.ndarray) -> str:
        predicted = np.concatenate([np.asarray(predict(model, frames.x[rows[i : i + 256]]))
                                    for i in range(0, len(rows), 256)])
        truth = region_label[rows]
        me = truth < 3
        return f"{(predicted == truth).mean():.3f} all, {(predicted == truth)[me].mean():.3f} me"

    rng = np.random.default_rng(0)
    for epoch in range(args.epochs):
        start, order, seen = time.perf_counter(), rng.permutation(train), []
        for i in range(0, len(order) - BATCH + 1, BATCH):
            rows = order[i : i + BATCH]
            key = jax.random.key(epoch * len(order) + i)
            seen.append(float(step(model, optimizer, frames.x[rows], region_label[rows], key)))
        print(f"epoch {epoch}: loss {np.mean(seen):.4f}; training {accuracy(train)}; held out {accuracy(test)}; "
              f"{time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
