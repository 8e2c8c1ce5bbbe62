"""rafd built from dummy_data/: 2 models x 2 emotions (fearful, contemptuous) x 2 cameras (090, 045), frontal
gaze, one picture without a face (model 03, skipped) and one misnamed file ('joyful', skipped and reported)."""

import tensorflow_datasets as tfds

from data_builders.rafd import rafd_dataset_builder
from mer_jax.data.clips import testing


class RafdFrontalTest(testing.ClipBuilderTestCase):
    DATASET_CLASS = rafd_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["frontal"]
    SPLITS = {"train": 4}  # camera 090; the faceless model 03 is skipped


class RafdAllAnglesTest(testing.ClipBuilderTestCase):
    DATASET_CLASS = rafd_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["all_angles"]
    SPLITS = {"train": 8}


if __name__ == "__main__":
    tfds.testing.test_main()
