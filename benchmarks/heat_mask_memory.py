"""Host memory and time of STRCN-A's per-fold mask (data.mask=per_fold) at the real data sets' sizes.

    python benchmarks/heat_mask_memory.py [--dtype float32|uint8]

For CASME II, SAMM and SMIC (clip and subject counts of Xia et al., TMM 2019,
sec. IV-B; the build's 30 x 48 x 64 x 3 frames), random frames stand in for a
`strcn_a` build as `mer_jax.data.builds.load` keeps them under per_fold (one alpha);
:func:`mer_jax.methods.strcn.heat_mask.per_fold` then stacks one masked copy per LOSO fold and
per LOVO fold (20: 5% held out). Prints the copies' bytes, the time to make
them and the process's peak resident memory (docs/reproduction.md).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from mer_jax.core import protocols
from mer_jax.methods.strcn import heat_mask
from mer_jax.core.dataset import Dataset

# (clips, subjects) as sec. IV-B gives them.
DATASETS = {"casme2": (256, 26), "samm": (159, 29), "smic": (164, 16)}
FRAMES = (30, 48, 64, 3)


def frames_dataset(name: str, clips: int, subjects: int, dtype: str, rng: np.random.Generator) -> Dataset:
    x = rng.integers(0, 256, size=(clips, *FRAMES), dtype=np.uint8)
    x = x if dtype == "uint8" else x.astype(np.float32) / 255
    subject = np.array([f"{name}/sub{i % subjects:02d}" for i in range(clips)])
    return Dataset(
        x=x, label=(np.arange(clips) % 3).astype(np.int32), subject=subject, dataset=np.full(clips, name),
        sample_id=np.array([f"{name}/clip{i:03d}" for i in range(clips)]), class_names=("a", "b", "c"),
        extra={heat_mask.HEAT: rng.uniform(size=(clips, *FRAMES[1:3])).astype(np.float32)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtype", default="float32", choices=("float32", "uint8"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for name, (clips, subjects) in DATASETS.items():
        dataset = frames_dataset(name, clips, subjects, args.dtype, rng)
        for protocol, folds in (("loso", protocols.loso(dataset.subject)), ("lovo", protocols.lovo(clips))):
            start = time.perf_counter()
            stacked, _, _ = heat_mask.per_fold(dataset, folds, 0.30)
            seconds = time.perf_counter() - start
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
            print(
                f"{name} {protocol}: {folds.num_folds} folds x {clips} clips, "
                f"copies {stacked.x.nbytes / 2**30:.2f} GiB ({args.dtype}), frames {dataset.x.nbytes / 2**30:.2f} GiB, "
                f"{seconds:.1f} s, process peak {peak:.2f} GiB"
            )
            del stacked


if __name__ == "__main__":
    main()
