"""KDEF (Lundqvist et al., 1998): 4,900 pictures of 70 people, 7 expressions, 5 angles, 2 sessions (README.md)."""

from mer_jax.data.images.builder import ExpressionImageBuilder, image_configs
from mer_jax.data.images.layouts import IMAGE_LAYOUTS


class Kdef(ExpressionImageBuilder):
    """KDEF's face crops with eq. 11 labels; ``frontal`` (default): the straight angle, the paper's subset."""

    LAYOUT = "kdef"
    BUILDER_CONFIGS = image_configs("kdef")
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "KDEF is licensed by Karolinska Institutet (kdef.se), for non-commercial research. Unpack it so that "
        f"--manual_dir holds:\n{IMAGE_LAYOUTS['kdef'].description}\n(See docs/data.md, Expression images.)"
    )


Builder = Kdef  # the name `tfds new` gives a builder class
