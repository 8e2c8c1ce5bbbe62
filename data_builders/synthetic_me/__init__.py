"""The synthetic_me TFDS builder (README.md beside this file)."""

from .synthetic_me_dataset_builder import Builder, SyntheticMe

__all__ = ["Builder", "SyntheticMe"]
