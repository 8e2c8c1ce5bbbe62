"""Expression images for TLCNN's first transfer step: KDEF and Radboud (docs/data.md, Expression images).

Wang et al., Neurocomputing 2018, sec. 4.1 pre-trains its frame CNN on face
crops from KDEF, MMI, Radboud and TFEID in the 9-class label space of eq. 11;
we build KDEF (Lundqvist et al., 1998) and Radboud (Langner et al., Cognition and
Emotion 2010):

- :mod:`~mer_jax.data.images.labels`: eq. 11's classes and the one table mapping
  each data set's emotion codes onto them;
- :mod:`~mer_jax.data.images.layouts`: the data sets' file-name parsers;
- :mod:`~mer_jax.data.images.crop`: the face crop (68 points' box, 240 x 320);
- :mod:`~mer_jax.data.images.builder`: the TFDS builder base (``data_builders/kdef``,
  ``data_builders/rafd``);
- :func:`load_expression_images`: builds -> :class:`mer_jax.core.dataset.Dataset`.
"""

from mer_jax.data.images.labels import EQ11_CLASSES, LABEL_MAP, eq11_class
from mer_jax.data.images.load import load_expression_images

__all__ = ["EQ11_CLASSES", "LABEL_MAP", "eq11_class", "load_expression_images"]
