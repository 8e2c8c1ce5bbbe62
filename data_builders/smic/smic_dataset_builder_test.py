"""smic built from dummy_data/: 2 clips, no apex (spotted); every config, in smaller form."""

import tensorflow_datasets as tfds

from data_builders.smic import smic_dataset_builder
from mer_jax.data.clips import testing


class SmicTest(testing.ClipBuilderTestCase):
    DATASET_CLASS = smic_dataset_builder.Builder
    SPLITS = {"train": 2}
    BUILDER_CONFIG_NAMES_TO_TEST = testing.SMALL_CONFIGS


if __name__ == "__main__":
    tfds.testing.test_main()
