"""How the C library keeps the memory XLA:CPU frees (the `retain_freed_memory` of mer_jax/speed/platform.py)."""

from __future__ import annotations

import ctypes
import functools

# glibc mallopt parameters (malloc.h) and sizes.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_HEAP_RETAIN_BYTES = 1 << 30
_HEAP_MAX_BYTES = 64 << 20  # glibc's HEAP_MAX_SIZE on 64-bit: the size of a thread arena's heap


@functools.cache
def retain_freed_memory() -> bool:
    """Lets glibc keep freed memory for reuse instead of handing it back to the system.

    XLA:CPU allocates the temporary buffers of every call of a compiled program
    afresh (tens of MB for one RCN-A training step). By default glibc serves
    blocks that large with mmap and unmaps them when freed, and deletes a
    thread arena's extra heaps as soon as they are empty, so every call
    page-faulted its temporary memory again (docs/benchmarks.md, "Where the
    time went"). Here the mmap and trim
    thresholds are 1 GiB and the top pad 64 MiB (which keeps empty
    thread-arena heaps), so the memory is reused. Process-wide; a no-op
    (False) where the C library is not glibc.
    """
    mallopt = _mallopt()
    if mallopt is None:
        return False
    settings = (
        (_M_MMAP_THRESHOLD, _HEAP_RETAIN_BYTES),
        (_M_TRIM_THRESHOLD, _HEAP_RETAIN_BYTES),
        (_M_TOP_PAD, _HEAP_MAX_BYTES),
    )
    done = [mallopt(option, value) for option, value in settings]  # every setting, even after a failure
    return all(done)


_BATCH_MMAP_BYTES = 4 << 20


@functools.cache
def release_large_blocks() -> bool:
    """Lets glibc hand blocks of 4 MiB and more back to the system as soon as they are freed.

    With the data kept off the device (`train.data_on_device=False`) every
    call's batches are new host arrays of megabytes. glibc's default mmap
    threshold rises to the size of the first such block freed, after which
    they come from the heap, where freed blocks stayed: a TLCNN stage-c run
    grew every epoch. A fixed threshold (which also stops the rise) kept it
    flat (docs/benchmarks.md, "TLCNN"). Process-wide; it replaces `retain_freed_memory`'s threshold. A
    no-op (False) where the C library is not glibc.
    """
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(_M_MMAP_THRESHOLD, _BATCH_MMAP_BYTES))


def _mallopt():
    """glibc's `mallopt(option, value)`, or None where the C library has none."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return mallopt
