"""The core: trains any fold program and names no paper.

The data set container, protocols, the fold program and its runners, the training loop, staged
training's shared parts, checkpoints, multi-process runs, metrics, seeds and the report.
"""
