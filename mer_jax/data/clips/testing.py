"""Test helpers for the builders in ``data_builders/`` (imports TFDS's testing module, hence TensorFlow)."""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from mer_jax.data.clips.builder import ClipConfig, config_named


class ClipBuilderTestCase(tfds.testing.DatasetBuilderTestCase):
    """tfds.testing.DatasetBuilderTestCase for a :class:`~mer_jax.data.clips.builder.ClipDatasetBuilder`.

    A subclass sets ``DATASET_CLASS`` and ``SPLITS``; the raw clips are the
    builder folder's ``dummy_data/`` (TFDS's default), read as the manual
    folder (and as the download folder, for synthetic_me). Import this module,
    not the class, into a test file: pytest collects every TestCase it finds
    there.
    """

    MOCK_OUT_FORBIDDEN_OS_FUNCTIONS = False  # OpenCV and openpyxl read the files themselves
    BUILDER_CONFIG_NAMES_TO_TEST = ["flow60"]

    def _make_builder(self, config=None):
        # TFDS's checks read through tf.data, which array_record (the default) does not offer;
        # tests/test_data_builders.py reads array_record.
        return self.dataset_class(data_dir=self.tmp_dir, config=config, file_format="tfrecord")


def smaller_config(name: str, **changes) -> ClipConfig:
    """The shipped config ``name`` with its variant's fields changed (fewer alphas, smaller maps, fewer
    frames): the same code path, in seconds. Named ``<name>_small``."""
    config = config_named(name)
    return dataclasses.replace(config, name=f"{name}_small", variant=dataclasses.replace(config.variant, **changes))


# Every config's code path (mer_jax.data.clips.materialize) is the same for every
# dataset, so one builder (SMIC: no apex, so spotting too) runs all of them in
# this smaller form; every builder runs flow60 as shipped.
SMALL_CONFIGS = [
    "flow60",
    smaller_config("flow_strcn_g", size=(49, 60), alphas=(8.0, 12.0)),
    smaller_config("strcn_a", size=(24, 32), alphas=(8.0,), num_frames=6),
    smaller_config("frames", size=(61, 75), num_frames=8),
    "regions",  # as shipped: no flow, already fast; read here through tf.data (its frame count varies)
]
