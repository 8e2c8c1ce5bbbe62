"""Times a whole LOSO run (init, compile, training, prediction) of every fold, per strategy.

    python benchmarks/fold_parallel.py --model rcn --folds 68 --examples 442 --epochs 2 --batch-size 64
    python benchmarks/fold_parallel.py --compare ...   # vmap, loop and auto side by side, with ratios

Inputs are random 60x60x3 maps (the speed does not depend on their content),
with `--examples` clips spread over `--folds` subjects. The last line of a
single run is `fold_epochs_per_second: X`.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from mer_jax import protocols
from mer_jax.config import base_config
from mer_jax.data import Dataset
from mer_jax.train import resolve_strategy, train_folds


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="rcn")
    parser.add_argument("--variant", default="paper", choices=("paper", "xia2020_code"))
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--pool-size", type=int, default=5)
    parser.add_argument("--recurrent-steps", type=int, default=3)
    parser.add_argument("--folds", type=int, default=68)
    parser.add_argument("--examples", type=int, default=442)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=60)
    parser.add_argument("--strategy", default="auto", choices=("auto", "vmap", "loop"))
    parser.add_argument("--compare", action="store_true", help="run vmap, loop and auto and print the ratios")
    return parser.parse_args(argv)


def random_dataset(args: argparse.Namespace) -> Dataset:
    rng = np.random.default_rng(0)
    subjects = np.array([f"s{i % args.folds:02d}" for i in range(args.examples)])
    return Dataset(
        x=rng.normal(size=(args.examples, args.size, args.size, 3)).astype(np.float32),
        label=rng.integers(0, 3, args.examples).astype(np.int32),
        subject=subjects,
        dataset=np.full(args.examples, "random"),
        sample_id=np.array([f"clip{i:04d}" for i in range(args.examples)]),
        class_names=("negative", "positive", "surprise"),
    )


def run(args: argparse.Namespace, strategy: str, dataset: Dataset) -> dict[str, float]:
    config = base_config()
    config.model.update(
        name=args.model, variant=args.variant, features=args.features, pool_size=args.pool_size,
        recurrent_steps=args.recurrent_steps,
    )
    config.data.input_shape = dataset.input_shape
    config.train.update(strategy=strategy, epochs=args.epochs, batch_size=args.batch_size, learning_rate=1e-3)
    folds = protocols.loso(dataset.subject)
    start = time.perf_counter()
    result = train_folds(config, dataset, folds, progress=False)
    total = time.perf_counter() - start
    fold_epochs = folds.num_folds * args.epochs
    return {
        "strategy": result.strategy,
        "total_s": total,
        "compile_s": result.compile_seconds,
        "train_s": result.train_seconds,
        "other_s": total - result.compile_seconds - result.train_seconds,
        "fold_epochs_per_second": fold_epochs / total,
        "fold_examples_per_second": fold_epochs * dataset.num_samples / result.train_seconds,
    }


def report(timing: dict[str, float]) -> None:
    print(
        f"{timing['strategy']:>5}: total {timing['total_s']:.1f} s = compile {timing['compile_s']:.1f} + "
        f"train {timing['train_s']:.1f} + init/predict {timing['other_s']:.1f}; "
        f"{timing['fold_examples_per_second']:.0f} fold-examples/s in training"
    )


def main(argv=None) -> None:
    args = parse_args(argv)
    dataset = random_dataset(args)
    print(
        f"{args.model} ({args.variant}), M={args.features}, K={args.pool_size}, {args.folds} folds, "
        f"{args.examples} examples {args.size}x{args.size}x3, {args.epochs} epochs, batch {args.batch_size}, "
        f"backend {jax.default_backend()} x{jax.device_count()}"
    )
    if not args.compare:
        timing = run(args, args.strategy, dataset)
        report(timing)
        print(f"fold_epochs_per_second: {timing['fold_epochs_per_second']:.3f}")
        return
    timings = {name: run(args, name, dataset) for name in ("vmap", "loop", "auto")}
    for timing in timings.values():
        report(timing)
    best = min(timings["vmap"]["total_s"], timings["loop"]["total_s"])
    print(f"vmap/loop speed ratio (wall time loop / vmap): {timings['loop']['total_s'] / timings['vmap']['total_s']:.2f}")
    print(
        f"auto picked {resolve_strategy('auto')}: {timings['auto']['total_s'] / best:.2f}x the faster strategy's wall time"
    )


if __name__ == "__main__":
    main()
