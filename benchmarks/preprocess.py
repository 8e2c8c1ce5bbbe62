"""Preprocessing throughput side by side: onset-apex flow per method, and batched magnification.

    python benchmarks/preprocess.py [--crop 180 160] [--clips 20] [--frames 60]

Flow runs on pairs cut from skimage's astronaut face (a real photograph
shipped inside scikit-image) with a small shift; magnification on random clips.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from skimage import color, data, transform

from mer_jax.data.preprocess.flow import METHODS, flow_map_from_frames
from mer_jax.data.preprocess.magnify import magnify


def face_pair(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    face = color.rgb2gray(data.astronaut()[20:200, 140:300])
    onset = transform.resize(face, (height, width), anti_aliasing=True)
    apex = np.roll(onset, 1, axis=1)
    return (onset * 255).astype(np.uint8), (apex * 255).astype(np.uint8)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crop", type=int, nargs=2, default=(180, 160), help="face crop height width")
    parser.add_argument("--clips", type=int, default=20, help="clips per measurement")
    parser.add_argument("--frames", type=int, default=60, help="frames per clip for magnification")
    parser.add_argument("--alphas", type=int, default=10, help="magnification factors per clip (Xia et al., TMM 2019: 5..14)")
    args = parser.parse_args(argv)
    height, width = args.crop
    onset, apex = face_pair(height, width)
    print(f"flow onset->apex at {height}x{width}, to a 60x60x3 flow map; jax backend {jax.default_backend()}")
    rates = {}
    for method in METHODS:
        flow_map_from_frames(onset, apex, method=method)
        start = time.perf_counter()
        for _ in range(args.clips):
            flow_map_from_frames(onset, apex, method=method)
        rates[method] = args.clips / (time.perf_counter() - start)
        print(f"  {method:9s} {rates[method]:8.1f} clips/s", flush=True)
    print(f"  dis / tvl1: {rates['dis'] / rates['tvl1']:.0f}x, farneback / tvl1: {rates['farneback'] / rates['tvl1']:.0f}x")

    clips = np.random.default_rng(0).random((args.alphas, args.frames, 64, 48, 3), dtype=np.float32)
    alphas = np.linspace(5, 14, args.alphas, dtype=np.float32)
    jax.block_until_ready(magnify(clips, alphas))
    start = time.perf_counter()
    jax.block_until_ready(magnify(clips, alphas))
    seconds = time.perf_counter() - start
    print(
        f"magnification, {args.alphas} alphas x {args.frames} frames of 64x48x3 in one batch: {seconds:.2f} s, "
        f"{args.alphas * args.frames / seconds:.0f} frames/s"
    )


if __name__ == "__main__":
    main()
