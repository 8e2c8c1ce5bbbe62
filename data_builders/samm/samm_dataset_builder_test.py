"""samm built from dummy_data/: 2 clips, the sheet's 13 rows of preamble."""

import tensorflow_datasets as tfds

from data_builders.samm import samm_dataset_builder
from mer_jax.data.clips import testing


class SammTest(testing.ClipBuilderTestCase):
    DATASET_CLASS = samm_dataset_builder.Builder
    SPLITS = {"train": 2}


if __name__ == "__main__":
    tfds.testing.test_main()
