"""What one clip costs a build: seconds (wall and CPU) and stored bytes per clip of a builder config.

    python benchmarks/build_cost.py --composite DIR [--config flow_strcn_g] [--clips 4] [--dataset casme2]

Runs the build's own per-clip step (:func:`mer_jax.data.clips.materialize.materialize`:
frames read, faces aligned and cropped, magnified, flow or normalisation) on the
first clips of a composite written by `mer-jax synth`, one after another in
this process, and prints each clip's seconds and its ``x`` as the build stores
it (flow as float16, frames as ZLIB-compressed uint8). The first clip also
compiles the magnification: the mean leaves it out. CPU seconds count every
thread of the process, and unlike wall seconds hardly move with other load on
the machine.
"""

from __future__ import annotations

import argparse
import inspect
import time
import zlib
from pathlib import Path

import numpy as np

from mer_jax.data.clips import materialize as materialize_lib
from mer_jax.data.clips.builder import config_named
from mer_jax.data.clips.layouts import LAYOUTS


def stored_bytes(x: np.ndarray) -> int:
    """Bytes of ``x`` as a build stores it: magnified flow as float16, uint8 frames ZLIB-compressed."""
    if x.dtype == np.uint8:
        return len(zlib.compress(x.tobytes()))
    return x.astype(np.float16).nbytes


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--composite", required=True, help="a folder written by `mer-jax synth`")
    parser.add_argument("--config", default="flow_strcn_g", help="builder config (default flow_strcn_g)")
    parser.add_argument("--dataset", default="casme2", help="casme2, samm or smic (default casme2)")
    parser.add_argument("--clips", type=int, default=4, help="clips timed (default 4)")
    args = parser.parse_args(argv)
    root = Path(args.composite)
    variant = config_named(args.config).variant
    layout = LAYOUTS[args.dataset]
    clips, _ = layout.clips(root)
    seeded = "seed" in inspect.signature(materialize_lib.materialize).parameters  # older code draws nothing
    print(f"{args.dataset}/{args.config}: {variant}")
    seconds = []
    for clip in clips[: args.clips]:
        paths = layout.frame_paths(str(root), clip)
        apex, _ = materialize_lib.find_apex(paths, clip.apex, clip.onset)
        wall, cpu = time.perf_counter(), time.process_time()
        x, _ = materialize_lib.materialize(paths, apex, variant, **({"seed": 0} if seeded else {}))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        seconds.append((wall, cpu))
        print(
            f"  {clip.subject}/{clip.clip}: onset..apex {apex + 1} of {len(paths)} frames; x {x.shape}, "
            f"{stored_bytes(x) / 2**20:.1f} MiB stored; {wall:.1f} s wall, {cpu:.1f} s CPU",
            flush=True,
        )
    wall, cpu = np.mean(seconds[1:] or seconds, axis=0)
    print(f"per clip (after the first): {wall:.1f} s wall, {cpu:.1f} s CPU")


if __name__ == "__main__":
    main()
