"""Peak host memory of TLCNN's frames: loaded into memory, or read through a memory map and sent to the
device a call's batches at a time (data.memmap, train.data_on_device; docs/benchmarks.md).

    python benchmarks/tlcnn_host_memory.py --data_dir runs/tfds [--name megc2019/tim32] [--shrink 1]

Each case runs in a process of its own, which samples its resident memory
every 20 ms: RssAnon (anonymous pages, which the system cannot drop) and
VmRSS (with the file-backed pages of a memory map, which it can):
  load               data.load into memory
  memmap             data.load with data.memmap (decoding into <data_dir>/decoded/ if no earlier run did)
  train_in_memory    data.load into memory, then one epoch of TLCNN's stage c (configs/tlcnn.py's layers at
                     --width, every fold of its 5) with the data on the device
  train_memmap       data.memmap, then the same epoch with train.data_on_device=False
On CPU the device's memory is the host's, so the training cases show what a
device holds too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

CASES = ("load", "memmap", "train_in_memory", "train_memmap")
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tlcnn.py"


class MemorySampler(threading.Thread):
    """The largest RssAnon and VmRSS of this process (kB in /proc/self/status) seen every `interval` seconds."""

    def __init__(self, interval: float = 0.02):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = {"RssAnon": 0, "VmRSS": 0}
        self.running = True

    def sample(self) -> None:
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in self.peak:
                self.peak[name] = max(self.peak[name], int(value.split()[0]) * 1024)

    def run(self) -> None:
        while self.running:
            self.sample()
            time.sleep(self.interval)

    def stop(self) -> dict[str, int]:
        self.running = False
        self.join()
        self.sample()
        return self.peak


def run_case(args: argparse.Namespace) -> dict:
    """One case in this process: its peak memory and what it loaded."""
    sampler = MemorySampler()
    sampler.start()
    from mer_jax import method
    from mer_jax.core import protocols
    from mer_jax.core.loop import FoldRun
    from mer_jax.config import sibling_config
    from mer_jax.data.builds import load

    config = sibling_config(str(CONFIG), "tlcnn")
    config.data.update(name=args.name, data_dir=args.data_dir, labels="megc2019", num_classes=3,
                       shrink=args.shrink, memmap=args.case in ("memmap", "train_memmap"))
    start = time.perf_counter()
    dataset = load(config.data)
    result = {"case": args.case, "x_bytes": int(dataset.x.nbytes), "x_shape": list(dataset.x.shape),
              "load_seconds": time.perf_counter() - start}
    if args.case.startswith("train"):
        config.data.input_shape = dataset.input_shape
        config.protocol.name = "subject_kfold"
        config.stages.expressions.enabled = config.stages.frames.enabled = False  # stage c alone
        config.stages.clips.model.update(width=args.width, crop=args.crop)
        config.stages.clips.train.epochs = 1
        config.train.data_on_device = args.case == "train_in_memory"
        config.train.strategy = args.strategy
        folds = protocols.folds_of_config(config.protocol, subjects=dataset.subject, labels=dataset.label)
        start = time.perf_counter()
        method.train(config, dataset, folds, FoldRun(progress=False))
        result["train_seconds"] = time.perf_counter() - start
    result.update({f"peak_{name}_bytes": value for name, value in sampler.stop().items()})
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--name", default="megc2019/tim32")
    parser.add_argument("--shrink", type=int, default=1)
    parser.add_argument("--width", type=float, default=1 / 16, help="model.width of the training cases")
    parser.add_argument("--crop", type=int, default=227, help="model.crop of the training cases")
    parser.add_argument("--strategy", default="loop", choices=("auto", "loop", "vmap"), help="train.strategy")
    parser.add_argument("--case", choices=CASES, help="run this case here (the default runs each in a subprocess)")
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args)), flush=True)
        return
    gib = 2**30
    print(f"{args.name} under {args.data_dir}, shrink {args.shrink}", flush=True)
    for case in CASES:
        command = [sys.executable, __file__, *(argv or sys.argv[1:]), "--case", case]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        result = json.loads(out)
        extra = f", stage c epoch {result['train_seconds']:.0f} s" if "train_seconds" in result else ""
        print(
            f"{case:>16}: x {result['x_bytes'] / gib:.2f} GiB {tuple(result['x_shape'])}; peak anonymous "
            f"{result['peak_RssAnon_bytes'] / gib:.2f} GiB, peak resident {result['peak_VmRSS_bytes'] / gib:.2f} GiB; "
            f"load {result['load_seconds']:.0f} s{extra}",
            flush=True,
        )


if __name__ == "__main__":
    main()
