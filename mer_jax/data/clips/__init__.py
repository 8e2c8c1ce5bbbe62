"""From raw micro-expression clips to stored arrays: the library the TFDS builders in ``data_builders/`` call.

- :mod:`~mer_jax.data.clips.layouts`: each dataset's on-disk layout (CASME II,
  SAMM, SMIC), read by the builders and written by :mod:`mer_jax.data.synth`.
- :mod:`~mer_jax.data.clips.materialize`: one clip's frames (files or arrays in
  memory) -> the array a builder config stores (:class:`StoredVariant`).
- :mod:`~mer_jax.data.clips.builder`: the TFDS builder base class, its builder
  configs and features, the worker pool.
- :mod:`~mer_jax.data.clips.build`: ``mer-jax build`` (:func:`build`,
  :func:`format_summary`).

Importing this package is light (no TensorFlow Datasets, JAX or OpenCV); import
the module you need.
"""

from mer_jax.data.clips.errors import ClipError

__all__ = ["ClipError"]
