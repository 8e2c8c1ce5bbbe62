"""kdef built from dummy_data/: 2 people x 2 sessions x 2 expressions (AF, HA) x 2 angles (S, HL), one picture
without a face (AM01NES.JPG, skipped) and one misnamed file (AF01XXS.JPG, skipped and reported)."""

import tensorflow_datasets as tfds

from data_builders.kdef import kdef_dataset_builder
from mer_jax.data.clips import testing


class KdefFrontalTest(testing.ClipBuilderTestCase):
    DATASET_CLASS = kdef_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["frontal"]
    SPLITS = {"train": 8}  # the straight pictures; the faceless AM01NES is skipped


class KdefAllAnglesTest(testing.ClipBuilderTestCase):
    DATASET_CLASS = kdef_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["all_angles"]
    SPLITS = {"train": 16}


if __name__ == "__main__":
    tfds.testing.test_main()
