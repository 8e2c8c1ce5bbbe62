"""The rafd TFDS builder (README.md beside this file)."""

from .rafd_dataset_builder import Builder, Rafd

__all__ = ["Builder", "Rafd"]
