"""The compiled step of a population: members stacked along a leading axis ``K``.

:func:`build_program` compiles the solo train and evaluation steps of
:mod:`snntrain.steps` (unchanged) mapped over the members, with what differs per member as
arguments: the PRNG key, the batch, the surrogate (:func:`stack_surrogates`; several types
through :class:`SwitchSurrogate`), the learning rate (:func:`per_member_lr`) and the neuron
values (:func:`with_neuron_values`). ``vectorize`` chooses the map (:func:`mapped`): ``lax.map``
runs each member's solo operations, bit for bit; ``vmap`` batches them. On several devices
the mapped step is a ``jit(shard_map)`` over a ``members x data`` mesh (:func:`choose_mesh`,
:func:`snntrain.parallel.shard_step`). Used by :mod:`snntrain.population`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from snntrain import models, optim, surrogates
from snntrain import parallel as par
from snntrain.errors import ConfigError
from snntrain.experiment import Experiment
from snntrain.registry import plain
from snntrain.steps import TrainState, make_eval_step, make_train_step


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SwitchSurrogate(surrogates.Surrogate):
    """The surrogate of a member in a population of several surrogate types.

    Forward the exact Heaviside step of every surrogate; backward ``branches[index]``'s
    g'(x), chosen by ``lax.switch`` (a conditional inside ``lax.map``: only the member's own
    branch runs; a select of every branch under ``vmap``). ``branches`` holds one instance of
    every type in the population (the member's own with its parameters).
    """

    index: jax.Array
    branches: tuple[surrogates.Surrogate, ...]
    name = "switch"

    def __post_init__(self) -> None:  # fields are an index and surrogates, not parameters
        pass

    def surrogate_grad(self, x: jax.Array) -> jax.Array:
        fns = [lambda x, b=b: b.surrogate_grad(x).astype(x.dtype) for b in self.branches]
        return jax.lax.switch(self.index, fns, x)


def stack(trees: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def _static_mismatch(a: surrogates.Surrogate, b: surrogates.Surrogate) -> ConfigError:
    """The members' surrogates ``a`` and ``b`` of one type differ in a static setting."""
    import dataclasses

    if type(a) is not type(b):  # one normalized (surrogates.Normalized), one not
        keys, which = ["normalize"], "surrogate.normalize (true and false)"
    else:
        keys = [f.name for f in dataclasses.fields(a)
                if getattr(a, f.name) != getattr(b, f.name)
                and not isinstance(getattr(a, f.name), (float, jax.Array))]
        which = ", ".join(f"surrogate.{k} ({getattr(a, k)!r} and {getattr(b, k)!r})"
                          for k in keys) or "an integer parameter, or surrogate.normalize"
    return ConfigError(f"trainer.population: the members' {a.name} surrogates differ in "
                       f"{which}, which fixes the compiled program; use a multirun for it "
                       f"(python -m snntrain -m surrogate.{keys[0] if keys else '<key>'}=...)")


def stack_surrogates(members_surrogates: Sequence[surrogates.Surrogate]) -> Any:
    """The members' surrogates as one pytree with a leading member axis.

    One type: the instances stacked (their float parameters become length-K arrays). Several
    types: a :class:`SwitchSurrogate` per member, stacked.
    """
    ss = list(members_surrogates)
    kinds = sorted({s.name for s in ss})
    first = {kind: next(s for s in ss if s.name == kind) for kind in kinds}
    for s in ss:
        if jax.tree.structure(s) != jax.tree.structure(first[s.name]):
            raise _static_mismatch(first[s.name], s)
    if len(kinds) == 1:
        return stack(ss)
    switches = [SwitchSurrogate(jnp.int32(kinds.index(s.name)),
                                tuple(s if s.name == kind else first[kind] for kind in kinds))
                for s in ss]
    return stack(switches)


class LrState(NamedTuple):
    """Optimizer state of :func:`per_member_lr`: the member's learning rate and the state of
    the configured optimizer."""

    lr: jax.Array
    inner: Any


def per_member_lr(opt_cfg: dict[str, Any], total_steps: int) -> optax.GradientTransformation:
    """The configured optimizer (:func:`snntrain.optim.make`) with its learning rate read from
    its state, so each member of one program steps with its own rate.

    ``update`` builds the optimizer with the traced rate: the same arithmetic as the solo
    run's (``updates * -lr`` for a constant rate; ``optimizer.schedule=cosine`` evaluates
    :func:`snntrain.optim.make`'s schedule with the traced peak, the solo run's operations on
    the same float32 values), hence bit-identical updates. ``init`` stores ``opt_cfg["lr"]``.
    """
    opt_cfg = dict(opt_cfg)
    name, lr = opt_cfg.pop("name"), opt_cfg.pop("lr")

    def make(rate):
        return optim.make(name, lr=rate, total_steps=total_steps, **opt_cfg)

    def init(params):
        return LrState(jnp.asarray(lr, jnp.float32), make(lr).init(params))

    def update(updates, state, params=None):
        updates, inner = make(state.lr).update(updates, state.inner, params)
        return updates, LrState(state.lr, inner)

    return optax.GradientTransformation(init, update)


def with_neuron_values(exp: Experiment) -> tuple[Any, Any, Any]:
    """``(graphdef, params, rest)`` of ``exp``'s model with every spiking layer's fixed
    ``beta``/``threshold`` as arrays in ``rest`` (``<name>_value``), so they can differ per
    member of one program."""
    model = exp.model()
    for _, module in nnx.iter_modules(model):
        if isinstance(module, models.SpikingNeurons):
            for name, value in module.neuron.default_params().items():
                if name in ("beta", "threshold"):
                    setattr(module, f"{name}_value", nnx.Variable(jnp.float32(value)))
    return nnx.split(model, nnx.Param, ...)


def mapped(fn: Callable, vectorize: int, k: int) -> Callable:
    """``fn`` over a leading member axis: ``lax.map`` (``vectorize=1``, even for one member:
    a vmap of one is not its solo run bit for bit), ``vmap`` of all members
    (``vectorize >= k``), or ``lax.map`` of ``vmap``-ed groups of ``vectorize``."""
    if vectorize == 1:
        return lambda *xs: jax.lax.map(lambda x: fn(*x), xs)
    if vectorize >= k:
        return jax.vmap(fn)
    return lambda *xs: jax.lax.map(lambda x: fn(*x), xs, batch_size=vectorize)


# ---- the members x data device mesh ---------------------------------------------------------

MEMBERS = "members"  # the mesh axis the members are split over; the batch goes over par.AXIS


def choose_mesh(devices: int, members: int, batch_size: int) -> tuple[int, int]:
    """The ``(members, data)`` mesh shape for ``members`` members of batch ``batch_size`` on
    at most ``devices`` devices: of the shapes ``(m, d)`` with ``m | members``,
    ``d | batch_size`` and ``m * d <= devices``, the one that uses the most devices, then the
    one with the most on the members axis (members need no communication; the data axis
    all-reduces every step's gradients)."""
    shapes = [(m, d) for m in range(1, devices + 1) for d in range(1, devices // m + 1)
              if members % m == 0 and batch_size % d == 0]
    return max(shapes, key=lambda md: (md[0] * md[1], md[0]))


def make_mesh(shape: tuple[int, int]) -> jax.sharding.Mesh:
    """A ``members x data`` mesh of the first ``m * d`` local devices."""
    m, d = shape
    return jax.make_mesh(shape, (MEMBERS, par.AXIS), axis_types=(AxisType.Auto,) * 2,
                         devices=jax.local_devices()[:m * d])


@dataclasses.dataclass
class Program:
    """Members trained by one compiled step: their positions in the group, their stacked
    per-member arguments, and the compiled train and evaluation steps; with a ``mesh``
    (``members x data``), where the stacked arrays and the batches live."""

    index: list[int]
    args: dict[str, Any]
    keys: jax.Array
    step: Callable
    eval: Callable
    init: Any
    memory: dict[str, int]
    mesh: jax.sharding.Mesh | None = None
    pad: int = 0  # copies of the last member that fill the mesh's last device (not recorded)

    @property
    def mesh_shape(self) -> tuple[int, int]:
        return (1, 1) if self.mesh is None else (self.mesh.shape[MEMBERS],
                                                 self.mesh.shape[par.AXIS])

    @property
    def rows(self) -> list[int]:
        """The member (position in the group) each row of the compiled step trains: the
        program's members, then :attr:`pad` copies of the last."""
        return padded_rows(self.index, self.pad)

    def padded(self, tree: Any) -> Any:
        """A stacked tree of the program's ``K`` members with :attr:`pad` copies of the last
        appended (the rows the compiled step takes)."""
        if not self.pad:
            return tree
        return jax.tree.map(lambda x: np.concatenate([np.asarray(x)]
                                                     + [np.asarray(x)[-1:]] * self.pad), tree)

    def unpadded(self, tree: Any) -> Any:
        """The ``K`` members' rows of a stacked tree (as checkpoints hold them: a run resumed
        on another device count pads again)."""
        if not self.pad:
            return tree
        return jax.tree.map(lambda x: np.asarray(x)[:len(self.index)], tree)

    def put_members(self, tree: Any) -> Any:
        """Place a stacked per-row tree (leading axis :attr:`rows`) as the step expects it."""
        if self.mesh is None:
            return tree
        return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec(MEMBERS)))

    def put_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Place the rows' batches (``rows x B x ...``): rows and examples split."""
        if self.mesh is None:
            return batch
        return jax.device_put(batch, NamedSharding(self.mesh, PartitionSpec(MEMBERS, par.AXIS)))


def padded_rows(index: list[int], pad: int) -> list[int]:
    """``index`` with ``pad`` copies of its last member (see :attr:`Program.rows`)."""
    return index + index[-1:] * pad


def member_tx(exp: Experiment, lr_varies: bool) -> optax.GradientTransformation:
    return per_member_lr(plain(exp.run.optimizer), exp.total_steps) if lr_varies \
        else exp.tx


def initial_state(exps: Sequence[Experiment], lr_varies: bool) -> dict[str, Any]:
    """The members' initial states (each as its solo run's), stacked, and all alive."""
    states = [TrainState(jnp.zeros((), jnp.int32), e.params, member_tx(e, lr_varies).init(
        e.params)) for e in exps]
    return {"train": stack(states), "alive": jnp.ones((len(exps),), bool)}


def build_program(exps: Sequence[Experiment], index: list[int], *, vectorize: int,
                  lr_varies: bool, neuron_varies: bool, freeze: bool,
                  mesh_shape: tuple[int, int] = (1, 1), pad: int = 0) -> Program:
    """Compile the train and evaluation steps of the members ``index`` of ``exps``.

    ``mesh_shape = (m, d)`` other than ``(1, 1)``: one ``jit(shard_map)`` over a
    ``members x data`` mesh (:func:`snntrain.parallel.shard_step`); each device maps the solo
    step over its ``K / m`` members on its ``B / d`` rows of their batches, and the
    gradients and metric sums are ``psum``-reduced over the data axis only (``d > 1``).
    ``pad``: the step trains that many copies of the last member besides (so that ``m``
    divides the rows; :attr:`Program.pad`), whose rows nothing reads.
    """
    sub = [exps[i] for i in padded_rows(index, pad)]
    base, k = sub[0], len(sub)
    args: dict[str, Any] = {"surrogate": stack_surrogates([e.surrogate for e in sub])}
    if neuron_varies:
        split = [with_neuron_values(e) for e in sub]
        base = dataclasses.replace(base, graphdef=split[0][0])
        args["rest"] = stack([s[2] for s in split])
    if lr_varies:
        base = dataclasses.replace(base, tx=member_tx(sub[0], lr_varies))
    init = initial_state(sub, lr_varies)

    def member_exp(member_args):
        return dataclasses.replace(base, rest=member_args["rest"]) if "rest" in member_args \
            else base

    def member_step(state, batch, key, member_args, axis_name=None):
        new, metrics = make_train_step(member_exp(member_args))(
            state["train"], batch, key, member_args["surrogate"], axis_name=axis_name)
        alive = state["alive"]
        new = jax.tree.map(lambda a, b: jnp.where(alive, a, b), new, state["train"])
        return {"train": new, "alive": alive & metrics["finite"] if freeze else alive}, metrics

    def member_eval(params, batch, key, member_args, axis_name=None):
        return make_eval_step(member_exp(member_args))(params, batch, key,
                                                       member_args["surrogate"],
                                                       axis_name=axis_name)

    keys = jnp.stack([jax.random.PRNGKey(e.seed) for e in sub])
    x = np.asarray(base.data.train[np.zeros(1, np.int64)][0])
    batch = {"x": jax.ShapeDtypeStruct((k, base.batch_size, *x.shape[1:]), jnp.float32),
             "y": jax.ShapeDtypeStruct((k, base.batch_size), jnp.int32),
             "mask": jax.ShapeDtypeStruct((k, base.batch_size), jnp.float32),
             "index": jax.ShapeDtypeStruct((k, base.batch_size), jnp.int32)}
    if mesh_shape == (1, 1):
        mesh = None
        train_fn = jax.jit(mapped(member_step, vectorize, k), donate_argnums=(0,))
        eval_fn = jax.jit(mapped(member_eval, vectorize, k))
    else:
        mesh, (m, d) = make_mesh(mesh_shape), mesh_shape
        axis = par.AXIS if d > 1 else None  # one row shard: the solo step's operations
        local = functools.partial(mapped, vectorize=vectorize, k=k // m)
        per_member, rows = PartitionSpec(MEMBERS), PartitionSpec(MEMBERS, par.AXIS)
        specs = (per_member, rows, per_member, per_member)
        train_fn = par.shard_step(local(functools.partial(member_step, axis_name=axis)), mesh,
                                  specs, (per_member, per_member), donate=(0,))
        eval_fn = par.shard_step(local(functools.partial(member_eval, axis_name=axis)), mesh,
                                 specs, per_member)
    program = Program(index, args, keys, train_fn, eval_fn, init, {}, mesh, pad)
    program.init, program.keys, program.args = (program.put_members(t) for t in (init, keys,
                                                                                 args))
    program.step = train_fn.lower(program.init, batch, program.keys, program.args).compile()
    program.eval = eval_fn.lower(program.init["train"].params, batch, program.keys,
                                 program.args).compile()
    # per device; on a CPU the mesh's virtual devices share the host's memory
    devices = 1 if mesh is None or mesh.devices.flat[0].platform != "cpu" else mesh.size
    program.memory = {name: n * devices for name, n in par.step_memory(
        program.step.memory_analysis(), program.eval.memory_analysis()).items()}
    return program
