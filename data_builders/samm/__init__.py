"""The samm TFDS builder (README.md beside this file)."""

from .samm_dataset_builder import Builder, Samm

__all__ = ["Builder", "Samm"]
