"""The kdef TFDS builder (README.md beside this file)."""

from .kdef_dataset_builder import Builder, Kdef

__all__ = ["Builder", "Kdef"]
