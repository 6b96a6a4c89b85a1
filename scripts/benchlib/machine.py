"""The machine: its float32 GEMM peak (the roofline of ``frac_peak``), memory and identity."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from snntrain.hostenv import cpu_flags, cpu_model


def gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Float32 GEMM rate of numpy's BLAS (best of ``repeats`` after one warm-up)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool, page faults
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def device_gemm_gflops(n: int = 4096, repeats: int = 5) -> float:
    """Float32 GEMM rate of JAX's default device (used for ``frac_peak`` on accelerators)."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    jax.block_until_ready(f(a))
    best = min(_timed(lambda: jax.block_until_ready(f(a))) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (process-wide, never decreases)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_info() -> dict[str, Any]:
    import jax

    d = jax.devices()[0]
    env = {
        k: os.environ[k]
        for k in (
            "OPENBLAS_CORETYPE",
            "XLA_FLAGS",
            "GLIBC_TUNABLES",
            "JAX_PLATFORMS",
            "OMP_NUM_THREADS",
        )
        if k in os.environ
    }
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "platform": d.platform,
        "device_kind": d.device_kind,
        "devices": jax.device_count(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "env": env,
    }
