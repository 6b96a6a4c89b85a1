"""Data parallelism: one step function, run on one device, sharded over a mesh, or pmapped.

Every step function has the signature ``step(state, batch, key, surrogate, *, axis_name)``;
it reduces its sums with ``lax.psum(..., axis_name)`` when ``axis_name`` is given (``sharded``
and ``pmap``: each device runs the step on its own shard of the batch). The global batch is split
along its first axis over the ``data`` axis of the devices; parameters and optimizer state are
replicated, so all replicas stay identical.

Modes (``trainer.parallel``):
  * ``none``: one device, ``jax.jit``.
  * ``sharded``: ``jax.jit`` of a ``jax.shard_map`` over a ``jax.make_mesh`` 'data' axis, with
    ``NamedSharding`` inputs (the current JAX way; spans every process's devices). The step is
    written per shard, as under pmap: left to sharding propagation, the model's reshapes that
    merge time with the sharded batch axis (``T x B -> T*B`` rows) made XLA regather
    activations, and 4 virtual CPU devices ran at 0.25-0.31x of one device (pmap: 0.90-1.02x).
  * ``pmap``: a literal ``jax.pmap`` with ``lax.psum`` of gradient sums (the classic scheme).
  * ``auto``: ``sharded`` when more than one device is used, else ``none``.
"""

from __future__ import annotations

import functools
import logging
import os
import pathlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from snntrain import hostenv
from snntrain.errors import ConfigError

MODES = ("auto", "none", "sharded", "pmap")
AXIS = "data"


class ParallelError(ConfigError):
    """A data-parallel setting that cannot work (reported in one line at start-up)."""


def nearest_divisible(batch_size: int, n: int) -> list[int]:
    """The multiples of ``n`` just below and above ``batch_size``."""
    below = (batch_size // n) * n
    return [b for b in (below, below + n) if b > 0]


def wants_distributed(cfg: Any) -> bool:
    """Whether ``trainer.distributed`` (``cfg``: the trainer node) makes this a multi-process
    run: ``true``; ``auto`` under a SLURM job of several tasks, a TPU pod or a JAX coordinator
    in the environment (a TPU pod without SLURM was taken for one process before)."""
    mode = cfg.get("distributed", False)
    if mode is None or mode is False or mode in ("false", "none"):
        return False
    if mode != "auto":
        return True
    try:
        tasks = int(os.environ.get("SLURM_NTASKS") or 1)
    except ValueError:
        tasks = 1
    return tasks > 1 or any(k in os.environ for k in ("TPU_WORKER_HOSTNAMES",
                                                       "JAX_COORDINATOR_ADDRESS"))


def maybe_initialize_distributed(cfg: Any) -> None:
    """Call ``jax.distributed.initialize`` for multi-host runs (``trainer.distributed``).

    ``true`` initialises with ``coordinator_address``/``num_processes``/``process_id`` from the
    config when set, otherwise from the environment JAX recognises (SLURM, TPU pods, ...);
    ``auto`` initialises only when such an environment is detected.
    """
    if not wants_distributed(cfg) or jax.distributed.is_initialized():  # (called twice: by
        return  # the CLI before it names the run's directory, and by train_and_evaluate)
    mode = cfg.get("distributed")
    kwargs = {k: cfg.get(k) for k in ("coordinator_address", "num_processes", "process_id")
              if cfg.get(k) is not None}
    timeout = int(cfg.get("init_timeout_s", 300))
    try:
        jax.distributed.initialize(initialization_timeout=timeout, **kwargs)
    except Exception as e:  # noqa: BLE001 - report in one line
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ParallelError(
            f"trainer.distributed={mode}: jax.distributed.initialize({kwargs}) failed: {why}; "
            "start one process per task (under SLURM: srun), or set "
            "trainer.coordinator_address, trainer.num_processes and trainer.process_id, or "
            "trainer.distributed=false for one process") from None


def local_count(devices: int | str | None) -> int:
    """``trainer.devices`` as a number of this process's devices, checked: null is all of
    them (one, in a process whose CPU a population split: a solo run keeps to one there)."""
    local = jax.local_devices()
    if devices is None or devices in (0, "all"):
        split = hostenv.cpu_split() and jax.default_backend() == "cpu"
        devices = 1 if split and devices is None else len(local)
    devices = int(devices)
    if not 1 <= devices <= len(local):
        raise ParallelError(f"trainer.devices={devices}: this process has {len(local)} "
                            f"local device(s); valid: 1..{len(local)}")
    return devices


def resolved(mode: str, devices: int | str | None) -> tuple[str, int]:
    """``trainer.parallel`` and ``trainer.devices`` as the mode and number of this process's
    devices a run uses (``auto``: ``sharded`` over several, else ``none``, on one device)."""
    devices = local_count(devices)
    if mode == "auto":
        mode = "sharded" if devices > 1 or jax.process_count() > 1 else "none"
    return mode, 1 if mode == "none" else devices


def split_error(batch_size: int, devices: int, processes: int = 1) -> str | None:
    """Why ``trainer.batch_size`` cannot be split over ``devices`` x ``processes``, or None."""
    n = devices * processes
    if not batch_size or batch_size % n == 0:
        return None
    valid = ", ".join(map(str, nearest_divisible(batch_size, n)))
    where = f"{devices} devices x {processes} processes" if processes > 1 else f"{n} devices"
    return (f"trainer.batch_size={batch_size} does not divide over {where}; nearest valid "
            f"sizes: {valid} (or set trainer.devices)")


class DataParallel:
    """Places batches and state on devices and compiles step functions for one mode."""

    def __init__(self, mode: str = "auto", devices: int | None = None, batch_size: int = 0):
        if mode not in MODES:
            raise ParallelError(f"trainer.parallel={mode!r}; valid: {', '.join(MODES)}")
        local = jax.local_devices()
        if mode == "none" and devices not in (None, 0, 1, "all"):
            logging.getLogger(__name__).info(
                "note: trainer.parallel=none trains on one device; trainer.devices=%s is not "
                "used (trainer.parallel=sharded or pmap spreads the batch)", devices)
        mode, devices = resolved(mode, devices)
        self.mode = mode
        self.local_devices = local[:devices]
        self.process_count = jax.process_count()
        self.process_index = jax.process_index()
        self.n_devices = devices * self.process_count
        if (msg := split_error(batch_size, devices, self.process_count)) is not None:
            raise ParallelError(msg)
        self.batch_size = batch_size
        if mode in ("sharded", "pmap"):
            # pmap only ever sees this process's devices; the sharded mesh spans all processes.
            mesh_devices = (jax.devices() if mode == "sharded" and self.process_count > 1
                            else self.local_devices)
            self.mesh = jax.make_mesh((len(mesh_devices),), (AXIS,),
                                      axis_types=(AxisType.Auto,), devices=mesh_devices)
            self.batch_sharding = NamedSharding(self.mesh, PartitionSpec(AXIS))
            self.replicated = NamedSharding(self.mesh, PartitionSpec())

    @property
    def local_rows(self) -> slice:
        """This process's rows of every global batch."""
        per = self.batch_size // self.process_count
        return slice(self.process_index * per, (self.process_index + 1) * per)

    @property
    def is_main(self) -> bool:
        return self.process_index == 0

    # ---- placement -------------------------------------------------------------------------
    def replicate(self, tree: Any) -> Any:
        """Put ``tree`` on every device (the layout the compiled step expects)."""
        if self.mode == "sharded":
            return jax.device_put(tree, self.replicated)
        if self.mode == "pmap":  # one copy per device along a leading axis
            n = len(self.local_devices)
            return jax.device_put(jax.tree.map(lambda x: np.stack([np.asarray(x)] * n), tree),
                                  self.batch_sharding)
        return jax.device_put(tree, self.local_devices[0])

    def unreplicate(self, tree: Any) -> Any:
        """One copy of a replicated tree (as host-independent arrays)."""
        if self.mode == "pmap":
            return jax.tree.map(lambda x: x[0], tree)
        return tree

    def put_batch(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        """Send this process's part of a global batch to its devices, already sharded."""
        if self.mode == "sharded":
            if self.process_count > 1:
                return {k: jax.make_array_from_process_local_data(self.batch_sharding, v)
                        for k, v in batch.items()}
            return jax.device_put(batch, self.batch_sharding)
        if self.mode == "pmap":  # [n_devices, B / n_devices, ...]
            n = len(self.local_devices)
            return jax.device_put(
                {k: v.reshape(n, v.shape[0] // n, *v.shape[1:]) for k, v in batch.items()},
                self.batch_sharding)
        return jax.device_put(batch, self.local_devices[0])

    def prefetch(self, host_batches: Iterable[dict], size: int = 2) -> Iterator[dict]:
        """Yield device batches, keeping ``size`` transfers in flight ahead of the consumer."""
        queue: list[dict] = []
        for batch in host_batches:
            queue.append(self.put_batch(batch))
            if len(queue) >= size:
                yield queue.pop(0)
        yield from queue

    # ---- compilation -----------------------------------------------------------------------
    def compile(self, step: Callable, donate_state: bool = True) -> Callable:
        """Compile ``step(state, batch, key, surrogate, *, axis_name)`` for this mode.

        The returned function has signature ``(state, batch, key, surrogate)``; ``key`` and
        ``surrogate`` are replicated (never split over devices).
        """
        donate = (0,) if donate_state else ()
        if self.mode == "pmap":
            fn = jax.pmap(functools.partial(step, axis_name=AXIS), axis_name=AXIS,
                          in_axes=(0, 0, None, None), devices=self.local_devices,
                          donate_argnums=donate)
            return fn
        if self.mode == "sharded":
            r = PartitionSpec()
            return shard_step(functools.partial(step, axis_name=AXIS), self.mesh,
                              (r, PartitionSpec(AXIS), r, r), r, donate)
        return jax.jit(functools.partial(step, axis_name=None), donate_argnums=donate)

    def metrics_to_host(self, metrics: Any) -> Any:
        """Fetch (replicated) metrics to host numpy."""
        if self.mode == "pmap":
            metrics = jax.tree.map(lambda x: x[0], metrics)
        return jax.device_get(metrics)


def shard_step(fn: Callable, mesh: jax.sharding.Mesh, in_specs: tuple, out_specs: Any,
               donate: tuple[int, ...] = ()) -> Callable:
    """``jit(shard_map(fn))``: ``fn`` is written per device, on its shards of the arguments
    (``in_specs``: a ``PartitionSpec`` per argument, a prefix of its tree), its sums reduced
    with ``lax.psum`` over the mesh axes it names; inputs and outputs are placed by
    ``NamedSharding`` on ``mesh``. Used by ``sharded`` (a 1-D ``data`` mesh) and by
    population training (a 2-D ``members x data`` mesh, :mod:`snntrain.population_step`).
    """
    mapped = jax.shard_map(
        fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs,
        # no varying/invariant type checks: neuron scans start from zeros (invariant) and
        # carry batch values (varying); the outputs are psum-reduced or computed from
        # psum-reduced gradients, so every replica along a reduced axis returns the same values
        check_vma=False,
    )

    def named(specs: Any) -> Any:
        return jax.tree.map(lambda spec: NamedSharding(mesh, spec), specs,
                            is_leaf=lambda x: isinstance(x, PartitionSpec))

    return jax.jit(mapped, in_shardings=named(in_specs), out_shardings=named(out_specs),
                   donate_argnums=donate)


def psum(x: Any, axis_name: str | None) -> Any:
    """``lax.psum`` over ``axis_name`` when running under pmap, identity otherwise."""
    return x if axis_name is None else jax.lax.psum(x, axis_name)


def step_memory(train_ma: Any, eval_ma: Any = None) -> dict[str, int]:
    """Bytes of the compiled steps: ``arguments`` (states, batches, keys: grow with the
    members) and ``temporaries`` (the largest step's scratch and new outputs)."""
    def get(ma, name):
        return int(getattr(ma, name, 0) or 0) if ma is not None else 0

    temp = max(get(train_ma, "temp_size_in_bytes") + get(train_ma, "output_size_in_bytes")
               - get(train_ma, "alias_size_in_bytes"), get(eval_ma, "temp_size_in_bytes"))
    return {"arguments": get(train_ma, "argument_size_in_bytes"), "temporaries": temp}


def available_memory() -> int | None:
    """Bytes a run may still use: the first device's limit on an accelerator, else Linux's
    ``MemAvailable`` (None when unknown: no check)."""
    device = jax.local_devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if stats.get("bytes_limit"):
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


MEMORY_FRACTION = 0.9  # of what is left that a run (or a population) may plan to use
SHRINK = ("make the model (model.hidden, model.channels), trainer.batch_size or T smaller, or "
          "set trainer.remat=true")  # (what every out-of-memory line advises)


def memory_error(compiled: Any, what: str, devices: int = 1) -> str | None:
    """Why the compiled ``what`` step cannot run here, or None: its temporaries (on a CPU
    times its ``devices``, which share the host's memory) exceed :data:`MEMORY_FRACTION` of
    what is left. Before, a model too large for the RAM was killed by the kernel: status 137,
    no message, no summary (22.1 of 23.2 GiB left was killed)."""
    try:
        need = step_memory(compiled.memory_analysis())["temporaries"]
    except Exception:  # noqa: BLE001 - no analysis from this backend: no check
        return None
    device = jax.local_devices()[0]
    need *= devices if device.platform == "cpu" else 1
    avail = available_memory()
    if avail is None or need <= MEMORY_FRACTION * avail:
        return None
    return (f"out of memory on {device.device_kind}: the compiled {what} step needs "
            f"{need / 2**30:,.1f} GiB of working memory, {avail / 2**30:,.1f} GiB is left "
            f"(a run plans with {MEMORY_FRACTION:.0%} of it): {SHRINK}")
