"""The six-region CNN+LSTM of Aouayeb et al. (MLSP 2019), its "not me" region labels and its two stages."""

from mer_jax.methods.six_regions.inputs import load

MODEL_MODULES = ("roi_cnn_lstm",)
__all__ = ["MODEL_MODULES", "load"]
