"""A synthetic MEGC2019-like composite, generated at build time: no licensed data needed (README.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import tensorflow_datasets as tfds

from mer_jax.data.clips.builder import ClipDatasetBuilder, exclusive_lock


class SyntheticMe(ClipDatasetBuilder):
    """The composite of :func:`mer_jax.data.synth.write_synthetic_composite`, read as megc2019 reads the real one.

    The raw clips are written once under ``<data_dir>/downloads/synthetic_me_raw``
    (every config reuses them; a build killed while writing them leaves only a
    temporary folder, written again by the next build), then built exactly as
    the real datasets are.
    ``SYNTH_OPTIONS`` are the generator's keyword arguments (default: the full
    composite, 442 MEGC2019 clips of 68 subjects).
    """

    DATASETS = ("smic", "casme2", "samm")
    MEGC2019_ONLY = True
    SYNTH_OPTIONS: dict = {"seed": 0}

    def _raw_root(self, dl_manager: tfds.download.DownloadManager) -> Path:
        root = Path(dl_manager.download_dir) / "synthetic_me_raw"
        if not root.is_dir():
            _write_whole(root, self.SYNTH_OPTIONS)
        return self._raw_root_from(root)


def _write_whole(root: Path, options: dict) -> None:
    """Writes the composite into ``root`` whole or not at all: into a temporary folder renamed when done,
    under a lock, so a build killed while writing leaves nothing a later build would take as finished."""
    from mer_jax.data.synth import write_synthetic_composite

    with exclusive_lock(root.parent):
        if root.is_dir():  # written by another build while this one waited
            return
        partial = root.with_name(f"incomplete.{root.name}")
        shutil.rmtree(partial, ignore_errors=True)  # left by a killed build
        write_synthetic_composite(partial, **options)
        partial.rename(root)


Builder = SyntheticMe  # the name `tfds new` gives a builder class
