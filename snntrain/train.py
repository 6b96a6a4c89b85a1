"""Training and evaluation: ``train_and_evaluate(cfg) -> summary``.

The pieces, in the order a run uses them:

* :func:`build` turns a config into an :class:`Experiment` (data, model, optimizer, surrogate,
  encoder, device layout) — usable from a notebook without Hydra.
* :func:`make_train_step` / :func:`make_eval_step` build pure step functions
  ``step(state, batch, key, surrogate, *, axis_name)``; :mod:`snntrain.parallel` compiles the
  same function for one device, a device mesh, or pmap.
* :func:`train_and_evaluate` runs the loop: progress bar, ``metrics.jsonl``, wandb,
  checkpoints, exact resume, pre-emption and divergence handling, and ``summary.json``.

Randomness is explicit: the key of training step ``s`` is ``fold_in(PRNGKey(seed), s)`` and every
example draws from ``fold_in(step_key, example_index)``, so a run is a pure function of its
config and seed, and resuming at step ``s`` reproduces the uninterrupted run bit for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import signal
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from omegaconf import DictConfig, OmegaConf

from snntrain import checkpoint as ckpt_lib
from snntrain import data as data_lib
from snntrain import encoding, models, optim, plots, report, surrogates
from snntrain import parallel as par
from snntrain.config import ConfigError, named, validate
from snntrain.writers import MetricsFile, Wandb, write_json

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: "try again" — SLURM requeue resumes the run
DIVERGED_EXIT_CODE = 3
# Block on results at least this often: many un-awaited collective steps in flight deadlock
# XLA's virtual CPU devices ("rendezvous ... only 3 arrived").
MAX_STEPS_IN_FLIGHT = 20
EVAL_KEY = 2**31 - 1


class TrainingError(RuntimeError):
    """A run that stopped for a reason the user must act on (reported in one line)."""

    exit_code = 1


class Diverged(TrainingError):
    exit_code = DIVERGED_EXIT_CODE


class Preempted(TrainingError):
    exit_code = PREEMPTED_EXIT_CODE


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training (besides the data position, which is ``step``)."""

    step: jax.Array
    params: Any
    opt_state: Any


@dataclasses.dataclass
class Experiment:
    """A built run: what the config describes, ready to train."""

    cfg: DictConfig
    data: data_lib.Splits
    graphdef: Any
    rest: Any
    params: Any
    tx: optax.GradientTransformation
    surrogate: surrogates.Surrogate
    encoder: Any
    parallel: par.DataParallel
    batch_size: int
    steps_per_epoch: int
    dtype: Any

    def init_state(self) -> TrainState:
        return TrainState(jnp.zeros((), jnp.int32), self.params, self.tx.init(self.params))

    def model(self, params: Any | None = None) -> nnx.Module:
        return nnx.merge(self.graphdef, self.params if params is None else params, self.rest)


def _cfg_dict(node: Any) -> dict[str, Any]:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(
        node or {})


def build_surrogate(cfg: Any) -> surrogates.Surrogate:
    """``surrogate`` config group → a surrogate instance (``name`` + its parameters)."""
    params = _cfg_dict(cfg)
    return surrogates.get(params.pop("name"), **params)


def build(cfg: DictConfig) -> Experiment:
    """Everything a run needs, from a composed (and validated) config."""
    validate(cfg)
    trainer = cfg.trainer
    try:
        dp = par.DataParallel(trainer.parallel, trainer.get("devices"), int(trainer.batch_size))
        dataset = _cfg_dict(cfg.dataset)
        data = data_lib.load(dataset.pop("name"), seed=int(cfg.seed), **dataset)
        model_cfg = _cfg_dict(cfg.model)
        with named("model", model_cfg):
            model = models.create(model_cfg.pop("name"), data.image_shape, data.n_classes,
                                  int(cfg.seed), **model_cfg)
        surrogate = build_surrogate(cfg.surrogate)
        enc_cfg = _cfg_dict(cfg.encoder)
        encoder = encoding.get(enc_cfg.pop("name"), **enc_cfg)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e)) from None
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    spe = data_lib.steps_per_epoch(len(data.train), int(trainer.batch_size))
    opt_cfg = _cfg_dict(cfg.optimizer)
    tx = optim.make(opt_cfg.pop("name"), total_steps=spe * int(trainer.epochs), **opt_cfg)
    dtype = jnp.dtype(trainer.get("dtype", "float32"))
    return Experiment(cfg, data, graphdef, rest, params, tx, surrogate, encoder, dp,
                      int(trainer.batch_size), spe, dtype)


# ---- pure steps ---------------------------------------------------------------------------


def make_forward(exp: Experiment):
    """``forward(params, batch, key, surrogate) -> (logits_BxC float32, aux)``."""
    graphdef, rest, encoder, dtype = exp.graphdef, exp.rest, exp.encoder, exp.dtype
    T, remat = int(exp.cfg.T), bool(exp.cfg.trainer.get("remat", False))

    def forward(params, batch, key, surrogate):
        if dtype != jnp.float32:  # compute in bf16, keep float32 master parameters
            params = jax.tree.map(lambda p: p.astype(dtype), params)
        model = nnx.merge(graphdef, params, rest)
        keys_B = encoding.example_keys(key, batch["index"])
        x_Bx = batch["x"].astype(dtype)
        if remat and hasattr(encoder, "steps"):  # each remat block draws its own steps
            x_TxBx = encoding.Encoded(encoder, x_Bx, keys_B, T)
        else:
            x_TxBx = encoder(x_Bx, keys_B, T)
        logits_BxC, aux = model(x_TxBx, surrogate, remat)
        return logits_BxC.astype(jnp.float32), aux

    return forward


def batch_sums(logits_BxC, aux, batch) -> dict[str, jax.Array]:
    """Masked sums over the batch (padding rows have ``mask == 0``)."""
    mask_B = batch["mask"]
    ce_B = optax.softmax_cross_entropy_with_integer_labels(logits_BxC, batch["y"])
    correct_B = (jnp.argmax(logits_BxC, -1) == batch["y"]).astype(jnp.float32)
    sums = {"loss": (ce_B * mask_B).sum(), "correct": (correct_B * mask_B).sum(),
            "count": mask_B.sum()}
    for name, rate_B in aux["rates"].items():
        sums[f"rate/{name}"] = (rate_B.astype(jnp.float32) * mask_B).sum()
    return sums


def make_train_step(exp: Experiment):
    """The training step: masked mean cross-entropy over the *global* batch, one optax update.

    Under pmap each device divides its shard's loss sum by the global example count and the
    gradients are summed (``psum``), which equals the gradient of the global mean. A step whose
    loss or gradient is not finite leaves parameters and optimizer state unchanged (``finite``
    is reported, and the host decides whether to stop).
    """
    forward, tx = make_forward(exp), exp.tx
    reg = exp.cfg.loss.rate_reg
    reg_weight, reg_target = float(reg.weight), float(reg.target)

    def train_step(state: TrainState, batch, key, surrogate, *, axis_name=None):
        step_key = jax.random.fold_in(key, state.step)
        count = jnp.maximum(par.psum(batch["mask"].sum(), axis_name), 1.0)

        def loss_fn(params):
            logits_BxC, aux = forward(params, batch, step_key, surrogate)
            sums = batch_sums(logits_BxC, aux, batch)
            loss = sums["loss"] / count
            if reg_weight:
                for k in aux["rates"]:
                    rate = par.psum(sums[f"rate/{k}"], axis_name) / count
                    loss = loss + reg_weight * (rate - reg_target) ** 2 / max(1, len(aux["rates"]))
            return loss, sums

        grads, sums = jax.grad(loss_fn, has_aux=True)(state.params)
        grads, sums = par.psum(grads, axis_name), par.psum(sums, axis_name)
        grad_norm = optax.tree.norm(grads)
        loss = sums["loss"] / count
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
        new_state = TrainState(state.step + 1, keep(params, state.params),
                               keep(opt_state, state.opt_state))
        metrics = {"loss": loss, "accuracy": sums["correct"] / count, "grad_norm": grad_norm,
                   "finite": finite, "count": count}
        metrics.update({k: v / count for k, v in sums.items() if k.startswith("rate/")})
        for name, g in grads.items():
            metrics[f"grad_norm/{name}"] = optax.tree.norm(g)
        return new_state, metrics

    return train_step


def make_epoch_fn(exp: Experiment, train_step):
    """Run the steps of (the rest of) an epoch in one ``lax.scan`` with the dataset on device.

    ``epoch_fn(state, x_Nx, y_N, order_SxB, mask_SxB, key, surrogate)`` gathers each batch from
    the device-resident arrays by index, exactly as :func:`snntrain.data.batches` would, and
    returns the new state and the per-step metrics stacked along a leading ``S`` axis. It
    removes the per-step Python dispatch (``trainer.fused_epoch``).
    """

    def epoch_fn(state, x_Nx, y_N, order_SxB, mask_SxB, key, surrogate, *, axis_name=None):
        index_B = jnp.arange(order_SxB.shape[1], dtype=jnp.int32)

        def body(state, inputs):
            idx_B, mask_B = inputs
            batch = {"x": x_Nx[idx_B], "y": y_N[idx_B], "mask": mask_B, "index": index_B}
            return train_step(state, batch, key, surrogate, axis_name=axis_name)

        return jax.lax.scan(body, state, (order_SxB, mask_SxB))

    return epoch_fn


def epoch_plan(n: int, batch_size: int, seed: int, epoch: int, start: int):
    """Row indices and masks of batches ``start..`` of ``epoch`` (as :func:`data.batches`)."""
    order = data_lib.epoch_order(n, seed, epoch)
    steps = data_lib.steps_per_epoch(n, batch_size)
    last_chunk_first = order[(steps - 1) * batch_size]  # data.batches pads with this row
    padded = np.concatenate([order, np.full(steps * batch_size - n, last_chunk_first)])
    mask = (np.arange(steps * batch_size) < n).astype(np.float32)
    return (padded.reshape(steps, batch_size)[start:].astype(np.int32),
            mask.reshape(steps, batch_size)[start:])


def make_eval_step(exp: Experiment):
    """``eval_step(params, batch, key, surrogate) -> sums`` (loss, correct, count, rates)."""
    forward = make_forward(exp)

    def eval_step(params, batch, key, surrogate, *, axis_name=None):
        logits_BxC, aux = forward(params, batch, key, surrogate)
        return par.psum(batch_sums(logits_BxC, aux, batch), axis_name)

    return eval_step


# ---- the loop -----------------------------------------------------------------------------


class _Signals:
    """Turn SIGTERM/SIGINT into a flag the loop checks between steps."""

    def __init__(self):
        self.received: int | None = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread (e.g. a notebook)
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.received = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def fingerprint(exp: Experiment) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed: parameter shapes and the data layout."""
    fp = {f"param {k}": v for k, v in ckpt_lib.shapes_of(exp.params).items()}
    fp.update({"dataset": exp.data.name, "train examples": len(exp.data.train),
               "batch_size": exp.batch_size, "seed": int(exp.cfg.seed),
               "optimizer": str(exp.cfg.optimizer.name)})  # not lr: may change on resume
    return fp


def device_info(dp: par.DataParallel) -> dict[str, Any]:
    d = dp.local_devices[0]
    return {"platform": d.platform, "device_kind": d.device_kind, "devices": dp.n_devices,
            "processes": dp.process_count, "parallel": dp.mode, "jax": jax.__version__,
            "host": socket.gethostname(), "python": platform.python_version()}


def _run_id(run_dir: Path) -> str:
    path = run_dir / "wandb_id.txt"
    if path.exists():
        return path.read_text().strip()
    rid = uuid.uuid4().hex[:12]
    path.write_text(rid)
    return rid


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def default_run_name(cfg: DictConfig) -> str:
    s = OmegaConf.to_container(cfg.surrogate, resolve=True)
    params = ",".join(f"{k}={v}" for k, v in s.items() if k != "name")
    return f"{s['name']}({params})-seed{cfg.seed}"


def evaluate(exp: Experiment, eval_fn, params, source, key) -> dict[str, float]:
    """Mean loss, accuracy and firing rates over a whole split (padding masked out)."""
    totals: dict[str, float] = {}
    host = data_lib.batches(source, exp.batch_size, shuffle=False, rows=exp.parallel.local_rows)
    for k, batch in enumerate(exp.parallel.prefetch(host)):
        batch_key = jax.random.fold_in(key, k)
        sums = exp.parallel.metrics_to_host(eval_fn(params, batch, batch_key, exp.surrogate))
        for k, v in sums.items():
            totals[k] = totals.get(k, 0.0) + float(v)
    n = max(totals.pop("count"), 1.0)
    out = {"loss": totals.pop("loss") / n, "accuracy": totals.pop("correct") / n}
    out.update({k: v / n for k, v in totals.items()})
    return out


def resolve_run_dir(cfg: DictConfig, run_dir: str | Path | None) -> Path:
    if run_dir is None:
        try:
            from hydra.core.hydra_config import HydraConfig

            run_dir = HydraConfig.get().runtime.output_dir
        except ValueError:
            run_dir = Path("outputs") / time.strftime("%Y-%m-%d/%H-%M-%S")
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write_test{jax.process_index()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"output directory {run_dir} is not writable: {e.strerror}") from None
    return run_dir


def train_and_evaluate(cfg: DictConfig, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Train the configured SNN, evaluate it, and write everything into ``run_dir``.

    Returns the summary dict (also written to ``summary.json``); ``summary["test_accuracy"]``
    is what the Hydra task function returns to sweepers.
    """
    t_start = time.time()
    par.maybe_initialize_distributed(cfg.trainer)
    exp = build(cfg)
    dp, tcfg = exp.parallel, cfg.trainer
    main = dp.is_main
    run_dir = resolve_run_dir(cfg, run_dir)
    say = _say if main else (lambda _m: None)

    config_dict = OmegaConf.to_container(cfg, resolve=True)
    if main:
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    metrics_file = MetricsFile(run_dir / "metrics.jsonl")
    # Every process takes part in orbax saves (each writes its shards; the primary the rest).
    ckpts = ckpt_lib.Checkpoints(run_dir / "checkpoints", keep=int(tcfg.keep_checkpoints),
                                 async_save=bool(tcfg.get("async_checkpointing", True)))

    # ---- state: fresh or resumed --------------------------------------------------------
    state = exp.init_state()
    fp = fingerprint(exp)
    resume, meta = str(tcfg.get("resume", "auto")), {}
    if resume not in ("never", "auto"):
        src = ckpt_lib.Checkpoints(Path(resume), write=False)
        restored = src.restore(state, fp, say)
        if restored is None:
            raise ConfigError(f"trainer.resume={resume}: no readable checkpoint there")
    else:
        restored = ckpts.restore(state, fp, say) if resume == "auto" else None
    if restored is not None:
        state, meta = restored
        say(f"resuming from step {meta['step']} (epoch {meta['epoch']}, "
            f"batch {meta['batch_in_epoch']}) in {ckpts.directory}")
    start_step = int(meta.get("step", 0))
    if main:
        metrics_file.truncate_after(start_step)
    epoch_acc: dict[str, float] = dict(meta.get("epoch_acc", {}))
    history: dict[str, Any] = dict(meta.get("history", {"best_val_accuracy": None}))

    logger_cfg = _cfg_dict(cfg.logger)
    logger_cfg.setdefault("name", None)
    if logger_cfg.get("name") in (None, "wandb"):
        logger_cfg["name"] = logger_cfg.get("run_name") or default_run_name(cfg)
    # A Hydra multirun is one wandb group named after the sweep; tags name what is compared.
    logger_cfg["group"] = logger_cfg.get("group") or report.hydra_sweep_group()
    logger_cfg["tags"] = [*(logger_cfg.get("tags") or []), *report.run_tags(cfg)]
    wb = (Wandb(logger_cfg, run_dir, config_dict, _run_id(run_dir), say)
          if main and _cfg_dict(cfg.logger).get("name") != "none" else None)
    if wb is not None and wb.run is not None and start_step == 0:
        try:  # the surrogate's g'(x) for this run, once
            png = plots.surrogate_curve_png(exp.surrogate, run_dir / "surrogate_grad.png")
            wb.log_image("surrogate/grad", png, step=0)
        except Exception as e:  # noqa: BLE001 - a plot must never stop a run
            say(f"wandb: no surrogate plot ({type(e).__name__}: {e})")

    key = jax.random.PRNGKey(int(cfg.seed))
    eval_key = jax.random.fold_in(key, EVAL_KEY)
    fused = bool(tcfg.get("fused_epoch", False))
    if fused:
        if dp.mode != "none" or not isinstance(exp.data.train, data_lib.Arrays):
            raise ConfigError("trainer.fused_epoch=true needs one device (trainer.parallel=none) "
                              "and an in-memory dataset")
        epoch_fn = jax.jit(make_epoch_fn(exp, make_train_step(exp)), donate_argnums=(0,))
        x_all = jax.device_put(data_lib.to_unit(exp.data.train.x))
        y_all = jax.device_put(np.asarray(exp.data.train.y, np.int32))
    train_fn = dp.compile(make_train_step(exp))
    eval_fn = dp.compile(make_eval_step(exp), donate_state=False)
    state = dp.replicate(state)
    surrogate = exp.surrogate

    epochs, spe, B = int(tcfg.epochs), exp.steps_per_epoch, exp.batch_size
    log_every = max(1, int(tcfg.log_every))
    ckpt_every = int(tcfg.get("checkpoint_every") or 0)
    on_nan = str(tcfg.get("on_nan", "stop"))
    total_steps = epochs * spe

    def save(step: int, epoch: int, batch_in_epoch: int) -> None:
        ckpts.save(step, dp.unreplicate(state), {
            "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
            "seed": int(cfg.seed), "prng_key": np.asarray(key).tolist(), "fingerprint": fp,
            "epoch_acc": epoch_acc, "history": history})

    def log(record: dict[str, Any]) -> None:
        if main:
            metrics_file.write(record)
            if wb:
                wb.log({k: v for k, v in record.items() if k != "step"}, record["step"])

    from snntrain.progress import Progress

    def flush(pending: list[tuple[int, Any]], epoch: int) -> None:
        nonlocal last
        if not pending:
            return
        fetched = dp.metrics_to_host([m for _, m in pending])
        for (s, _), m in zip(pending, fetched, strict=True):
            m = {k: float(v) for k, v in m.items()}
            if not m.pop("finite"):
                if on_nan == "stop":
                    good = ckpts.steps()
                    where = (f"last good checkpoint: {ckpts.directory / str(good[-1])}"
                             if good else "no checkpoint was written yet")
                    raise Diverged(f"loss or gradient became NaN/Inf at step {s} "
                                   f"(loss={m['loss']}, grad_norm={m['grad_norm']}); "
                                   f"{where}. Lower optimizer.lr or set "
                                   "trainer.on_nan=skip_step")
                say(f"step {s}: non-finite loss/gradient, update skipped")
                continue
            count = m.pop("count")
            for k, v in m.items():
                if not k.startswith("grad_norm/"):
                    epoch_acc[k] = epoch_acc.get(k, 0.0) + v * count
            epoch_acc["count"] = epoch_acc.get("count", 0.0) + count
            if s % log_every == 0:
                log({"step": s, "epoch": epoch + 1, "split": "train", **m})
            last = m
        pending.clear()

    compile_s = 0.0
    step = start_step
    epoch = step // spe
    last: dict[str, Any] = {}
    t_train = 0.0
    status = "completed"
    with _Signals() as signals, Progress(total_steps, spe, enabled=main and bool(
            tcfg.get("progress", True))) as bar:
        bar.update(step, {})
        while epoch < epochs:
            first_batch = step - epoch * spe
            host = data_lib.batches(exp.data.train, B, seed=int(cfg.seed), epoch=epoch,
                                    start=first_batch, rows=dp.local_rows)
            pending: list[tuple[int, Any]] = []
            t0 = time.perf_counter()

            if fused:  # the whole (rest of the) epoch in one call; metrics come back stacked
                order_SxB, mask_SxB = epoch_plan(len(exp.data.train), B, int(cfg.seed), epoch,
                                                 first_batch)
                state, stacked = epoch_fn(state, x_all, y_all, order_SxB, mask_SxB, key,
                                          surrogate)
                stacked = jax.device_get(stacked)
                if compile_s == 0.0:  # compile + the first epoch, as the per-step loop's first step
                    compile_s = time.perf_counter() - t0
                    t0 = time.perf_counter()
                for i in range(len(order_SxB)):
                    step += 1
                    pending.append((step, {k: v[i] for k, v in stacked.items()}))
                flush(pending, epoch)
                host = ()
            for batch in dp.prefetch(host):
                state, metrics = train_fn(state, batch, key, surrogate)
                if compile_s == 0.0:  # the first call compiles; one step is ms next to that
                    jax.block_until_ready(metrics)
                    compile_s = time.perf_counter() - t0
                    t0 = time.perf_counter()
                step += 1
                pending.append((step, metrics))
                at_ckpt = ckpt_every and step % ckpt_every == 0
                if len(pending) >= min(MAX_STEPS_IN_FLIGHT, log_every) or at_ckpt or (
                        signals.received is not None):
                    flush(pending, epoch)
                    elapsed = time.perf_counter() - t0
                    bar.update(step, {**last, "samples_per_s": (step - epoch * spe - first_batch)
                                      * B / max(elapsed, 1e-9)})
                if at_ckpt:
                    save(step, epoch, step - epoch * spe)
                if signals.received is not None:
                    break
            flush(pending, epoch)
            t_train += time.perf_counter() - t0
            if signals.received is not None:
                save(step, epoch, step - epoch * spe)
                status = "preempted"
                break

            # ---- end of epoch: train means, validation, test ---------------------------
            n = max(epoch_acc.pop("count", 0.0), 1.0)
            train_means = {f"train_{k}": v / n for k, v in epoch_acc.items()}
            epoch_acc.clear()
            params = state.params
            record = {"step": step, "epoch": epoch + 1, "split": "epoch", **train_means,
                      "samples_per_s": (spe - first_batch) * B / max(time.perf_counter() - t0,
                                                                     1e-9)}
            if exp.data.val is not None:
                val = evaluate(exp, eval_fn, params, exp.data.val, eval_key)
                record.update({f"val_{k}": v for k, v in val.items()})
                best = history.get("best_val_accuracy")
                if best is None or val["accuracy"] > best:
                    history.update(best_val_accuracy=val["accuracy"], best_val_epoch=epoch + 1)
            test = evaluate(exp, eval_fn, params, exp.data.test, eval_key)
            record.update({f"test_{k}": v for k, v in test.items()})
            log(record)
            last = record
            epoch += 1
            save(step, epoch, 0)
            bar.update(step, last)
            bar.epoch_done(epoch, record)

    ckpts.close()
    metrics_file.close()
    summary = {
        "status": status, "steps": step, "epochs": epoch,
        "test_accuracy": last.get("test_accuracy"), "test_loss": last.get("test_loss"),
        "train_loss": last.get("train_loss"), "train_accuracy": last.get("train_accuracy"),
        "val_accuracy": last.get("val_accuracy"), "val_loss": last.get("val_loss"),
        "best_val_accuracy": history.get("best_val_accuracy"),
        "best_val_epoch": history.get("best_val_epoch"),
        "firing_rates": {k[len("test_rate/"):]: v for k, v in last.items()
                         if k.startswith("test_rate/")},
        "wall_time_s": time.time() - t_start, "train_time_s": t_train,
        "compile_time_s": compile_s,
        "samples_per_s": (step - start_step) * B / max(t_train, 1e-9),
        "surrogate": repr(surrogate), "dataset": exp.data.describe(),
        "run_dir": str(run_dir.absolute()), "device": device_info(dp),
        "n_params": int(sum(np.prod(x.shape) for x in jax.tree.leaves(exp.params))),
    }
    if main:
        write_json(run_dir / "summary.json", summary)
        if wb:
            wb.summary({k: v for k, v in summary.items() if not isinstance(v, dict)})
            wb.finish(exit_code=0 if status == "completed" else 1)
    if status == "preempted":
        raise Preempted(f"received signal {signals.received}: saved a checkpoint at step {step} "
                        f"in {ckpts.directory}; rerun the same command to resume")
    return summary


def params_of(run_dir: str | Path, cfg: DictConfig | None = None) -> Any:
    """The newest parameters saved in ``run_dir`` (for analysis in a notebook)."""
    run_dir = Path(run_dir)
    cfg = cfg if cfg is not None else OmegaConf.load(run_dir / "config.yaml")
    exp = build(cfg)
    restored = ckpt_lib.Checkpoints(run_dir / "checkpoints", write=False).restore(
        exp.init_state(), fingerprint(exp))
    if restored is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir / 'checkpoints'}")
    return restored[0].params


__all__ = ["train_and_evaluate", "build", "make_train_step", "make_eval_step", "make_epoch_fn",
           "TrainState", "Experiment", "evaluate", "TrainingError", "ConfigError", "params_of"]
