"""Helpers that run snntrain in subprocesses (fresh JAX with its own device count)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def env(devices: int | None = 1) -> dict[str, str]:
    """The environment of a worker with ``devices`` virtual CPU devices (None: as JAX and
    snntrain choose, no device count in ``XLA_FLAGS``)."""
    e = dict(os.environ)
    e.update(JAX_PLATFORMS="cpu", WANDB_SILENT="true", HYDRA_FULL_ERROR="0",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    if devices is None:
        del e["XLA_FLAGS"]
        e.pop("SNNTRAIN_CPU_DEVICES", None)
    return e


def cli(*args: str, devices: int | None = 1, timeout: float = 300,
        **kw) -> subprocess.CompletedProcess:
    """``python -m snntrain ARGS`` in a subprocess; returns the completed process."""
    return subprocess.run([sys.executable, "-m", "snntrain", *args], cwd=kw.pop("cwd", ROOT),
                          env=env(devices), capture_output=True, text=True, timeout=timeout, **kw)


def popen(*args: str, devices: int = 1, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "snntrain", *args], cwd=kw.pop("cwd", ROOT),
                            env=env(devices), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def python(code: str, devices: int | None = 1, timeout: float = 300,
           environ: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` with ``devices`` virtual CPU devices (and ``environ`` besides); raises with
    its stderr on failure."""
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env(devices) | (environ or {}),
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"subprocess failed ({p.returncode}):\n{p.stderr[-4000:]}")
    return p
