"""Host memory on CPU: XLA:CPU's per-step scratch buffers kept for reuse.

Part of the installed package so that the programs and library users
(`pixel_models.load`) share it; it changes nothing on GPU or TPU.
"""

import ctypes

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def keep_host_memory(one_arena: bool = False) -> bool:
    """Let XLA:CPU reuse its host memory from one step to the next (glibc).

    XLA:CPU mallocs each execution's scratch buffer (hundreds of MB) from a
    worker thread. glibc serves a block that large from a fresh mmap and
    unmaps it on free, so every step page-faults all of it again
    (docs/benchmarks.md, "Host memory", has the measurements). No mmap and a
    2 GiB trim threshold keep freed blocks in the heap for the next step.

    `one_arena` also serves every thread from the main arena. Models whose
    CPU steps run unchunked (the PixelRNNs' row scans) need it: glibc unmaps
    a worker thread's arena heap whenever all of it is free, and their steps
    then page-fault many times as often. The chunked convolutional models
    lose with it: their many small allocations queue on the one arena's
    lock. Call it before JAX's first computation (worker threads choose
    their arena then); the programs do (`experiments.program.setup`), and so
    does `pixel_models.load`.
    Accelerator memory is not affected; on another C library this does
    nothing. Returns whether glibc took the settings.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    settings = [(_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1)]
    if one_arena:
        settings.append((_M_ARENA_MAX, 1))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)
