"""The casme2 TFDS builder (README.md beside this file)."""

from .casme2_dataset_builder import Builder, Casme2

__all__ = ["Builder", "Casme2"]
