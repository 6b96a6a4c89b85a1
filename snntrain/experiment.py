"""A built run: :func:`build` turns a composed config into an :class:`Experiment`.

The experiment holds everything the steps and the loop need (data, model split into graph and
parameters, optimizer, surrogate, encoder, device layout, and the settings the steps read:
``T``, remat, dtype, the rate regulariser), so nothing downstream re-reads the config. Usable
from a notebook without Hydra::

    exp = build(cfg); state = exp.init_state()
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import platform
import socket
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from omegaconf import DictConfig

from snntrain import checkpoint as ckpt_lib
from snntrain import data as data_lib
from snntrain import encoding, models, optim, surrogates, synops
from snntrain import parallel as par
from snntrain.config import (
    ConfigError,
    RunConfig,
    check_trainer,
    encoder_mismatch,
    unused_values,
    validate,
)
from snntrain.losses import RateRegularizer
from snntrain.registry import plain
from snntrain.sources import content_hash
from snntrain.steps import TrainState

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Experiment:
    """A built run: what the config describes, ready to train."""

    cfg: DictConfig
    run: RunConfig  # the checked, typed config: read settings from here
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
    epochs: int
    seed: int
    T: int
    remat: bool
    dtype: Any
    rate_reg: RateRegularizer
    synapses: Any = None  # static layer descriptions for the cost metrics (None: off)
    energy: Any = None  # per-operation energies (metrics.energy)

    def init_state(self) -> TrainState:
        return TrainState(jnp.zeros((), jnp.int32), self.params, self.tx.init(self.params))

    def model(self, params: Any | None = None) -> nnx.Module:
        return nnx.merge(self.graphdef, self.params if params is None else params, self.rest)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def build(cfg: DictConfig) -> Experiment:
    """Everything a run needs, from a composed config (checked first: :func:`validate`)."""
    run = validate(cfg)
    check_trainer(run.trainer)
    trainer, seed, batch_size = run.trainer, run.seed, run.trainer.batch_size
    try:
        dp = par.DataParallel(trainer.parallel, trainer.devices, batch_size)
        data = data_lib.from_config(run.dataset, seed)
        model = models.from_config(run.model, data.image_shape, data.n_classes, seed)
        surrogate = surrogates.from_config(run.surrogate)
        encoder = encoding.from_config(run.encoder)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e)) from None
    _check_encoder_fits(encoder, data, run)
    _check_batch_fits(batch_size, len(data.train), run.dataset["name"])
    if data.val is None and "val" in run.optimize_metric:
        _note(f"note: no validation split (dataset.val_fraction="
              f"{run.dataset.get('val_fraction', 0)}): optimize_metric={run.optimize_metric} "
              "will be null, so sweepers and the report cannot select on it")
    for note in unused_values(run, data.image_shape):
        _note(note)
    if trainer.fused_epoch and trainer.checkpoint_every:
        _note(f"note: trainer.checkpoint_every={trainer.checkpoint_every} has no effect with "
              "trainer.fused_epoch=true (an epoch is one compiled call): checkpoints are saved "
              "at the end of each epoch")
    synapses = model.synapses() if run.metrics["synops"] and hasattr(model, "synapses") else None
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    spe = data_lib.steps_per_epoch(len(data.train), batch_size)
    tx = optim.from_config(run.optimizer, total_steps=spe * trainer.epochs)
    return Experiment(cfg, run, data, graphdef, rest, params, tx, surrogate, encoder, dp,
                      batch_size, spe, trainer.epochs, seed, run.T, trainer.remat,
                      jnp.dtype(trainer.dtype),
                      RateRegularizer(run.loss.rate_reg_weight, run.loss.rate_reg_target),
                      synapses, synops.energy_from_config(run.metrics["energy"]))


PADDED_BATCH_LIMIT = 1024  # rows a batch larger than the training set may be padded to


def _check_batch_fits(batch_size: int, n: int, dataset: str) -> None:
    """A batch larger than the training set is padded (masked rows: the gradient of the ``n``
    examples): a note, and refused beyond :data:`PADDED_BATCH_LIMIT` rows (batch_size=1e9 on
    digits was killed by the kernel's OOM killer without a word)."""
    if batch_size <= n:
        return
    if batch_size > PADDED_BATCH_LIMIT:
        raise ConfigError(f"trainer.batch_size={batch_size} is larger than the {n} training "
                          f"examples of dataset={dataset}: use at most {n}")
    _note(f"note: trainer.batch_size={batch_size} is larger than the {n} training examples "
          f"of dataset={dataset}: one step per epoch, padded to {batch_size} rows")


@functools.cache
def _note(message: str) -> None:
    """Log ``message`` once per process (a population builds every member alike)."""
    log.info(message)


def _check_encoder_fits(encoder: Any, data: Any, run: Any) -> None:
    """:func:`snntrain.config.encoder_mismatch` on the loaded data (a user's config built
    without :func:`snntrain.config.check_groups`)."""
    if (msg := encoder_mismatch(encoder.name, run.dataset["name"], run.T, data.temporal,
                                data.image_shape)) is not None:
        raise ConfigError(msg)


def fingerprint(exp: Experiment) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed: parameter shapes, the data layout, and
    what the run compares (surrogate, neuron, T, encoder), so that a run directory holds one
    configuration's training. Not ``lr``, ``epochs`` or the devices: those may change on
    resume."""
    fp = {f"param {k}": v for k, v in ckpt_lib.shapes_of(exp.params).items()}
    fp.update({"dataset": exp.data.name.split(":")[0], "train examples": len(exp.data.train),
               "batch_size": exp.batch_size, "seed": exp.seed,
               "surrogate": repr(exp.surrogate), "T": exp.T, **_model_dynamics(exp.run),
               "encoder": dict(exp.run.encoder),
               # what the data is and how it is read (binning, augmentation, splits), not
               # where it lies: a copy in another data_dir or cache resumes
               "dataset settings": {k: v for k, v in plain(exp.run.dataset).items()
                                    if k not in DATA_LOCATION_KEYS}})
    identity = getattr(exp.data.train, "identity", None)
    if isinstance(identity, str):  # the examples themselves: a replaced file is other data
        fp[ckpt_lib.DATA_IDENTITY] = identity
    # the splits it selects and reports on: another test file mixed two test sets in the
    # epoch records of one run
    evals = [getattr(s, "identity", None) for s in (exp.data.val, exp.data.test) if s is not None]
    if all(isinstance(i, str) for i in evals):
        fp[ckpt_lib.EVAL_IDENTITY] = content_hash(evals)
    # the settings that shape the optimizer's state: a resume with another one cannot read it
    # (orbax's tree mismatch read as a corrupt checkpoint, and the run restarted from step 0)
    opt = exp.run.optimizer
    fp["optimizer"] = _optimizer_state_shape(opt)
    if fp["optimizer"]["schedule"] != "constant":
        # the schedule decays over the whole run: another trainer.epochs is another schedule
        fp["optimizer"][SCHEDULE_STEPS] = exp.total_steps
    # what the training minimises and how it steps (all but optimizer.lr, which may change),
    # and the compute dtype: a resume with other values trained one run under two configs
    fp["optimizer settings"] = {k: v for k, v in plain(opt).items() if k != "lr"}
    fp["loss"] = {"rate_reg.weight": float(exp.run.loss.rate_reg_weight),
                  "rate_reg.target": float(exp.run.loss.rate_reg_target)}
    fp["trainer.dtype"] = str(exp.run.trainer.dtype)
    # what the model was built for: reads a run's parameters without its data (params_of)
    fp[MODEL_INPUT] = {"in_shape": [int(d) for d in exp.data.image_shape],
                       "n_classes": int(exp.data.n_classes)}
    return fp


MODEL_INPUT = "model input"


def _model_dynamics(run: Any) -> dict[str, Any]:
    """The fingerprint's neuron and model (readout, norm, pooling, ...): what the model's
    forward pass computes, not how (:data:`MODEL_COMPUTATION_KEYS`)."""
    return {"neuron": dict(run.model.get("neuron") or {}),
            "model": {k: v for k, v in plain(run.model).items()
                      if k not in (*MODEL_COMPUTATION_KEYS, "neuron")}}


def _optimizer_state_shape(opt: Any) -> dict[str, str]:
    """The optimizer settings that shape its state (a checkpoint's must match to be read)."""
    return {"name": str(opt["name"]), "schedule": str(opt.get("schedule", "constant")),
            "grad_clip": "set" if opt.get("grad_clip") else "null",
            **({"momentum": "set" if opt.get("momentum") else "null"} if "momentum" in opt
               else {})}


# model keys that choose how the model is computed, not what it computes: may change on resume
MODEL_COMPUTATION_KEYS = ("conv_method", "remat_chunk")
SCHEDULE_STEPS = "schedule length (trainer.epochs x steps per epoch)"
# dataset keys that say where the data lies or how it is stored, not what it is
DATA_LOCATION_KEYS = ("name", "data_dir", "path", "cache", "cache_dir", "in_memory", "download")


def device_info(dp: par.DataParallel) -> dict[str, Any]:
    d = dp.local_devices[0]
    return {"platform": d.platform, "device_kind": d.device_kind, "devices": dp.n_devices,
            "processes": dp.process_count, "parallel": dp.mode, "jax": jax.__version__,
            "host": socket.gethostname(), "python": platform.python_version()}


def params_of(run_dir: str | Path, cfg: DictConfig | None = None) -> Any:
    """The newest parameters saved in ``run_dir`` (for analysis in a notebook)."""
    return _restored(run_dir, cfg)[1]


def model_of(run_dir: str | Path, cfg: DictConfig | None = None) -> nnx.Module:
    """The model of ``run_dir`` with its newest parameters (for inference, or NIR export)."""
    model, params = _restored(run_dir, cfg)
    graphdef, _, rest = nnx.split(model, nnx.Param, ...)
    return nnx.merge(graphdef, params, rest)


def _restored(run_dir: str | Path, cfg: DictConfig | None) -> tuple[nnx.Module, Any]:
    """The run's model (as built) and its newest parameters. Without the data when the
    checkpoint records what the model was built for (its ``model input``): a run on a file
    that has moved since, or with a relative ``dataset.path``, still loads."""
    from omegaconf import OmegaConf

    from snntrain.runs import population_axes

    run_dir = Path(run_dir)
    cfg = cfg if cfg is not None else OmegaConf.load(run_dir / "config.yaml")
    pop = OmegaConf.select(cfg, "trainer.population", default=None)
    pop = OmegaConf.to_container(pop, resolve=True) if OmegaConf.is_config(pop) else pop
    if population_axes({"trainer": {"population": pop}}):
        raise ValueError(f"{run_dir} holds a population: snntrain.population.params_of(run_dir) "
                         "gives every member's parameters")  # (was a resume hint)
    ckpts = ckpt_lib.Checkpoints(run_dir / "checkpoints", write=False)
    saved = newest_fingerprint(ckpts)
    if MODEL_INPUT in saved:  # the model alone, as it was built: the data is not needed
        run = validate(cfg)
        try:
            model = models.from_config(run.model, tuple(saved[MODEL_INPUT]["in_shape"]),
                                       saved[MODEL_INPUT]["n_classes"], run.seed)
        except (ValueError, TypeError) as e:
            raise ConfigError(str(e)) from None
        params = nnx.split(model, nnx.Param, ...)[1]
        tx = optim.from_config(run.optimizer, total_steps=_warmup_steps(run) + 2)
        # what shapes the state must match the checkpoint (another cfg than the run's: one
        # line naming the key, not an orbax error read as a corrupt checkpoint)
        mine = {f"param {k}": v for k, v in ckpt_lib.shapes_of(params).items()}
        mine["optimizer"] = _optimizer_state_shape(run.optimizer)  # (not b1, eps, ...)
        # and the model's dynamics: the weights in a model with another beta or threshold
        # (exported to NIR) gave other spikes without a word
        # (not the surrogate: it shapes gradients only, and the weights may be studied under
        # another one)
        mine.update(_model_dynamics(run))
        theirs = {k: saved.get(k, "<missing>") for k in mine}
        if isinstance(theirs["optimizer"], dict):
            theirs["optimizer"] = {k: v for k, v in theirs["optimizer"].items()
                                   if k != SCHEDULE_STEPS}
        if theirs != mine:
            step = ckpts.steps()[-1]
            raise ckpt_lib.IncompatibleCheckpoint(
                f"checkpoint {ckpts.directory / str(step)} is from another config than the one "
                f"given: {ckpt_lib.describe_difference(theirs, mine, 'checkpoint has', 'cfg has')}")
        target, fp = TrainState(jnp.zeros((), jnp.int32), params, tx.init(params)), saved
    else:  # a checkpoint from before the model's input was recorded
        exp = build(cfg)
        model, target, fp = exp.model(), exp.init_state(), fingerprint(exp)
    restored = ckpts.restore(target, fp)
    if restored is None:
        member = run_dir.absolute().parent.name == "members"
        raise FileNotFoundError(
            f"no checkpoint in {run_dir / 'checkpoints'}" + (
                f" (a population member's are its population's: snntrain.population.params_of("
                f"'{run_dir.absolute().parent.parent}')['{run_dir.name}'])" if member else ""))
    return model, restored[0].params


def newest_fingerprint(ckpts: ckpt_lib.Checkpoints) -> dict[str, Any]:
    """The fingerprint of the newest readable checkpoint (empty: none)."""
    return dict(ckpts.newest_meta().get("fingerprint", {}))


def _warmup_steps(run: Any) -> int:
    return int(run.optimizer.get("warmup_steps") or 0)
