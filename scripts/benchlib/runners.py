"""Timed runners: one compiled training step each (snntrain's or a reference), run in
alternating rounds so that both see the same machine state."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchlib.references import make_step

MAX_IN_FLIGHT = 20  # block at least this often (virtual-device collectives deadlock otherwise)


@dataclasses.dataclass
class Runner:
    """A compiled step with its state and batches; ``run(n)`` times n steps (steps/s)."""

    name: str
    call: Callable[[Any, Any], tuple[Any, Any]]  # (state, host_batch) -> (state, out)
    state: Any
    host: list[dict[str, np.ndarray]]
    compile_s: float = 0.0  # 0: set by warm() (the first call compiles)
    rates: list[float] = dataclasses.field(default_factory=list)
    memory: Any = None

    def warm(self) -> None:
        """Two calls: the second may compile again (a donated, uncommitted first state gives
        committed outputs as the next inputs: the hand-written reference compiled inside its
        first timed round, 1.6 s, which skewed every median ratio)."""
        import jax

        t = time.perf_counter()
        for _ in range(2):
            self.state, out = self.call(self.state, self.host[0])
            jax.block_until_ready(out)
        self.compile_s = self.compile_s or time.perf_counter() - t

    def run(self, n: int) -> float:
        import jax

        t = time.perf_counter()
        out = None
        for i in range(n):
            self.state, out = self.call(self.state, self.host[i % len(self.host)])
            if i % MAX_IN_FLIGHT == MAX_IN_FLIGHT - 1:
                jax.block_until_ready(out)
        jax.block_until_ready((self.state, out))
        rate = n / (time.perf_counter() - t)
        self.rates.append(rate)
        return rate

    @property
    def best(self) -> float:
        return max(self.rates)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from snntrain.paths import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def snntrain_runner(
    overrides: list[str],
    name: str = "snntrain",
    n_batches: int = 8,
    aot: bool = False,
    precomputed: bool = False,
):
    """(Runner, Experiment) for the real code path: config -> build -> compiled train step.

    ``aot``: compile ahead of time (``lower().compile()``, timed as ``compile_s``) and keep
    the compiled step's ``memory_analysis()`` as ``runner.memory``. ``precomputed``: the
    same step on spikes drawn beforehand (Bernoulli of each pixel, ``x_BxTx...`` float32, as
    the peer libraries are fed), passed through by ``encoder=none``'s encoder: the step
    without rate coding.
    """
    import jax

    from snntrain import data, encoding, train

    exp = train.build(compose(overrides))
    if precomputed:
        exp = dataclasses.replace(exp, encoder=encoding.Passthrough())
    dp = exp.parallel
    fn = dp.compile(train.make_train_step(exp))
    state = dp.replicate(exp.init_state())
    host = []
    for batch in data.batches(exp.data.train, exp.batch_size, rows=dp.local_rows):
        if precomputed:
            x_Bx = np.asarray(batch["x"], np.float32)
            u_BxTx = np.random.default_rng(len(host)).random(
                (x_Bx.shape[0], exp.T, *x_Bx.shape[1:]), np.float32)
            batch = {**batch, "x": (u_BxTx < x_Bx[:, None]).astype(np.float32)}
        host.append(batch)
        if len(host) == n_batches:
            break
    key, surrogate = jax.random.PRNGKey(0), exp.surrogate
    compile_s, memory = 0.0, None
    if aot:
        t = time.perf_counter()
        fn = fn.lower(state, dp.put_batch(host[0]), key, surrogate).compile()
        compile_s, memory = time.perf_counter() - t, fn.memory_analysis()

    def call(state, batch):
        return fn(state, dp.put_batch(batch), key, surrogate)

    runner = Runner(name, call, state, host, compile_s)
    runner.memory = memory
    return runner, exp


def reference_runner(loss_and_params, host: list[dict[str, np.ndarray]], name: str = "reference"):
    import jax

    step, state, _ = make_step(*loss_and_params)
    key = jax.random.PRNGKey(0)
    device = jax.devices()[0]

    def call(state, batch):
        return step(state, jax.device_put({"x": batch["x"], "y": batch["y"]}, device), key)

    return Runner(name, call, state, host)


def alternate(runners: list[Runner], steps: int, rounds: int) -> None:
    """Warm (compile) every runner, then time them in alternating rounds."""
    for r in runners:
        r.warm()
    for _ in range(rounds):
        for r in runners:
            r.run(steps)
