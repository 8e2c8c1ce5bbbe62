"""The shallow RCNs of Xia et al. (TIP 2020): RCN-A/S/W/P/C/F and the searched architecture."""

MODEL_MODULES = ("rcn", "rcn_searched")
