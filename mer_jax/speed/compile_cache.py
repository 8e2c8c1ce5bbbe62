"""JAX's persistent compilation cache, on for every `mer-jax` command.

A run compiles the same fold programs again whenever it starts: after a
crash (resume), for the next seed or configuration with the same shapes, in
`train.strategy=auto`'s timing, and in every test. XLA's compiled programs
are kept on disk and reused when the same program is compiled again
(docs/benchmarks.md measures a two-stage run's compile time on its first
and second start). The folder is ``$JAX_COMPILATION_CACHE_DIR`` if set,
else ``$XDG_CACHE_HOME/mer_jax/jax_compilation`` (``~/.cache`` by default).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

MIN_COMPILE_SECONDS = 0.5  # programs that compile faster are not worth a disk write


def default_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mer_jax" / "jax_compilation"


def enable(directory: str | os.PathLike | None = None) -> Path:
    """Turns the persistent compilation cache on in `directory` (default: see the module); returns the folder."""
    folder = Path(directory or os.environ.get("JAX_COMPILATION_CACHE_DIR") or default_dir()).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return folder
