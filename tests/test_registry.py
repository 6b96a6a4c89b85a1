"""snntrain.registry: one name -> builder mechanism for every config group, with one-line errors.

The messages are written out here in full, so a change to any of them shows."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import compose
from omegaconf import OmegaConf

from snntrain import data, encoding, models, neurons, optim, surrogates
from snntrain.config import ConfigError
from snntrain.paths import CONFIG_DIR
from snntrain.registry import Registry


@dataclasses.dataclass(frozen=True)
class Spring:
    stiffness: float = 1.0
    damping: float = 0.0


def _pendulum(length: float, *, gravity: float = 9.81) -> tuple[float, float]:
    return length, gravity


def _anything(**kwargs):
    return kwargs


def _things() -> Registry:
    return Registry("thing", {"spring": Spring, "pendulum": _pendulum, "open": _anything})


# ---- the mechanism ----------------------------------------------------------------------


def test_build_pops_name_and_passes_the_rest():
    things = _things()
    assert things.build({"name": "spring", "damping": 0.5}) == Spring(1.0, 0.5)
    assert things.build({"name": "pendulum", "length": 2.0}) == (2.0, 9.81)
    assert things.create("pendulum", length=1.0, gravity=1.6) == (1.0, 1.6)
    assert things.build({"name": "open", "a": 1, "b": 2}) == {"a": 1, "b": 2}  # takes **kwargs


def test_unknown_name_lists_the_valid_names_sorted():
    valid = "valid: open, pendulum, spring$"
    with pytest.raises(ConfigError, match=r"^unknown thing 'rope'; " + valid):
        _things().build({"name": "rope"})
    with pytest.raises(ConfigError, match=r"^thing.name is missing; " + valid):
        _things().build({"damping": 1.0})


def test_unknown_parameter_lists_the_valid_ones_in_declaration_order():
    with pytest.raises(
        ConfigError, match=r"^thing 'spring' takes no parameter 'mass'; valid: stiffness, damping$"
    ):
        _things().build({"name": "spring", "mass": 2.0})
    with pytest.raises(ConfigError, match=r"takes no parameter 'mass'; valid: length, gravity$"):
        _things().create("pendulum", length=1.0, mass=2.0)
    empty = Registry("thing", {"unit": lambda: 1})
    with pytest.raises(ConfigError, match=r"^thing 'unit' takes no parameter 'x'; valid: \(none\)"):
        empty.create("unit", x=1)


def test_parameters_the_caller_gives_are_not_config_keys():
    things = _things()
    assert things.build({"name": "pendulum"}, length=3.0) == (3.0, 9.81)
    with pytest.raises(ConfigError, match=r"takes no parameter 'length'; valid: gravity$"):
        things.build({"name": "pendulum", "length": 1.0}, length=3.0)
    hidden = Registry("thing", {"pendulum": _pendulum}, internal=("gravity",))
    assert hidden.params("pendulum") == ("length",)


class ShapeError(ValueError):
    pass


def test_register_decorator_error_class_and_hint():
    reg: Registry = Registry("shape", error=ShapeError, hint=" (or draw one)")

    @reg.register("square")
    @dataclasses.dataclass(frozen=True)
    class Square:
        side: float = 1.0

    assert reg["square"] is Square and reg.names() == ("square",) and list(reg) == ["square"]
    assert reg.build({"name": "square", "side": 2.0}) == Square(2.0)
    with pytest.raises(ShapeError, match=r"^unknown shape 'circle'; valid: square \(or draw one"):
        reg.lookup("circle")
    with pytest.raises(ValueError, match="^shape 'square' is registered twice$"):
        reg.add("square", Square)
    with pytest.raises(TypeError):
        reg["circle"] = Square  # read-only mapping: entries come through add / register


def test_build_reads_a_dictconfig_with_interpolations():
    cfg = OmegaConf.create({"base": 2.0, "spring": {"name": "spring", "stiffness": "${base}"}})
    assert _things().build(cfg.spring) == Spring(2.0, 0.0)


# ---- every group uses it ----------------------------------------------------------------


def test_every_name_to_class_group_is_a_registry_with_the_config_files_names():
    groups = {
        "surrogate": surrogates.REGISTRY,
        "model/neuron": neurons.NEURONS,
        "encoder": encoding.ENCODERS,
        "optimizer": optim.OPTIMIZERS,
        "dataset": data.LOADERS,
    }
    for group, registry in groups.items():
        assert isinstance(registry, Registry), group
        names = sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
        assert tuple(names) == registry.names(), group
        for name in names:  # each file says `name: <its own name>`
            assert OmegaConf.load(CONFIG_DIR / group / f"{name}.yaml").name == name
    assert set(models.MODELS.names()) == {"mlp", "recurrent", "conv"}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: neurons.get("izh"), "unknown neuron 'izh'; valid: alif, if, lif"),
        (
            lambda: encoding.get("delta"),
            "unknown encoder 'delta'; valid: direct, latency, none, rate",
        ),
        (
            lambda: models.create("transformer", (8, 8, 1), 10, seed=0),
            "unknown model 'transformer'; valid: conv, mlp, recurrent",
        ),
        (lambda: surrogates.get("nope"), "unknown surrogate 'nope'; valid: arctan, boxcar, "),
        (lambda: optim.make("rmsprop"), "unknown optimizer 'rmsprop'; valid: adam, adamw, sgd"),
        (
            lambda: optim.make("adam", schedule="linear"),
            "unknown optimizer.schedule 'linear'; valid: constant, cosine",
        ),
        (
            lambda: optim.make("sgd", nesterov_momentum=0.9),
            "optimizer 'sgd' takes no parameter 'nesterov_momentum'; valid: lr, schedule, "
            "warmup_steps, grad_clip, weight_decay, momentum, nesterov",
        ),
        (
            lambda: models.create("mlp", (8, 8, 1), 10, seed=0, hiden=[4]),
            "model 'mlp' takes no parameter 'hiden'; valid: hidden, neuron, readout,",
        ),
    ],
)
def test_each_group_gives_the_one_line_error(build, message):
    with pytest.raises(ConfigError) as err:
        build()
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_datasets_raise_a_dataset_error():
    with pytest.raises(data.DatasetError, match=r"^unknown dataset 'mnst'; valid: arrays, "):
        data.from_config({"name": "mnst"}, seed=0)
    with pytest.raises(data.DatasetError, match="'digits' takes no parameter 'seed'"):
        data.from_config({"name": "digits", "seed": 1}, seed=0)  # the run's seed is given


# ---- optimizers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.name=rmsprop", "unknown optimizer 'rmsprop'; valid: adam, adamw, sgd"),
        ("optimizer.schedule=linear", "unknown optimizer.schedule 'linear'; valid: constant, co"),
        ("+optimizer.b3=0.5", "unknown key optimizer.b3; valid: b1, b2, eps, eps_root, grad_clip"),
    ],
)
def test_bad_optimizer_config_stops_the_build_in_one_line(override, message):
    from snntrain import train

    with pytest.raises(ConfigError) as err:
        train.build(compose(override))
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("warmup", [2, 0])
def test_cosine_schedule_by_hand(warmup):
    # sgd on f(p) = p (gradient 1): the step t update is -lr(t) with
    # lr(t) = lr * (t / warmup) during warm-up, then lr * (1 + cos(pi (t - w) / (T - w))) / 2.
    lr, total = 0.1, 6
    tx = optim.from_config(
        {"name": "sgd", "lr": lr, "schedule": "cosine", "warmup_steps": warmup, "momentum": None},
        total_steps=total,
    )
    state, p, got = tx.init(0.0), np.float32(0.0), []
    for _ in range(total):
        updates, state = tx.update(np.float32(1.0), state, p)
        got.append(-float(updates))
    want = [lr * t / warmup for t in range(warmup)] + [
        lr * (1 + np.cos(np.pi * (t - warmup) / (total - warmup))) / 2 for t in range(warmup, total)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def test_warmup_is_checked_against_the_runs_length():
    from snntrain.experiment import build

    build(compose("optimizer.schedule=cosine", "optimizer.warmup_steps=5"))  # 21 steps
    with pytest.raises(ConfigError, match=r"^optimizer.warmup_steps=5000 must be below the "
                                          r"run's 21 steps \(trainer.epochs x steps per epoch\)$"):
        build(compose("optimizer.schedule=cosine", "optimizer.warmup_steps=5000"))
    # the constant schedule has no warm-up (the steps were ignored without a word)
    with pytest.raises(ConfigError, match=r"^optimizer.warmup_steps=5 needs optimizer.schedule="
                                          r"cosine \(the constant schedule has no warm-up\)"):
        build(compose("optimizer.warmup_steps=5"))


def test_adamw_gets_weight_decay_and_clipping_chains_first():
    tx = optim.make("adamw", 1e-2, weight_decay=0.5, grad_clip=1.0)
    params = {"fc0": {"kernel": np.float32(2.0)}}
    updates, _ = tx.update({"fc0": {"kernel": np.float32(10.0)}}, tx.init(params), params)
    # clipped gradient 1 -> the first Adam step is -lr * sign(g); decay adds -lr * wd * w
    assert float(updates["fc0"]["kernel"]) == pytest.approx(-1e-2 * (1.0 + 0.5 * 2.0), rel=1e-5)
    assert isinstance(optim.make("adam"), optax.GradientTransformation)


def test_adamw_decays_the_synaptic_weights_only():
    """AdamW decayed every parameter: with zero gradients and weight_decay 0.5 at lr 1e-2,
    100 steps took a learned beta from 0.90 to 0.79 (its logit decays towards beta = 0.5) and
    a learned threshold from 1.0 to 0.61 (towards 0, where a neuron fires at every step)
    (reviewer). Only the kernels decay now: (1 - lr * wd)**100 = 0.6058."""
    from snntrain import train

    exp = train.build(compose("model=conv", "model.channels=[2,2]", "model.norm=layer",
                              "model.learn_beta=true", "model.learn_threshold=true",
                              "optimizer=adamw", "optimizer.weight_decay=0.5",
                              "optimizer.lr=1e-2", "optimizer.schedule=constant", tiny=False))
    tx, params = exp.tx, exp.params
    state, zeros = tx.init(params), jax.tree.map(jnp.zeros_like, params)
    new = params
    for _ in range(100):
        updates, state = tx.update(zeros, state, new)
        new = optax.apply_updates(new, updates)
    decayed = []
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(params), jax.tree.leaves(new),
                            strict=True):
        name = jax.tree_util.keystr(path)
        if "kernel" in name:
            np.testing.assert_allclose(b, a * (1 - 1e-2 * 0.5) ** 100, rtol=1e-5)
            decayed.append(name)
        else:  # biases, norm scales, beta_logit, threshold
            np.testing.assert_array_equal(b, a)
    assert len(decayed) == 3, decayed  # conv0, conv1, readout


# ---- surrogates and neurons from their config --------------------------------------------


def test_surrogate_from_config_equals_get():
    assert surrogates.from_config({"name": "softsign", "alpha": 2.0}) == surrogates.SoftSign(2.0)
    cfg = compose("surrogate=multi_gaussian_grad", "surrogate.h=0.3").surrogate  # a DictConfig
    assert surrogates.from_config(cfg) == surrogates.MultiGaussianGrad(h=0.3)
    with pytest.raises(ValueError, match=r"^straight_through takes no parameter 'alpha'; valid"):
        surrogates.from_config({"name": "straight_through", "alpha": 2.0})
    with pytest.raises(ValueError, match=r"^surrogate.name is missing; valid: arctan, "):
        surrogates.from_config({"alpha": 2.0})


def test_neuron_from_config_and_the_renamed_kind_key():
    for name in ("lif", "if", "alif"):
        cfg = compose(f"model/neuron={name}").model.neuron
        assert cfg.name == name and "kind" not in cfg
        assert type(neurons.from_config(cfg)) is neurons.NEURONS[name]
    assert neurons.from_config(None) == neurons.LIF()
    assert neurons.from_config({"beta": 0.5}) == neurons.LIF(beta=0.5)  # no name: lif
    with pytest.raises(
        ConfigError, match=r"^model.neuron.kind was renamed to model.neuron.name \(write name: alif"
    ):
        neurons.from_config({"kind": "alif", "beta": 0.5})


def test_an_old_neuron_config_with_kind_stops_the_build_in_one_line():
    from snntrain import train

    with pytest.raises(ConfigError, match=r"^model.neuron.kind was renamed to model.neuron.name"):
        train.build(compose("+model.neuron.kind=alif"))
