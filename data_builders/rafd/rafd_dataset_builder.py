"""Radboud Faces Database (Langner et al., Cognition and Emotion 2010): 67 models, 8 expressions, 3 gazes,
5 camera angles (README.md)."""

from mer_jax.data.images.builder import ExpressionImageBuilder, image_configs
from mer_jax.data.images.layouts import IMAGE_LAYOUTS


class Rafd(ExpressionImageBuilder):
    """Radboud's face crops with eq. 11 labels; ``frontal`` (default): camera 090, the paper's subset."""

    LAYOUT = "rafd"
    BUILDER_CONFIGS = image_configs("rafd")
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "The Radboud Faces Database is licensed by Radboud University Nijmegen (rafd.socsci.ru.nl), for "
        f"scientific research. Unpack it so that --manual_dir holds:\n{IMAGE_LAYOUTS['rafd'].description}\n"
        "(any sub-folders of RaFD/ are searched; see docs/data.md, Expression images.)"
    )


Builder = Rafd  # the name `tfds new` gives a builder class
