"""The megc2019 TFDS builder (README.md beside this file)."""

from .megc2019_dataset_builder import Builder, Megc2019

__all__ = ["Builder", "Megc2019"]
