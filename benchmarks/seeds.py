"""N seeds of every fold in one run (`train.num_seeds=N`) against N separate runs, side by side.

    python benchmarks/seeds.py --seeds 5 --epochs 10

Both train configs/quickstart.py (18 LOSO folds of the built-in synthetic maps)
for --epochs epochs; the one run trains seeds 0..N-1, the separate runs one seed
each. Prints both wall times (compile included) and their ratio, and checks that
the scores agree seed by seed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mer_jax.config import sibling_config
from mer_jax.train import train_and_evaluate

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "quickstart.py"


def timed_run(num_seeds: int, seed: int, epochs: int) -> tuple[float, dict]:
    config = sibling_config(str(CONFIG), "quickstart")
    config.train.update(num_seeds=num_seeds, seed=seed, epochs=epochs)
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        report = train_and_evaluate(config, workdir, progress=False)
        return time.perf_counter() - start, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    together, report = timed_run(args.seeds, 0, args.epochs)
    print(f"one run of {args.seeds} seeds: {together:.1f} s", flush=True)
    separate = 0.0
    for seed in range(args.seeds):
        seconds, alone = timed_run(1, seed, args.epochs)
        separate += seconds
        if alone["per_seed"][0] != report["per_seed"][seed]:
            raise SystemExit(f"seed {seed} scores differ: {alone['per_seed'][0]} vs {report['per_seed'][seed]}")
    print(f"{args.seeds} separate runs: {separate:.1f} s (scores equal seed by seed)")
    print(f"separate runs / one run: {separate / together:.2f}")


if __name__ == "__main__":
    main()
