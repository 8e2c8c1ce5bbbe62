"""Every test process, and the processes tests start (CLI runs, notebooks, distributed workers), shares one
JAX compilation cache for the session (mer_jax/speed/compile_cache.py): a program compiled by one test is read
back by the next that compiles it, instead of being compiled again."""

import os
import tempfile

os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="mer_jax_test_compilation_"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # every program: tests compile many small ones again
