"""Times a whole LOSO run (init, compile, training, prediction) of every fold.

    python benchmarks/fold_parallel.py --impl mer_jax --model rcn_a --variant xia2020_code \
        --features 16 --pool-size 5 --folds 68 --examples 442 --epochs 2 --batch-size 64 [--strategy auto]
    python benchmarks/fold_parallel.py --impl torch ...   # the authors' way: PyTorch, one fold after another
    python benchmarks/fold_parallel.py --compare ...      # both, every strategy, side by side with ratios
    python benchmarks/fold_parallel.py --compare --repeats 2 ...  # each the best of 2 interleaved runs
    python benchmarks/fold_parallel.py --model roi_cnn_lstm --compare --folds 5 --examples 120 --frames 8 --epochs 2
        # Aouayeb et al.'s two stages (configs/roi_cnn_lstm_synthetic.py's sizes): loop, vmap and the folds
        # trained one after another, each alone (no PyTorch reference exists for it)
    python benchmarks/fold_parallel.py --model tlcnn --compare --folds 5 --examples 60 --frames 32 --epochs 1 \
        --batch-size 16            # TLCNN's stages b and c at configs/tlcnn_synthetic.py's sizes (1/16 width)
    python benchmarks/fold_parallel.py --model tlcnn --paper-size ...  # at configs/tlcnn.py's: 80 M parameters

Inputs are random 60x60x3 maps (the speed does not depend on their content),
or for roi_cnn_lstm random clips of `--frames` frames of six regions, for
tlcnn random frames (stage a, on expression images, trains once for every
fold and is left out: TLCNN(E)), with `--examples` clips spread over `--folds`
subjects. The last line of a
single run is `fold_epochs_per_second: X`. `--impl torch` needs the `bench`
extra (`pip install -e .[bench]`) and supports every xia2020_code RCN
(benchmarks/torch_rcn.py).
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import jax
import numpy as np

from mer_jax import method
from mer_jax.core import protocols
from mer_jax.config import base_config, sibling_config
from mer_jax.core.dataset import Dataset
from mer_jax.speed.platform import resolve_strategy, tuning_for
from mer_jax.core.loop import FoldRun, train_folds

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
STAGED = {"roi_cnn_lstm": "roi_cnn_lstm_synthetic", "tlcnn": "tlcnn_synthetic"}  # method -> its CPU-sized config


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", default="mer_jax", choices=("mer_jax", "torch"))
    parser.add_argument("--model", default="rcn")
    parser.add_argument("--variant", default="paper", choices=("paper", "xia2020_code"))
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--pool-size", type=int, default=5)
    parser.add_argument(
        "--recurrent-steps", type=int, default=None, help="default: 3; 2 for xia2020_code rcn, rcn_a, rcn_w"
    )
    parser.add_argument("--folds", type=int, default=68)
    parser.add_argument("--examples", type=int, default=442)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=60)
    parser.add_argument("--frames", type=int, default=8, help="roi_cnn_lstm, tlcnn: frames per clip")
    parser.add_argument("--paper-size", action="store_true", help="tlcnn: configs/tlcnn.py's sizes, not the CPU's")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="tlcnn: model.dtype")
    parser.add_argument("--strategy", default="auto", choices=("auto", "vmap", "loop"))
    parser.add_argument("--steps-per-call", type=int, default=0, help="train.steps_per_call (0: auto)")
    parser.add_argument("--concurrent-folds", type=int, default=0, help="train.concurrent_folds (0: auto)")
    parser.add_argument("--fold-chunk", type=int, default=0, help="train.fold_chunk, folds per vmap group (0: all)")
    parser.add_argument("--compare", action="store_true", help="run torch and mer_jax vmap, loop, auto; print ratios")
    parser.add_argument(
        "--repeats", type=int, default=1, help="--compare: run everything this many times, interleaved; keep each best"
    )
    args = parser.parse_args(argv)
    if args.recurrent_steps is None:
        # The released RclBlock calls its 3x3 conv twice, its shortcut blocks three times.
        args.recurrent_steps = 2 if args.variant == "xia2020_code" and args.model in ("rcn", "rcn_a", "rcn_w") else 3
    return args


def staged_config(args: argparse.Namespace, strategy: str):
    """The method's CPU-sized config (tlcnn `--paper-size`: configs/tlcnn.py) with `--epochs` in every stage,
    `--batch-size` and `--frames`; tlcnn without its stage a."""
    name = "tlcnn" if args.paper_size else STAGED[args.model]
    config = sibling_config(str(CONFIGS / f"{name}.py"), name)
    config.train.update(strategy=strategy, steps_per_call=args.steps_per_call,
                        concurrent_folds=args.concurrent_folds, fold_chunk=args.fold_chunk)
    for stage in config.stages.values():
        stage.train.update(epochs=args.epochs, batch_size=args.batch_size)
    if args.model == "tlcnn":
        config.stages.expressions.enabled = False
        config.data.input_shape = (args.frames, *config.data.input_shape[1:])
        for stage in config.stages.values():
            stage.model.dtype = args.dtype
    return config


def random_dataset(args: argparse.Namespace) -> Dataset:
    rng = np.random.default_rng(0)
    subjects = np.array([f"s{i % args.folds:02d}" for i in range(args.examples)])
    extra = {}
    if args.model in STAGED:
        shape = staged_config(args, "loop").data.input_shape
        x = rng.integers(0, 256, (args.examples, args.frames, *shape[1:]), dtype=np.uint8)
        if args.model == "roi_cnn_lstm":
            extra = {"num_frames": np.full(args.examples, args.frames, np.int32),
                     "region_label": rng.integers(0, 4, (args.examples, 6)).astype(np.int32)}
    else:
        x = rng.normal(size=(args.examples, args.size, args.size, 3)).astype(np.float32)
    return Dataset(
        x=x,
        extra=extra,
        label=rng.integers(0, 3, args.examples).astype(np.int32),
        subject=subjects,
        dataset=np.full(args.examples, "random"),
        sample_id=np.array([f"clip{i:04d}" for i in range(args.examples)]),
        class_names=("negative", "positive", "surprise"),
    )


def run_staged(args: argparse.Namespace, strategy: str, dataset: Dataset) -> dict[str, float]:
    """Both stages of every LOSO fold with `strategy`; `alone`: each fold by itself, one after another."""
    folds = protocols.loso(dataset.subject)
    config = staged_config(args, "loop" if strategy == "alone" else strategy)
    runs = [np.arange(folds.num_folds)] if strategy != "alone" else [[f] for f in range(folds.num_folds)]
    start, compile_s, train_s = time.perf_counter(), 0.0, 0.0
    for fold_ids in runs:
        part = folds.select(np.asarray(fold_ids))
        result = method.train(config, dataset, part, FoldRun(fold_ids=fold_ids, progress=False))
        compile_s, train_s = compile_s + result.compile_seconds, train_s + result.train_seconds
    name = "one fold after another" if strategy == "alone" else result.strategy
    memory = {stage: record.get("device_memory_per_fold_bytes") for stage, record in result.stages.items()}
    print(f"{name}: device memory a fold (XLA's estimate): "
          + ", ".join(f"{stage} {size / 2**20:,.0f} MiB" for stage, size in memory.items() if size), flush=True)
    return timing(args, dataset, name, time.perf_counter() - start, compile_s, train_s)


def run(args: argparse.Namespace, strategy: str, dataset: Dataset) -> dict[str, float]:
    """mer-jax: every fold of the LOSO protocol with `strategy`."""
    if args.model in STAGED:
        return run_staged(args, strategy, dataset)
    config = base_config()
    config.model.update(
        name=args.model, variant=args.variant, features=args.features, pool_size=args.pool_size,
        recurrent_steps=args.recurrent_steps,
    )
    config.data.input_shape = dataset.input_shape
    config.train.update(
        strategy=strategy, epochs=args.epochs, batch_size=args.batch_size, learning_rate=5e-4,
        steps_per_call=args.steps_per_call, concurrent_folds=args.concurrent_folds, fold_chunk=args.fold_chunk,
    )
    folds = protocols.loso(dataset.subject)
    start = time.perf_counter()
    result = train_folds(config, dataset, folds, FoldRun(progress=False))
    total = time.perf_counter() - start
    return timing(args, dataset, result.strategy, total, result.compile_seconds, result.train_seconds)


def run_torch(args: argparse.Namespace, dataset: Dataset) -> dict[str, float]:
    """The authors' protocol in PyTorch: a fresh model per held-out subject, folds one after another."""
    from torch_rcn import train_folds_torch  # the optional `bench` extra

    start = time.perf_counter()
    result = train_folds_torch(
        dataset.x, dataset.label, dataset.subject, name=args.model, features=args.features,
        pool_size=args.pool_size, epochs=args.epochs, batch_size=args.batch_size,
        recurrent_steps=args.recurrent_steps, weight_decay=base_config().train.weight_decay,  # as the mer-jax run
    )
    total = time.perf_counter() - start
    return timing(args, dataset, "torch", total, 0.0, result["phase_seconds"]["train"])


def timing(args, dataset: Dataset, name: str, total: float, compile_s: float, train_s: float) -> dict[str, float]:
    fold_epochs = args.folds * args.epochs
    return {
        "strategy": name,
        "total_s": total,
        "compile_s": compile_s,
        "train_s": train_s,
        "other_s": total - compile_s - train_s,
        "fold_epochs_per_second": fold_epochs / total,
        "fold_examples_per_second": fold_epochs * dataset.num_samples / train_s,
    }


def peak_memory() -> str:
    """The largest memory in use so far in this process: per accelerator, or the process's resident set on CPU."""
    stats = [(device, device.memory_stats()) for device in jax.local_devices()]
    if all(stat and "peak_bytes_in_use" in stat for _, stat in stats):
        return ", ".join(f"{device} {stat['peak_bytes_in_use'] / 2**30:.2f} GiB" for device, stat in stats)
    return f"process resident set {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"  # KiB on Linux


def report(timing: dict[str, float]) -> None:
    print(
        f"{timing['strategy']:>11}: total {timing['total_s']:.1f} s = compile {timing['compile_s']:.1f} + "
        f"train {timing['train_s']:.1f} + init/predict {timing['other_s']:.1f}; "
        f"{timing['fold_examples_per_second']:.0f} fold-examples/s in training",
        flush=True,
    )


def main(argv=None) -> None:
    args = parse_args(argv)
    dataset = random_dataset(args)
    tuning = tuning_for(
        jax.default_backend(), steps_per_call=args.steps_per_call, concurrent_folds=args.concurrent_folds
    )
    if args.model in STAGED:
        compare_staged(args, dataset)
        return
    print(
        f"{args.model} ({args.variant}), M={args.features}, K={args.pool_size}, {args.folds} folds, "
        f"{args.examples} examples {args.size}x{args.size}x3, {args.epochs} epochs, batch {args.batch_size}, "
        f"jax backend {jax.default_backend()} x{jax.device_count()}; steps per call "
        f"{tuning.steps_per_call or 'all'}, concurrent folds {tuning.concurrent_folds}",
        flush=True,
    )
    if not args.compare:
        result = run_torch(args, dataset) if args.impl == "torch" else run(args, args.strategy, dataset)
        report(result)
        print(f"peak memory: {peak_memory()}")
        print(f"fold_epochs_per_second: {result['fold_epochs_per_second']:.3f}")
        return
    timings = {}
    for repeat in range(args.repeats):
        if args.repeats > 1:
            print(f"round {repeat + 1} of {args.repeats}", flush=True)
        for name in ("torch", "loop", "vmap", "auto"):
            timing = run_torch(args, dataset) if name == "torch" else run(args, name, dataset)
            if name == "auto":
                timing["strategy"] = f"auto ({timing['strategy']})"
            report(timing)
            if name not in timings or timing["total_s"] < timings[name]["total_s"]:
                timings[name] = timing
    if args.repeats > 1:
        print(f"best of {args.repeats}:")
        for timing in timings.values():
            report(timing)
    print(f"peak memory over all the runs: {peak_memory()}")
    best = min(timings["vmap"]["total_s"], timings["loop"]["total_s"])
    print(f"loop wall time / vmap wall time: {timings['loop']['total_s'] / timings['vmap']['total_s']:.2f}")
    print(f"torch wall time / mer_jax auto wall time: {timings['torch']['total_s'] / timings['auto']['total_s']:.2f}")
    auto = resolve_strategy("auto", jax.default_backend())
    print(f"auto ({auto}) wall time / faster strategy's: {timings['auto']['total_s'] / best:.2f}")


def compare_staged(args: argparse.Namespace, dataset: Dataset) -> None:
    """roi_cnn_lstm, tlcnn: loop, vmap and one fold after another (`--compare`), or `--strategy` alone."""
    width = staged_config(args, "loop").stages.frames.model.get("width", None)
    print(f"{args.model}{'' if width is None else f' (width {width:g}, {args.dtype})'}, {args.folds} folds, {args.examples} clips of {dataset.input_shape}, {args.epochs} epochs "
          f"per stage, batch {args.batch_size}, jax backend {jax.default_backend()} x{jax.device_count()}", flush=True)
    names = ("alone", "loop", "vmap") if args.compare else (args.strategy,)
    timings = {}
    for name in names:
        timings[name] = run_staged(args, name, dataset)
        report(timings[name])
    print(f"peak memory: {peak_memory()}")
    if args.compare:
        best = min(timings["loop"]["total_s"], timings["vmap"]["total_s"])
        print(f"one fold after another / fold-parallel (faster strategy) wall time: "
              f"{timings['alone']['total_s'] / best:.2f}")
        print(f"loop wall time / vmap wall time: {timings['loop']['total_s'] / timings['vmap']['total_s']:.2f}")


if __name__ == "__main__":
    main()
