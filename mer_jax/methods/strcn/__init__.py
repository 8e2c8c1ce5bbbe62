"""STRCN-A and STRCN-G of Xia et al. (TMM 2019), with the heat mask (eq. 4) and the x50 augmentation."""

from mer_jax.methods.strcn.inputs import load, training_inputs

MODEL_MODULES = ("strcn",)
__all__ = ["MODEL_MODULES", "load", "training_inputs"]
