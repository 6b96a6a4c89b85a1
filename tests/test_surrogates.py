"""snntrain.surrogates: the formulas, the custom derivative, the contract, registry and configs.

Expected numbers come from the catalogue of issue 2, written out here with the ``math`` module,
never from the code under test. Every test that is parametrised over names uses the registry, so
a new surrogate is covered automatically (and ``SPEC`` / ``HAND_GRAD`` fail until it is listed).
float64 checks run inside ``jax.enable_x64(True)``; the rest of the session stays float32.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from omegaconf import OmegaConf

from snntrain import surrogates as S

Array = jax.Array

CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "surrogate"
NAMES = S.available()

# config name -> (class name, functional form, defaults), as in the issue's table.
SPEC = {
    "sigmoid": ("Sigmoid", "sigmoid", {"alpha": 4.0}),
    "softsign": ("SoftSign", "soft_sign", {"alpha": 1.0}),
    "arctan": ("Arctan", "arctan", {"alpha": 1.0}),
    "erf": ("ERF", "erf", {"alpha": 1.0}),
    "piecewise_quadratic": ("PiecewiseQuadratic", "piecewise_quadratic", {"alpha": 1.0}),
    "piecewise_exp": ("PiecewiseExp", "piecewise_exp", {"alpha": 1.0}),
    "nonzero_sign_log": ("NonzeroSignLog", "nonzero_sign_log", {"alpha": 1.0}),
    "piecewise_leaky_relu": ("PiecewiseLeakyRelu", "piecewise_leaky_relu", {"c": 0.01, "w": 1.0}),
    "leaky_relu": ("LeakyRelu", "leaky_relu", {"alpha": 0.1, "beta": 1.0}),
    "log_tailed_relu": ("LogTailedRelu", "log_tailed_relu", {"alpha": 0.0}),
    "relu_grad": ("ReluGrad", "relu_grad", {"alpha": 0.3, "width": 1.0}),
    "gaussian_grad": ("GaussianGrad", "gaussian_grad", {"sigma": 0.5, "alpha": 0.5}),
    "multi_gaussian_grad": (
        "MultiGaussianGrad",
        "multi_gaussian_grad",
        {"h": 0.15, "s": 6.0, "sigma": 0.5, "scale": 0.5},
    ),
    "inv_square_grad": ("InvSquareGrad", "inv_square_grad", {"alpha": 100.0}),
    "slayer_grad": ("SlayerGrad", "slayer_grad", {"alpha": 1.0}),
    "squarewave_fourier_series": (
        "SquarewaveFourierSeries",
        "squarewave_fourier_series",
        {"n": 2, "t_period": 8.0},
    ),
    "s2nn": ("S2NN", "s2nn", {"alpha": 4.0, "beta": 1.0, "epsilon": 1e-8}),
    "q_pseudo_spike": ("QPseudoSpike", "q_pseudo_spike", {"alpha": 2.0}),
    "q_pseudo_spike_paper": ("QPseudoSpikePaper", "q_pseudo_spike_paper", {"alpha": 2.0}),
    "fast_sigmoid": ("FastSigmoid", "fast_sigmoid", {"alpha": 25.0}),
    "straight_through": ("StraightThrough", "straight_through", {}),
    "boxcar": ("Boxcar", "boxcar", {"width": 1.0, "height": 1.0}),
}
GRAD_ONLY = {"relu_grad", "gaussian_grad", "multi_gaussian_grad", "inv_square_grad", "slayer_grad"}
WITH_FUN = [n for n in NAMES if n not in GRAD_ONLY]
# Validation rules of the issue; every other float parameter must be finite and > 0.
MAY_BE_ZERO = {
    ("leaky_relu", "alpha"),
    ("log_tailed_relu", "alpha"),
    ("piecewise_leaky_relu", "c"),
}
# h < 0 turns the side lobes positive: peak() (g'(0)) was 1.5e-21 for a true maximum of 3.99
NONNEGATIVE = {("s2nn", "epsilon"), ("multi_gaussian_grad", "h")}
ABOVE_ONE = {("q_pseudo_spike_paper", "alpha")}  # (α−1) divides


def fields(name: str) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(S.REGISTRY[name])


def scaled(name: str) -> dict:
    """Non-default parameters: every float default d becomes 1.5 d + 0.25, n becomes n + 1."""
    return {
        f.name: f.default + 1 if isinstance(f.default, int) else 1.5 * f.default + 0.25
        for f in fields(name)
    }


EXTRA = [
    ("q_pseudo_spike", {"alpha": 1.0}),  # the logarithmic special case of g
    ("q_pseudo_spike", {"alpha": 1.0 + 1e-9}),  # next to it: g must stay accurate
    ("q_pseudo_spike", {"alpha": 0.5}),
    ("q_pseudo_spike_paper", {"alpha": 1.1}),  # heavy tails, close to the pole at α = 1
    ("q_pseudo_spike_paper", {"alpha": 7.0}),
    ("leaky_relu", {"alpha": -0.2, "beta": 0.5}),
    ("log_tailed_relu", {"alpha": 0.3}),
    ("s2nn", {"epsilon": 0.0}),
    ("piecewise_quadratic", {"alpha": 2.0}),
    ("piecewise_leaky_relu", {"c": 0.0, "w": 0.5}),
    ("boxcar", {"width": 2.0, "height": 0.5}),
    ("squarewave_fourier_series", {"n": 5, "t_period": 3.0}),
    ("multi_gaussian_grad", {"h": 0.0}),
]
CASES = [(n, {}) for n in NAMES] + [(n, scaled(n)) for n in NAMES] + EXTRA
FUN_CASES = [pytest.param(n, p, id=f"{n}-{p}") for n, p in CASES if n not in GRAD_ONLY]

# Exact binary fractions in [-4, 4] (hitting 0 and the default kinks ±1/2, ±1 exactly) and
# random points.
XS = np.concatenate([np.arange(-64, 65) / 16, np.random.default_rng(0).uniform(-5, 5, 200)])


# float32 points shared by most tests (one shape: fewer compilations): steps of 1/16, so 0 and the
# default kinks ±1/2, ±1 are hit exactly, and every point is exact in bfloat16 and float16 too.
X = np.arange(-48, 49, dtype=np.float32) / 16


def normal(x: float, mean: float, std: float) -> float:
    return math.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def sig(z: float) -> float:
    return 1 / (1 + math.exp(-z))


E2 = math.exp(-2) / (1 + math.exp(-2)) ** 2  # σ(2)(1 − σ(2))
SQ2PI = math.sqrt(2 * math.pi)

# (name, params, x, g'(x)) from the issue's table, boundaries included.
HAND_GRAD = [
    ("sigmoid", {}, 0.0, 1.0),
    ("sigmoid", {}, 0.5, 4 * E2),
    ("sigmoid", {}, -0.5, 4 * E2),
    ("sigmoid", {"alpha": 2.0}, 0.0, 0.5),
    ("softsign", {}, 0.0, 0.5),
    ("softsign", {}, 1.0, 0.125),
    ("softsign", {}, -3.0, 1 / 32),
    ("softsign", {"alpha": 2.0}, 0.5, 0.25),
    ("arctan", {}, 0.0, 0.5),
    ("arctan", {}, 2 / math.pi, 0.25),
    ("arctan", {"alpha": 2.0}, -1 / math.pi, 0.5),
    ("erf", {}, 0.0, 1 / math.sqrt(math.pi)),
    ("erf", {}, -1.0, math.exp(-1) / math.sqrt(math.pi)),
    ("erf", {"alpha": 2.0}, 0.5, 2 * math.exp(-1) / math.sqrt(math.pi)),
    ("piecewise_quadratic", {}, 0.0, 1.0),
    ("piecewise_quadratic", {}, -0.25, 0.75),
    ("piecewise_quadratic", {}, 1.0, 0.0),  # |x| = 1/α
    ("piecewise_quadratic", {}, -1.0, 0.0),
    ("piecewise_quadratic", {}, 1.5, 0.0),
    ("piecewise_quadratic", {"alpha": 2.0}, 0.25, 1.0),
    ("piecewise_quadratic", {"alpha": 2.0}, -0.5, 0.0),  # |x| = 1/α
    ("piecewise_exp", {}, 0.0, 0.5),
    ("piecewise_exp", {}, 1.0, 0.5 * math.exp(-1)),
    ("piecewise_exp", {"alpha": 2.0}, -1.0, math.exp(-2)),
    ("nonzero_sign_log", {}, 0.0, 1.0),
    ("nonzero_sign_log", {}, 1.0, 0.5),
    ("nonzero_sign_log", {"alpha": 2.0}, -1.5, 0.5),
    ("piecewise_leaky_relu", {}, 0.0, 0.5),
    ("piecewise_leaky_relu", {}, 1.0, 0.5),  # |x| = w
    ("piecewise_leaky_relu", {}, -1.0, 0.5),
    ("piecewise_leaky_relu", {}, 1.5, 0.01),
    ("piecewise_leaky_relu", {}, -3.0, 0.01),
    ("piecewise_leaky_relu", {"c": 0.0, "w": 0.5}, 0.5, 1.0),  # |x| = w
    ("piecewise_leaky_relu", {"c": 0.0, "w": 0.5}, 0.75, 0.0),
    ("leaky_relu", {}, -1.0, 0.1),
    ("leaky_relu", {}, 0.0, 1.0),  # x = 0: the x >= 0 branch
    ("leaky_relu", {}, 2.0, 1.0),
    ("leaky_relu", {"alpha": 0.0, "beta": 0.5}, 0.0, 0.5),
    ("leaky_relu", {"alpha": 0.0, "beta": 0.5}, -0.5, 0.0),
    ("log_tailed_relu", {}, -1.0, 0.0),
    ("log_tailed_relu", {}, 0.0, 0.0),  # x = 0: the x <= 0 branch, α
    ("log_tailed_relu", {}, 0.5, 1.0),
    ("log_tailed_relu", {}, 1.0, 1.0),
    ("log_tailed_relu", {}, 4.0, 0.25),
    ("log_tailed_relu", {"alpha": 0.3}, 0.0, 0.3),
    ("log_tailed_relu", {"alpha": 0.3}, -2.0, 0.3),
    ("relu_grad", {}, 0.0, 0.3),
    ("relu_grad", {}, -0.5, 0.15),
    ("relu_grad", {}, 1.0, 0.0),  # |x| = width
    ("relu_grad", {}, 2.0, 0.0),
    ("relu_grad", {"alpha": 1.0, "width": 2.0}, 0.5, 1.5),
    ("relu_grad", {"alpha": 1.0, "width": 2.0}, -2.0, 0.0),  # |x| = width
    ("gaussian_grad", {}, 0.0, 1 / SQ2PI),
    ("gaussian_grad", {}, 0.5, math.exp(-0.5) / SQ2PI),
    ("gaussian_grad", {"sigma": 1.0, "alpha": 2.0}, -1.0, 2 * math.exp(-0.5) / SQ2PI),
    ("multi_gaussian_grad", {}, 0.0, 0.5 * (1.15 * normal(0, 0, 0.5) - 0.3 * normal(0, 0.5, 3))),
    (
        "multi_gaussian_grad",
        {},
        0.5,
        0.5
        * (1.15 * normal(0.5, 0, 0.5) - 0.15 * normal(0.5, 0.5, 3) - 0.15 * normal(0.5, -0.5, 3)),
    ),
    ("multi_gaussian_grad", {"h": 0.0}, 0.0, 0.5 * normal(0, 0, 0.5)),
    ("inv_square_grad", {}, 0.0, 1.0),
    ("inv_square_grad", {}, 0.01, 0.25),
    ("inv_square_grad", {}, -0.03, 1 / 16),
    ("slayer_grad", {}, 0.0, 1.0),
    ("slayer_grad", {}, -1.0, math.exp(-1)),
    ("slayer_grad", {"alpha": 2.0}, 1.5, math.exp(-3)),
    ("squarewave_fourier_series", {}, 0.0, 1.0),
    ("squarewave_fourier_series", {}, 2.0, 0.0),
    ("squarewave_fourier_series", {}, 4 / 3, -0.25),
    ("squarewave_fourier_series", {"n": 3, "t_period": 4.0}, 0.0, 3.0),
    ("squarewave_fourier_series", {"n": 3, "t_period": 4.0}, 0.5, -math.sqrt(0.5)),
    ("s2nn", {}, -0.5, 4 * E2),
    ("s2nn", {}, 0.0, 1.0),
    ("s2nn", {}, 1.0, 0.5),
    ("s2nn", {"alpha": 2.0, "beta": 3.0}, 0.0, 3.0),  # x = 0: β, not the sigmoid's α/4
    ("s2nn", {"alpha": 2.0, "beta": 3.0}, 2.0, 1.0),
    ("s2nn", {"alpha": 2.0, "beta": 3.0}, -0.25, 2 * sig(-0.5) * (1 - sig(-0.5))),
    ("q_pseudo_spike", {}, 0.0, 1.0),
    ("q_pseudo_spike", {}, 1.5, 0.25),
    ("q_pseudo_spike", {}, -3.0, 1 / 9),
    ("q_pseudo_spike", {"alpha": 1.0}, 1.0, 0.5),
    ("q_pseudo_spike", {"alpha": 3.0}, 2.0, 1 / 8),
    # The paper's (1 + 2|x|/(α−1))^(−α).
    ("q_pseudo_spike_paper", {}, 0.0, 1.0),
    ("q_pseudo_spike_paper", {}, 1.0, 1 / 9),
    ("q_pseudo_spike_paper", {}, -1.5, 1 / 16),
    ("q_pseudo_spike_paper", {"alpha": 3.0}, 0.5, (1 + 0.5) ** -3),
    ("q_pseudo_spike_paper", {"alpha": 5.0}, -2.0, 2.0**-5),
    ("fast_sigmoid", {}, 0.0, 1.0),
    ("fast_sigmoid", {}, 0.04, 0.25),
    ("fast_sigmoid", {}, -0.12, 1 / 16),
    ("straight_through", {}, -7.0, 1.0),
    ("straight_through", {}, 0.0, 1.0),
    ("straight_through", {}, 3.0, 1.0),
    ("boxcar", {}, 0.0, 1.0),
    ("boxcar", {}, -0.25, 1.0),
    ("boxcar", {}, 0.5, 0.0),  # |x| = width/2: outside the open interval
    ("boxcar", {}, -0.5, 0.0),
    ("boxcar", {"width": 2.0, "height": 0.5}, 0.75, 0.5),
    ("boxcar", {"width": 2.0, "height": 0.5}, 1.0, 0.0),
]

# (name, params, x, g(x)).
HAND_FUN = [
    ("sigmoid", {}, 0.0, 0.5),
    ("sigmoid", {}, 0.5, sig(2.0)),
    ("softsign", {}, 1.0, 0.75),
    ("softsign", {}, -3.0, 0.125),
    ("arctan", {}, 0.0, 0.5),
    ("arctan", {}, 2 / math.pi, 0.75),
    ("erf", {}, 1.0, 0.5 * (1 + math.erf(1))),
    ("erf", {"alpha": 2.0}, -0.25, 0.5 * (1 - math.erf(0.5))),
    ("piecewise_quadratic", {}, 0.5, 0.875),
    ("piecewise_quadratic", {}, -0.5, 0.125),
    ("piecewise_quadratic", {}, 2.0, 1.0),
    ("piecewise_quadratic", {}, -2.0, 0.0),
    ("piecewise_exp", {}, 0.0, 0.5),
    ("piecewise_exp", {}, -1.0, 0.5 * math.exp(-1)),
    ("piecewise_exp", {}, 1.0, 1 - 0.5 * math.exp(-1)),
    ("nonzero_sign_log", {}, 0.0, 0.0),
    ("nonzero_sign_log", {}, -1.0, -math.log(2)),
    ("piecewise_leaky_relu", {}, 0.0, 0.5),
    ("piecewise_leaky_relu", {}, 3.0, 1.02),
    ("piecewise_leaky_relu", {}, -3.0, -0.02),
    ("leaky_relu", {}, -1.0, -0.1),
    ("leaky_relu", {}, 2.0, 2.0),
    ("leaky_relu", {}, 0.0, 0.0),
    ("log_tailed_relu", {}, -1.0, 0.0),
    ("log_tailed_relu", {}, 0.5, 0.5),
    ("log_tailed_relu", {}, math.e, 2.0),
    ("squarewave_fourier_series", {}, 0.0, 0.5),
    ("squarewave_fourier_series", {}, 2.0, 0.5 + 4 / (3 * math.pi)),
    ("s2nn", {}, -0.5, sig(-2.0)),
    ("s2nn", {}, 0.0, 0.5 + math.log(1 + 1e-8)),
    ("s2nn", {}, 1.0, 0.5 + math.log(2 + 1e-8)),
    ("q_pseudo_spike", {}, 0.0, 0.5),
    ("q_pseudo_spike", {}, 1.5, 1.25),
    ("q_pseudo_spike", {}, -1.5, -0.25),
    ("q_pseudo_spike", {"alpha": 1.0}, 1.0, 0.5 + math.log(2)),
    # ½ + sign(x)·½·[1 − (1 + 2|x|/(α−1))^(1−α)]
    ("q_pseudo_spike_paper", {}, 0.0, 0.5),
    ("q_pseudo_spike_paper", {}, 1.0, 0.5 + 0.5 * (1 - 1 / 3)),
    ("q_pseudo_spike_paper", {}, -1.5, 0.5 - 0.5 * (1 - 1 / 4)),
    ("q_pseudo_spike_paper", {"alpha": 3.0}, 0.5, 0.5 + 0.5 * (1 - 1.5**-2)),
    ("fast_sigmoid", {}, 0.04, 0.52),
    ("fast_sigmoid", {}, -1.0, 0.5 - 1 / 26),
    ("straight_through", {}, 2.0, 2.5),
    ("straight_through", {}, -0.5, 0.0),
    ("boxcar", {}, 0.25, 0.75),
    ("boxcar", {}, -2.0, 0.0),
]


def hand_id(case: tuple) -> str:
    name, params, x, _ = case
    return f"{name}-{params}-x={x:.4g}"


# --------------------------------------------------------------------------------- the formulas


def test_catalogue_matches_the_issue():
    assert tuple(sorted(SPEC)) == NAMES
    assert set(S.REGISTRY) == set(SPEC)
    for name, (cls_name, fn_name, defaults) in SPEC.items():
        cls = S.REGISTRY[name]
        assert cls.__name__ == cls_name and getattr(S, cls_name) is cls and cls.name == name
        assert issubclass(cls, S.Surrogate) and "name" not in S.param_names(name)
        assert S.param_names(name) == tuple(defaults)
        assert {f.name: f.default for f in fields(name)} == defaults
        assert list(inspect.signature(getattr(S, fn_name)).parameters) == ["x", *defaults]
    assert {n for n in NAMES if n.endswith("_grad")} == GRAD_ONLY


def test_every_surrogate_has_hand_values():
    for name in NAMES:
        assert sum(c[0] == name for c in HAND_GRAD) >= 3, name
        if name not in GRAD_ONLY:
            assert sum(c[0] == name for c in HAND_FUN) >= 2, name


@pytest.mark.parametrize("name", NAMES)
def test_hand_values(name):
    """g'(x) (closed form and through the spike) and g(x) at hand-computed points, float64."""
    with jax.enable_x64(True):
        for case in [c for c in HAND_GRAD if c[0] == name]:
            _, params, x, expected = case
            s, x64 = S.get(name, **params), jnp.asarray(x, jnp.float64)
            closed = float(s.surrogate_grad(x64))
            assert closed == pytest.approx(expected, rel=1e-12, abs=1e-15), hand_id(case)
            assert float(jax.grad(s)(x64)) == closed, hand_id(case)
        for case in [c for c in HAND_FUN if c[0] == name]:
            _, params, x, expected = case
            got = float(S.get(name, **params).surrogate_fun(jnp.asarray(x, jnp.float64)))
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-15), hand_id(case)


def test_squarewave_is_periodic_and_finite_at_any_membrane():
    """(2n-1)·ω·x overflowed float32 for |x| > 1e34 and cos(inf) gave NaN; reduced to one
    period first, g'(x + kT) = g'(x) and g' stays finite up to float32's largest value."""
    s = S.get("squarewave_fourier_series", n=3, t_period=4.0)
    x = jnp.asarray([-0.75, 0.0, 0.5, 1.25], jnp.float32)
    for k in (-3, 1, 1000):
        np.testing.assert_allclose(s.surrogate_grad(x + 4.0 * k), s.surrogate_grad(x), atol=2e-5)
    big = jnp.asarray([-3.4e38, -1e36, 1e35, 3.4e38], jnp.float32)
    for f in (s.surrogate_grad, jax.vmap(jax.grad(s)), s.surrogate_fun):
        assert np.all(np.isfinite(f(big)))


@jax.jit  # ``s`` is traced: one compilation per class serves all its parameter sets
def _derivative_and_closed_form(x: Array, s: S.Surrogate) -> tuple[Array, Array]:
    return jax.vmap(jax.grad(s.surrogate_fun))(x), s.surrogate_grad(x)


@pytest.mark.parametrize(("name", "params"), FUN_CASES)
def test_surrogate_grad_is_the_derivative_of_surrogate_fun(name, params):
    """d/dx g == g' in float64 everywhere, kinks included (their branch is part of the spec)."""
    with jax.enable_x64(True):
        s = S.get(name, **params)
        x = jnp.asarray(XS)
        derivative, closed = map(np.asarray, _derivative_and_closed_form(x, s))
    assert np.all(np.isfinite(derivative))
    if name == "s2nn":  # the issue's one exception: g has ε inside its logarithm
        right = XS >= 0
        assert np.all(np.abs(derivative - closed)[right] <= s.beta * s.epsilon + 1e-15)
        closed = np.where(right, s.beta / (np.maximum(XS, 0) + 1 + s.epsilon), closed)
    np.testing.assert_allclose(derivative, closed, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("name", "area"),
    [
        ("relu_grad", 0.3),  # α·width²
        ("gaussian_grad", 0.5),  # α
        ("multi_gaussian_grad", 0.5 * (1 - 0.15)),  # scale·(1 + h − 2h)
        ("slayer_grad", 2.0),  # 2/α
        ("inv_square_grad", 0.02 * (1 - 1 / 6001)),  # (2/α)(1 − 1/(αL + 1)) on [−L, L], L = 60
    ],
)
def test_grad_only_areas(name, area):
    """The *Grad classes have no g; their integrals over [−60, 60] pin scale and width."""
    x = 0.005 * np.sinh(np.linspace(-1, 1, 40_001) * np.arcsinh(60 / 0.005))  # dense near 0
    with jax.enable_x64(True):
        g = np.asarray(S.get(name).surrogate_grad(jnp.asarray(x)))
    assert np.trapezoid(g, x) == pytest.approx(area, rel=1e-6)


@pytest.mark.parametrize("name", sorted(GRAD_ONLY))
def test_grad_only_classes_have_no_surrogate_fun(name):
    s = S.get(name)
    with pytest.raises(NotImplementedError, match=f"{type(s).__name__} defines only"):
        s.surrogate_fun(jnp.zeros(3))


def test_q_pseudo_spike_fun_is_continuous_in_alpha_at_one():
    with jax.enable_x64(True):
        x = jnp.linspace(-3.0, 3.0, 13)
        at_one = np.asarray(S.QPseudoSpike(1.0).surrogate_fun(x))
        near = [np.asarray(S.QPseudoSpike(1.0 + d).surrogate_fun(x)) for d in (1e-6, -1e-6)]
    for g in near:
        np.testing.assert_allclose(g, at_one, atol=1e-5)


# ------------------------------------------------------------------------ the custom derivative


@pytest.mark.parametrize("name", NAMES)
def test_backward_is_upstream_times_surrogate_grad(name):
    """Exactly ``ct * surrogate_grad(x)``: eager grad and jvp, and jit / vmap in one program."""
    s = S.get(name)
    x = jnp.asarray(X)
    ct = jnp.arange(97.0) / 8 - 3.0  # distinct upstream values, 0 and negative included
    expected = np.asarray(s.surrogate_grad(x), np.float32) * np.asarray(ct)
    loss = lambda x: jnp.sum(ct * s(x))
    results = {"grad": jax.grad(loss)(x), "jvp": jax.jvp(s, (x,), (ct,))[1]}
    for how, got in results.items():
        assert got.dtype == jnp.float32, how
        np.testing.assert_array_equal(np.asarray(got), expected, err_msg=how)

    # Under jit XLA may fuse g' differently from eager (1 ulp): compare within one program.
    def programs(x, ct, s):
        one = lambda x, c: (jax.grad(lambda x: c * s(x))(x), c * s.surrogate_grad(x))
        return {
            "jit": (jax.grad(lambda x: jnp.sum(ct * s(x)))(x), ct * s.surrogate_grad(x)),
            "jit-vmap": jax.vmap(one)(x, ct),
        }

    for how, (got, want) in jax.jit(programs)(x, ct, s).items():
        np.testing.assert_array_equal(got, want, err_msg=how)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, err_msg=how)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_keeps_the_input_dtype(name):
    """g' of 16-bit inputs is evaluated in float32 and rounded once: accurate to half an ulp."""
    with jax.enable_x64(True):
        s = S.get(name)
        exact = np.asarray(s.surrogate_grad(jnp.asarray(X, jnp.float64)))
    for dtype in [jnp.bfloat16, jnp.float32, jnp.float64]:
        with jax.enable_x64(dtype == jnp.float64):
            x = jnp.asarray(X, dtype)
            g = jax.grad(lambda x: s(x).astype(jnp.float32).sum())(x)
            assert g.dtype == dtype
            wide = x.astype(jnp.promote_types(dtype, jnp.float32))
            np.testing.assert_array_equal(g, s.surrogate_grad(wide).astype(dtype))
        rtol = 2**-8 if dtype == jnp.bfloat16 else 1e-6
        np.testing.assert_allclose(np.asarray(g, np.float64), exact, rtol=rtol, atol=1e-7)


def test_bfloat16_input_with_float32_array_parameter():
    s = S.SoftSign(alpha=jnp.asarray(2.0, jnp.float32))
    x = jnp.asarray([-1.0, 0.0, 0.5], jnp.bfloat16)
    g = jax.grad(lambda x: s(x).astype(jnp.float32).sum())(x)
    assert g.dtype == jnp.bfloat16 and s(x).dtype == jnp.bfloat16
    np.testing.assert_array_equal(g, jnp.asarray([1 / 9, 1.0, 0.25], jnp.bfloat16))


# ----------------------------------------------------------------------------- the forward pass

SPECIAL = [-np.inf, -1e30, -1.0, -1e-30, -0.0, 0.0, 1e-30, 1.0, 1e30, np.inf, np.nan]
SPECIAL_SPIKES = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0]  # x >= 0 fires: -0.0 and 0.0 do; nan doesn't


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_exact_heaviside(name):
    s = S.get(name)
    rng = np.random.default_rng(1)
    for shape in [(), (5,), (3, 4), (2, 3, 4)]:
        base = rng.normal(size=shape)
        base.reshape(-1)[::3] = 0.0
        for dtype in [jnp.float32, jnp.bfloat16]:
            x = jnp.asarray(base, dtype)
            out = s(x)
            assert out.dtype == x.dtype and out.shape == x.shape
            np.testing.assert_array_equal(np.asarray(out, np.float64), np.asarray(x) >= 0)
    with jax.enable_x64(True):
        x = jnp.asarray(SPECIAL, jnp.float64)
        assert s(x).dtype == jnp.float64
        np.testing.assert_array_equal(s(x), SPECIAL_SPIKES)
    np.testing.assert_array_equal(jax.jit(s)(jnp.asarray(SPECIAL, jnp.float32)), SPECIAL_SPIKES)
    ints = s(jnp.arange(-2, 3))
    assert ints.dtype == jnp.int32
    np.testing.assert_array_equal(ints, [0, 0, 1, 1, 1])
    assert float(s(0.0)) == 1.0 and float(s(-1e-7)) == 0.0


def _run_lif(x_TxN: Array, s: S.Surrogate) -> tuple[Array, Array]:
    """Leaky integration and spikes in ``lax.scan``: gradients cross time steps."""

    def step(v_N, x_N):
        v_N = 0.5 * v_N + x_N
        return v_N, (v_N, s(v_N))

    return jax.lax.scan(step, jnp.zeros(x_TxN.shape[1:]), x_TxN)[1]


@pytest.mark.parametrize("name", NAMES)
def test_inside_scan_with_a_traced_surrogate(name):
    """The training step's pattern: the surrogate is a jit argument (traced leaves) used in scan."""
    rng = np.random.default_rng(2)
    x_TxN = jnp.asarray(rng.normal(size=(6, 5)), jnp.float32)
    ct_TxN = jnp.asarray(rng.normal(size=(6, 5)), jnp.float32)

    @jax.jit
    def forward_and_grad(x_TxN, s):
        loss = lambda x: jnp.sum(ct_TxN * _run_lif(x, s)[1])
        v_TxN, s_TxN = _run_lif(x_TxN, s)
        return v_TxN, s_TxN, jax.grad(loss)(x_TxN), s.surrogate_grad(v_TxN)

    v_TxN, s_TxN, g_TxN, gp_TxN = map(np.asarray, forward_and_grad(x_TxN, S.get(name)))
    np.testing.assert_array_equal(s_TxN, v_TxN >= 0)
    # d/dx_t sum_k ct_k s(v_k) with v_k = sum_{t <= k} 0.5^(k - t) x_t.
    ct_TxN = np.asarray(ct_TxN)
    want = [sum(ct_TxN[k] * gp_TxN[k] * 0.5 ** (k - t) for k in range(t, 6)) for t in range(6)]
    np.testing.assert_allclose(g_TxN, np.stack(want), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["s2nn", "squarewave_fourier_series"])
def test_vmapped_surrogate_inside_scan_and_checkpoint(name):
    """A sweep in one program: vmap over stacked parameters, spikes in scan under remat."""
    cls, defaults = S.REGISTRY[name], SPEC[name][2]
    batch = [cls(), cls(**scaled(name) | ({"n": defaults["n"]} if "n" in defaults else {}))]
    stacked = jax.tree.map(lambda *v: jnp.asarray(v, jnp.float32), *batch)
    x_TxN = jnp.asarray(np.random.default_rng(3).normal(size=(6, 5)), jnp.float32)
    grads = lambda s: jax.grad(lambda x: jax.checkpoint(_run_lif)(x, s)[1].sum())(x_TxN)
    got = jax.jit(jax.vmap(grads))(stacked)
    for i, s in enumerate(batch):
        np.testing.assert_allclose(got[i], grads(s), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------- parameters, pytree, hashing


def _rule(name: str, field: str) -> str:
    if field == "n":
        return "integer"
    if (name, field) in ABOVE_ONE:
        return "above_one"
    if (name, field) in MAY_BE_ZERO:
        return "finite"
    return "nonnegative" if (name, field) in NONNEGATIVE else "positive"


BAD = {
    "positive": [0.0, -1.0, math.nan, math.inf, -math.inf],
    "nonnegative": [-1e-3, math.nan, math.inf],
    "finite": [math.nan, math.inf, -math.inf],
    "integer": [0, -1, 1.5, math.nan, math.inf, 1001, 10**12],
    "above_one": [1.0, 0.5, 0.0, -1.0, math.nan, math.inf],
}
GOOD = {
    "positive": [1e-3, 7.0],
    "nonnegative": [0.0, 2.0],
    "finite": [0.0, -0.5, 3.0],
    "integer": [1, 5],
    "above_one": [1.5, 7.0],
}
TEXT = {
    "positive": "finite and > 0",
    "nonnegative": "finite and >= 0",
    "finite": "finite",
    "integer": "an integer >= 1 and <= 1000",
    "above_one": "finite and > 1",
}
PARAMS = [(n, f.name) for n in NAMES for f in fields(n)]


@pytest.mark.parametrize(("name", "field"), PARAMS)
def test_parameter_validation(name, field):
    cls, rule = S.REGISTRY[name], _rule(name, field)
    for bad in BAD[rule]:
        with pytest.raises(ValueError) as err:
            cls(**{field: bad})
        assert str(err.value) == f"{cls.__name__}: {field} must be {TEXT[rule]}, got {bad!r}"
    for bad in [True, "2"]:
        with pytest.raises(ValueError, match=f"{cls.__name__}: {field} must be"):
            cls(**{field: bad})
    for good in GOOD[rule]:
        value = getattr(cls(**{field: good}), field)
        assert value == good and type(value) is type(good)
    if rule != "integer":  # concrete arrays are checked element by element
        ok = GOOD[rule][0]
        cls(**{field: np.array([ok, ok])})
        with pytest.raises(ValueError, match=f"{cls.__name__}: {field} must be {TEXT[rule]}"):
            cls(**{field: jnp.array([ok, BAD[rule][0]])})


def test_numbers_are_normalised():
    assert S.SoftSign(alpha=2) == S.SoftSign(alpha=2.0) == S.SoftSign(alpha=np.float32(2))
    assert type(S.SoftSign(alpha=2).alpha) is float and repr(S.SoftSign(2)) == "SoftSign(alpha=2.0)"
    assert hash(S.SoftSign(alpha=2)) == hash(S.SoftSign(alpha=2.0))
    assert S.SquarewaveFourierSeries(n=np.int64(3)).n == 3 == S.SquarewaveFourierSeries(n=3.0).n
    assert type(S.SquarewaveFourierSeries(n=3.0).n) is int
    with pytest.raises(ValueError, match=r"SoftSign: alpha must be finite and > 0, got 0\.0"):
        S.get("softsign", alpha=0)  # what a command-line surrogate.alpha=0 gives


@pytest.mark.parametrize("name", NAMES)
def test_instances_are_immutable_hashable_values(name):
    cls, defaults = S.REGISTRY[name], SPEC[name][2]
    a, b = cls(), cls(**defaults)
    assert a == b and hash(a) == hash(b) and a is not b
    assert repr(a) == f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in defaults.items())})"
    if defaults:
        assert a != cls(**scaled(name)) and hash(a) != hash(cls(**scaled(name)))
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(a, next(iter(defaults)), 1.0)
    other = S.StraightThrough() if name != "straight_through" else S.Boxcar()
    assert a != other
    # Floats are pytree leaves, n is static.
    leaves, treedef = jax.tree.flatten(a)
    assert leaves == [v for k, v in defaults.items() if k != "n"]
    assert jax.tree.unflatten(treedef, leaves) == a


def test_jit_static_argument_compiles_once_per_value():
    traces = []

    def f(x, s):
        traces.append(s)
        return jax.grad(lambda x: s(x).sum())(x)

    f_jit = jax.jit(f, static_argnums=1)
    x = jnp.linspace(-1, 1, 5)
    g1 = f_jit(x, S.SoftSign(2.0))
    g2 = f_jit(x, S.SoftSign(alpha=2))  # equal instance: cache hit
    g3 = f_jit(x, S.SoftSign(4.0))
    assert len(traces) == 2
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(g3, S.SoftSign(4.0).surrogate_grad(x))


def test_jit_traced_argument_compiles_once_for_all_values():
    traces = []

    def f(x, s):
        traces.append(s)
        return jax.grad(lambda x: s(x).sum())(x)

    f_jit = jax.jit(f)
    x = jnp.linspace(-1, 1, 5)
    for alpha in (1.0, 2.0, 4.0):
        np.testing.assert_allclose(
            f_jit(x, S.Sigmoid(alpha)), S.Sigmoid(alpha).surrogate_grad(x), rtol=1e-6
        )
    assert len(traces) == 1


@pytest.mark.parametrize("name", [n for n in NAMES if SPEC[n][2]])
def test_vmap_over_parameters_matches_separate_instances(name):
    """Three parameter sets as one instance holding arrays, or built from traced values."""
    cls = S.REGISTRY[name]
    varied = {k: [0.5 * d, d, 2 * d] if d else [0.0, 0.1, 0.2] for k, d in SPEC[name][2].items()}
    if name == "q_pseudo_spike_paper":
        varied["alpha"] = [1.5, 2.0, 4.0]  # α > 1
    varied.pop("n", None)  # static
    x = jnp.asarray(X)
    has_fun = name not in GRAD_ONLY

    def outputs(s):
        grad = jax.grad(lambda x: s(x).sum())(x)
        return s(x), grad, s.surrogate_fun(x) if has_fun else grad

    stacked = cls(**{k: jnp.asarray(v, jnp.float32) for k, v in varied.items()})
    batched = jax.jit(
        lambda s, v: (jax.vmap(outputs)(s), jax.vmap(lambda v: outputs(cls(**v)))(v))
    )(stacked, {k: jnp.asarray(v, jnp.float32) for k, v in varied.items()})
    separate = [outputs(cls(**{k: v[i] for k, v in varied.items()})) for i in range(3)]
    for got in batched:
        for i, want in enumerate(separate):
            for a, b in zip(got, want, strict=True):
                np.testing.assert_allclose(a[i], b, rtol=1e-6, atol=1e-7)
    # Parameters are configuration: no gradient flows to them (a pytree of zeros, unvalidated).
    first = next(iter(varied))
    assert jax.grad(lambda v: cls(**{first: v})(x).sum())(varied[first][1]) == 0.0
    zeros = jax.grad(lambda s: s(x).sum())(cls())
    assert type(zeros) is cls and all(leaf == 0.0 for leaf in jax.tree.leaves(zeros))


# ----------------------------------------------------------------- registry and functional forms


def test_registry_errors():
    with pytest.raises(ValueError) as err:
        S.get("nope")
    assert str(err.value).startswith("unknown surrogate 'nope'")
    assert all(name in str(err.value) for name in NAMES)
    with pytest.raises(
        ValueError, match=r"^straight_through takes no parameter 'alpha'; valid: \(none\)$"
    ):
        S.get("straight_through", alpha=2)
    with pytest.raises(ValueError, match=r"^softsign takes no parameter 'gamma'; valid: alpha$"):
        S.get("softsign", gamma=2)
    with pytest.raises(ValueError, match="valid: h, s, sigma, scale$"):
        S.get("multi_gaussian_grad", alpha=1.0)
    with pytest.raises(ValueError, match="unknown surrogate"):
        S.param_names("nope")
    with pytest.raises(TypeError):
        S.REGISTRY["mine"] = S.SoftSign  # read-only view


@pytest.mark.parametrize("name", NAMES)
def test_get_and_functional_forms(name):
    cls, fn = S.REGISTRY[name], getattr(S, SPEC[name][1])
    params = scaled(name)
    assert S.get(name) == cls() and S.get(name, **params) == cls(**params)
    x = jnp.asarray(X)
    np.testing.assert_array_equal(fn(x), cls()(x))
    np.testing.assert_array_equal(jax.grad(lambda x: fn(x).sum())(x), cls().surrogate_grad(x))
    g = jax.grad(lambda x: fn(x, **params).sum())(x)
    np.testing.assert_array_equal(g, cls(**params).surrogate_grad(x))
    if params:  # positional parameters, in declaration order
        g = jax.grad(lambda x: fn(x, *params.values()).sum())(x)
        np.testing.assert_array_equal(g, cls(**params).surrogate_grad(x))
    with pytest.raises(TypeError):
        fn(x, gamma=1.0)


@pytest.mark.parametrize("name", NAMES)
def test_docstrings_state_formula_and_references(name):
    doc = S.REGISTRY[name].__doc__
    assert "g'(x) =" in doc and "References:" in doc
    assert ("g(x) =" in doc) == (name not in GRAD_ONLY)


# ---------------------------------------------------------------------------------- the configs


def test_one_config_per_surrogate():
    assert tuple(sorted(p.stem for p in CONF_DIR.glob("*.yaml"))) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_config_builds_the_default_surrogate(name):
    cfg = OmegaConf.load(CONF_DIR / f"{name}.yaml")
    assert list(cfg.keys())[0] == "name" and cfg.name == name
    params = {k: v for k, v in cfg.items() if k != "name"}
    assert params == SPEC[name][2]
    assert all(type(v) is (int if k == "n" else float) for k, v in params.items())
    s = S.get(cfg.name, **params)
    assert s == S.REGISTRY[name]() and type(s).__name__ == SPEC[name][0]
    container = OmegaConf.to_container(cfg)
    assert S.get(container.pop("name"), **container) == s


# ------------------------------------------------------------- scale: integral, peak, normalize

# Surrogates whose g' is not integrable over the real line (tails that do not vanish, or vanish
# as 1/|x|): integral() is inf at the defaults.
INFINITE = {
    "leaky_relu",
    "log_tailed_relu",
    "nonzero_sign_log",
    "piecewise_leaky_relu",  # c = 0.01 > 0 outside the box
    "s2nn",
    "straight_through",
}
# The periodic squarewave has its own test; α = 1 + 1e-9 has an integral of 2e9 (tails |x|^-α).
SCALE_CASES = [
    (n, p)
    for n, p in CASES
    if n != "squarewave_fourier_series" and (n, p) != ("q_pseudo_spike", {"alpha": 1.0 + 1e-9})
]


def _quad(f, lo: float = -math.inf, hi: float = math.inf) -> float:
    """∫ f over [lo, hi] with scipy, split at the kinks of the catalogue (0, ±w, ±1/α...)."""
    from scipy import integrate

    kinks = sorted({0.0, *[s * k for k in (0.25, 0.5, 1.0, 2.0, 3.0) for s in (-1, 1)]})
    edges = [lo, *[k for k in kinks if lo < k < hi], hi]
    return sum(
        integrate.quad(f, a, b, epsabs=1e-13, epsrel=1e-11, limit=400)[0]
        for a, b in zip(edges, edges[1:], strict=False)
    )


def _g(s: S.Surrogate):
    return lambda x: float(s.surrogate_grad(jnp.asarray(x, jnp.float64)))


@pytest.mark.parametrize(("name", "params"), SCALE_CASES, ids=[f"{n}-{p}" for n, p in SCALE_CASES])
def test_integral_is_the_integral_of_the_surrogate_gradient(name, params):
    """The closed form against scipy's quadrature of g' over the real line, in float64."""
    with jax.enable_x64(True):
        s = S.get(name, **params)
        closed = float(s.integral())
        if math.isfinite(closed):
            assert _quad(_g(s)) == pytest.approx(closed, rel=1e-7, abs=1e-10)
        else:  # the integral over [−L, L] keeps growing (at least logarithmically)
            assert name in INFINITE or (name == "q_pseudo_spike" and params["alpha"] <= 1)
            grow = _quad(_g(s), -1e6, 1e6) - _quad(_g(s), -1e3, 1e3)
            assert grow > 1.0


def test_integrals_quoted_for_comparison():
    """The scales the issue quotes: unit integral, 2/α at α = 25, (α+1)/(α−1) = 3 at α = 2."""
    for name in ("sigmoid", "softsign", "arctan", "erf", "q_pseudo_spike_paper"):
        assert S.get(name).integral() == 1.0
    assert S.FastSigmoid(alpha=25.0).integral() == pytest.approx(0.08)
    assert S.QPseudoSpike(alpha=2.0).integral() == pytest.approx(3.0)
    assert S.get("piecewise_leaky_relu", c=0.0).integral() == 1.0
    assert {n for n in NAMES if S.get(n).integral() == math.inf} == INFINITE


def test_squarewave_integral_is_the_central_lobe():
    """Periodic g': the integral over |x| <= T/(4n), where g rises across the step."""
    with jax.enable_x64(True):
        for n, t in ((1, 8.0), (2, 8.0), (5, 3.0)):
            s = S.SquarewaveFourierSeries(n=n, t_period=t)
            edge = t / (4 * n)
            assert float(s.surrogate_grad(jnp.asarray(edge))) == pytest.approx(0, abs=1e-12)
            lobe = float(s.surrogate_fun(jnp.asarray(edge)) - s.surrogate_fun(jnp.asarray(-edge)))
            assert s.integral() == pytest.approx(lobe, rel=1e-12)
    assert S.SquarewaveFourierSeries(n=1).integral() == pytest.approx(4 / math.pi)
    # many terms: the Gibbs overshoot (2/π) Si(π) ≈ 1.1790, not 1 (the docs said "→ 1")
    from scipy.special import sici

    gibbs = 2 / math.pi * sici(math.pi)[0]
    assert S.SquarewaveFourierSeries(n=2).integral() == pytest.approx(1.2004, abs=1e-4)
    assert S.SquarewaveFourierSeries(n=10).integral() == pytest.approx(1.1798, abs=1e-4)
    assert S.SquarewaveFourierSeries(n=1000).integral() == pytest.approx(gibbs, abs=1e-6)


@pytest.mark.parametrize(("name", "params"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_peak_is_the_maximum_of_the_gradient(name, params):
    with jax.enable_x64(True):
        s = S.get(name, **params)
        x = np.concatenate([np.linspace(-8, 8, 160_001), [-1e-12, 0.0, 1e-12]])
        grid_max = float(np.max(np.asarray(s.surrogate_grad(jnp.asarray(x)))))
        assert float(s.peak()) == pytest.approx(grid_max, rel=1e-6)


NORMALIZABLE = [(n, p) for n, p in CASES if S.get(n, **p).integral() < 1e3]  # finite, not 2e9


@pytest.mark.parametrize(
    ("name", "params"), NORMALIZABLE, ids=[f"{n}-{p}" for n, p in NORMALIZABLE]
)
def test_normalized_has_unit_integral_and_the_same_spikes(name, params):
    with jax.enable_x64(True):
        base = S.get(name, **params)
        s = base.normalized()
        assert isinstance(s, S.Normalized) and s.base == base and s.name == name
        if name == "squarewave_fourier_series":  # the central lobe
            edge = base.t_period / (4 * base.n)
            assert _quad(_g(s), -edge, edge) == pytest.approx(1.0, rel=1e-9)
        else:
            assert _quad(_g(s)) == pytest.approx(1.0, rel=1e-7)
        x = jnp.asarray(XS)
        np.testing.assert_array_equal(s(x), base(x))  # the forward pass is untouched
        np.testing.assert_allclose(
            jax.grad(lambda x: s(x).sum())(x),
            base.surrogate_grad(x) / float(base.integral()),
            rtol=1e-13,
        )
        assert float(s.peak()) == pytest.approx(float(base.peak()) / float(base.integral()))
        if name not in GRAD_ONLY:  # g_n' = g'_n and g_n(0) = ½
            d = jax.vmap(jax.grad(s.surrogate_fun))(x)
            np.testing.assert_allclose(d, s.surrogate_grad(x), rtol=1e-9, atol=1e-12)
            assert float(s.surrogate_fun(jnp.zeros(()))) == 0.5


def test_normalized_is_exact_under_jit_and_vmap():
    """Traced parameters: the integral follows them (fast_sigmoid: g'_n(0) = α/2)."""
    alphas = jnp.asarray([5.0, 25.0, 100.0])
    x = jnp.asarray(X)

    @jax.jit
    def grads(s):
        return jax.vmap(lambda s: jax.grad(lambda x: s(x).sum())(x))(s)

    got = grads(S.FastSigmoid(alpha=alphas).normalized())
    for i, a in enumerate([5.0, 25.0, 100.0]):
        want = S.FastSigmoid(alpha=a).surrogate_grad(x) * a / 2
        np.testing.assert_allclose(got[i], want, rtol=1e-6)
        assert float(got[i][X == 0][0]) == pytest.approx(a / 2)
    traced = jax.jit(lambda a: S.FastSigmoid(alpha=a).normalized().surrogate_grad(0.0))
    assert float(traced(25.0)) == pytest.approx(12.5)


def test_normalized_is_a_hashable_pytree_value():
    a, b = S.Sigmoid(2.0).normalized(), S.Normalized(S.Sigmoid(alpha=2))
    assert a == b and hash(a) == hash(b) and a != S.Sigmoid(2.0).normalized().base
    assert repr(a) == "Normalized(base=Sigmoid(alpha=2.0))"
    assert a.normalized() is a
    leaves, treedef = jax.tree.flatten(a)
    assert leaves == [2.0] and jax.tree.unflatten(treedef, leaves) == a
    zeros = jax.grad(lambda s: s(jnp.asarray(X)).sum())(a)  # parameters get no gradient
    assert type(zeros) is S.Normalized and jax.tree.leaves(zeros) == [0.0]


@pytest.mark.parametrize("name", sorted(INFINITE))
def test_normalizing_an_infinite_integral_says_which_can(name):
    with pytest.raises(ValueError) as err:
        S.get(name).normalized()
    text = str(err.value)
    assert text.startswith(f"{S.REGISTRY[name].__name__}: normalize=true needs a finite")
    assert "sigmoid" in text and name not in text.split("defaults): ")[1].split(", ")


def test_normalizing_array_parameters_checks_every_element():
    """An array parameter (the README's vmap sweep) skipped the check: the α=1 member of
    ``QPseudoSpike(alpha=[1, 2]).normalized()`` had I = inf, so its gradient was all 0."""
    with pytest.raises(ValueError, match=r"^QPseudoSpike: normalize=true needs a finite, "
                       r"positive integral of g'\(x\), but QPseudoSpike\(alpha=Array\(\[1\., 2\.\]"
                       r".* has inf at index \[0\]; these can be normalized"):
        S.QPseudoSpike(alpha=jnp.array([1.0, 2.0])).normalized()
    n = S.QPseudoSpike(alpha=jnp.array([2.0, 3.0])).normalized()  # every element finite
    g = jax.vmap(lambda s: s.surrogate_grad(jnp.float32(0.5)))(n)
    want = [S.QPseudoSpike(a).normalized().surrogate_grad(jnp.float32(0.5)) for a in (2.0, 3.0)]
    np.testing.assert_allclose(g, want, rtol=1e-6)


def test_q_pseudo_spike_paper_against_its_closed_form():
    """(1 + 2|x|/(α−1))^(−α) through the spike, for several α, and its g is the antiderivative."""
    with jax.enable_x64(True):
        x = jnp.asarray(XS)
        for alpha in (1.5, 2.0, 3.0, 10.0):
            s = S.QPseudoSpikePaper(alpha=alpha)
            want = (1 + 2 * np.abs(XS) / (alpha - 1)) ** (-alpha)
            np.testing.assert_allclose(jax.grad(lambda x, s=s: s(x).sum())(x), want, rtol=1e-13)
            ends = s.surrogate_fun(jnp.asarray([-1e12, 1e12]))
            np.testing.assert_allclose(ends, [0.0, 1.0], atol=1e-6)  # ∫ g' = 1
    # braintools' QPseudoSpike is a different function: (α+1) in place of (α−1).
    assert float(S.QPseudoSpike(2.0).surrogate_grad(1.0)) == pytest.approx((1 + 2 / 3) ** -2)
    assert float(S.QPseudoSpikePaper(2.0).surrogate_grad(1.0)) == pytest.approx(3.0**-2)


@pytest.mark.parametrize("name, denominator", [("q_pseudo_spike", 1001.0),
                                               ("q_pseudo_spike_paper", 999.0)])
def test_q_pseudo_spike_is_accurate_at_large_alpha(name, denominator):
    """(1 + u)^(−α) in float32 was off by 2e-4 (relative) at α = 1e3: 1 + u rounds u away."""
    x = np.array([1e-4, 1e-3, 0.1, 2.0], np.float32)
    want = (1 + 2 * np.abs(x.astype(np.float64)) / denominator) ** -1e3
    got = np.asarray(S.get(name, alpha=1e3).surrogate_grad(jnp.asarray(x)))
    np.testing.assert_allclose(got, want, rtol=2e-6)


def test_edge_values_of_the_numerical_auditor():
    """Three derivatives that missed their closed form in float32 (numerical auditor):
    squarewave_fourier_series with a period below 1 gave NaN at |x| ~ 3e38 (x / period
    overflowed on the way into one period); relu_grad was 2.4e-7, not 0, at |x| = width
    (alpha * width rounded apart from alpha * |x|); arctan at x = 0 with alpha = 3e38 gave NaN
    (pi/2 * alpha overflowed, times 0)."""
    big = jnp.array([3e38, -3e38], jnp.float32)
    sq = S.SquarewaveFourierSeries(n=2, t_period=0.5)
    g = sq.surrogate_grad(big)
    assert np.all(np.isfinite(np.asarray(g)))
    # 3e38 is a whole number of half-periods: the phase is 0
    np.testing.assert_array_equal(np.asarray(g), np.asarray(sq.surrogate_grad(jnp.zeros(2))))
    relu = S.ReluGrad(alpha=0.9, width=3.0)
    np.testing.assert_array_equal(np.asarray(relu.surrogate_grad(jnp.array([3.0, -3.0, 5.0]))),
                                  np.zeros(3, np.float32))
    np.testing.assert_allclose(np.asarray(relu.surrogate_grad(jnp.array([2.0]))), [0.9],
                               rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(S.Arctan(alpha=3e38).surrogate_grad(
        jnp.array([0.0]))), np.float32([1.5e38]))


@pytest.mark.parametrize("value", [[1, -2], (1.0,), 1 + 2j, None])
def test_a_parameter_that_is_no_number_is_refused_when_built(value):
    """A list, a tuple, a complex number or None passed the build check and failed at the
    first gradient with a TypeError traceback (configuration tester)."""
    with pytest.raises(ValueError, match=r"^SoftSign: alpha must be a number, got |^softsign: "
                                         r"alpha must be a number, got None$"):
        S.get("softsign", alpha=value)
