"""TLCNN of Wang et al. (Neurocomputing 2018) and its three transfer stages."""

MODEL_MODULES = ("tlcnn",)
