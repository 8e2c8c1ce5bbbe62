"""What `train.strategy=auto`'s timing costs a first run: the quick start with `auto` against the same run with
`loop` forced, side by side, each in a fresh process with empty caches (strategy timings and compiled programs).

    python benchmarks/strategy_timing_cost.py [--epochs 40]

Prints both wall times and the timing's share of the forced run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(strategy: str, epochs: int) -> float:
    """Seconds of `mer-jax train --config configs/quickstart.py` with `strategy`, every cache empty."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "XDG_CACHE_HOME": f"{folder}/cache"}
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
        command = [
            sys.executable, "-m", "mer_jax.cli", "train", "--config", str(REPO / "configs" / "quickstart.py"),
            "--workdir", f"{folder}/run", f"--config.train.strategy={strategy}", f"--config.train.epochs={epochs}",
        ]
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40, help="the quick start's 40 by default")
    args = parser.parse_args()
    forced = run("loop", args.epochs)
    timed = run("auto", args.epochs)
    print(f"loop forced: {forced:.1f} s; auto (timing both strategies first): {timed:.1f} s")
    print(f"the timing's cost: {timed - forced:.1f} s, {100 * (timed - forced) / forced:.1f}% of the forced run")


if __name__ == "__main__":
    main()
