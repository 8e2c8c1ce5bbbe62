"""The smic TFDS builder (README.md beside this file)."""

from .smic_dataset_builder import Builder, Smic

__all__ = ["Builder", "Smic"]
