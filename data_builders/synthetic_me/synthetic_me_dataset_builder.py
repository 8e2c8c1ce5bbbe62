"""A synthetic MEGC2019-like composite, generated at build time: no licensed data needed (README.md)."""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from mer_jax.clips.builder import ClipDatasetBuilder


class SyntheticMe(ClipDatasetBuilder):
    """The composite of :func:`mer_jax.synth.write_synthetic_composite`, read as megc2019 reads the real one.

    The raw clips are written once under ``<data_dir>/downloads/synthetic_me_raw``
    (every config reuses them), then built exactly as the real datasets are.
    ``SYNTH_OPTIONS`` are the generator's keyword arguments (default: the full
    composite, 442 MEGC2019 clips of 68 subjects).
    """

    DATASETS = ("smic", "casme2", "samm")
    MEGC2019_ONLY = True
    SYNTH_OPTIONS: dict = {"seed": 0}

    def _raw_root(self, dl_manager: tfds.download.DownloadManager) -> Path:
        from mer_jax.synth import write_synthetic_composite

        root = Path(dl_manager.download_dir) / "synthetic_me_raw"
        if not (root / "HS").is_dir():
            write_synthetic_composite(root, **self.SYNTH_OPTIONS)
        return self._raw_root_from(root)


Builder = SyntheticMe  # the name `tfds new` gives a builder class
