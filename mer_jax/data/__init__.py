"""The data side: clip and expression-image builders, preprocessing, label maps and coding sheets, the
synthetic composite (synth/), toy flow maps, and reading builds into a Dataset (builds.py)."""
