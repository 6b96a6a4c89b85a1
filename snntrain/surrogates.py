"""Spike functions: an exact Heaviside step forward, a smooth "surrogate" derivative backward.

Every surrogate ``s`` is a small immutable object (a frozen dataclass and a JAX pytree):

* ``s(v_BxN)`` returns the spikes ``1`` where ``v >= 0``, else ``0`` (same shape and dtype).
  A neuron exactly at threshold fires, as in braintools and SpikingJelly; snnTorch, Norse and
  spyx fire only above it (``v > 0``).
* Backpropagating through ``s(v)`` gives ``upstream * s.surrogate_grad(v)``: one
  :func:`jax.custom_jvp` shared by all classes, so it works under ``grad``, ``jit``, ``vmap``,
  ``scan`` and ``checkpoint``, for float32, float64 and bfloat16 (16-bit inputs get g'
  evaluated in float32, rounded once). The surrogate's parameters are configuration: no
  gradient flows to them.
* ``s.surrogate_grad(x)`` is the closed-form derivative g'(x) used backward, and
  ``s.surrogate_fun(x)`` the smooth function g(x) it is the derivative of (the five ``*Grad``
  classes define only g' and raise :class:`NotImplementedError`).

Surrogates differ in scale as much as in shape: ``s.integral()`` is the closed-form ∫g'(x) dx
(1 for sigmoid, softsign, arctan, erf; 2/α for fast_sigmoid; ``inf`` for heavy tails) and
``s.peak()`` the height max g'(x). ``s.normalized()`` (:class:`Normalized`, config
``surrogate.normalize=true``) rescales g' to unit integral, so shapes can be compared at equal
scale. The catalogue follows braintools where it differs from the papers or SpikingJelly:
:class:`QPseudoSpike` uses (α+1) where the paper uses (α−1) (:class:`QPseudoSpikePaper`), and
:class:`SquarewaveFourierSeries` sums n terms where SpikingJelly sums n − 1.

Instances with Python-number parameters are hashable and equal by value, so they can be static
arguments of :func:`jax.jit`. Float parameters are pytree leaves, so one instance can also carry
an array of values and be ``vmap``-ed over, e.g. a steepness sweep in one program::

    grads_AxN = jax.vmap(lambda s: jax.grad(lambda v: s(v).sum())(v_N))(
        SoftSign(alpha=jnp.array([1.0, 2.0, 4.0])))

Pick one by config name: ``get("softsign", alpha=2.0)``; :func:`available` lists the names
(one ``conf/surrogate/<name>.yaml`` each). Functional forms such as ``soft_sign(x, alpha=1.0)``
are ``SoftSign(alpha=1.0)(x)``. Below, σ is the logistic sigmoid and N(x; μ, τ) the normal
density with mean μ and standard deviation τ.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar, dataclass_transform

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import special as jsp_special

from snntrain.errors import shortened
from snntrain.registry import Registry, plain

Array = jax.Array

MAX_TERMS = 1000  # of a series parameter (n = 1e12 traced for ever, deaf to Ctrl-C)
_RULES = {"positive": "finite and > 0", "nonnegative": "finite and >= 0", "finite": "finite"}


def _checked(owner: str, field: str, value: Any, rule: str) -> Any:
    """``value`` validated against ``rule`` (numbers made Python floats / ints); see the class."""
    if isinstance(value, jax.core.Tracer):
        return value  # traced (jit / vmap): nothing to check
    if isinstance(value, (bool, np.bool_, str, bytes, list, tuple, dict, set)) or (
            isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real)):
        # (a list or a complex passed, and the first gradient was a TypeError traceback)
        raise ValueError(f"{owner}: {field} must be a number, got {value!r}")
    if rule == "integer":
        ok = isinstance(value, numbers.Integral) or (
            isinstance(value, numbers.Real) and float(value).is_integer()
        )
        if not ok or not 1 <= value <= MAX_TERMS:  # (a Python loop of n terms is traced)
            raise ValueError(f"{owner}: {field} must be an integer >= 1 and <= {MAX_TERMS}, got "
                             f"{value!r}")
        return int(value)
    if isinstance(value, numbers.Integral) and abs(value) > float(np.finfo(np.float32).max):
        # (10**400 raised OverflowError in float(): a traceback)
        raise ValueError(f"{owner}: {field} must be {_RULES[rule]} in float32, got "
                         f"{shortened(str(value))}")
    if isinstance(value, numbers.Real):
        value = float(value)
    elif not isinstance(value, (np.ndarray, jax.Array)):
        return value  # None or another placeholder (e.g. a hand-built vmap in_axes spec)
    values = np.asarray(value)
    if values.dtype == bool or not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"{owner}: {field} must be a number, got {value!r}")
    # (1e39 is finite in float64 and inf in float32, where the surrogate computes)
    ok = np.isfinite(values) & (np.abs(values) <= np.finfo(np.float32).max)
    if rule == "positive":
        ok &= values > 0
    elif rule == "nonnegative":
        ok &= values >= 0
    if not np.all(ok):
        with np.errstate(over="ignore"):
            f32 = " in float32" if np.any(np.isfinite(values) & ~np.isfinite(
                values.astype(np.float32))) else ""
        raise ValueError(f"{owner}: {field} must be {_RULES[rule]}{f32}, got {value!r}")
    return value


class Surrogate:
    """Base class: subclasses are frozen dataclasses defining ``surrogate_grad`` (and ``_fun``).

    Class attributes: ``name`` (the config name) and ``rules`` (field -> ``"finite"``,
    ``"nonnegative"`` or ``"integer"``; a field not listed must be finite and > 0).
    """

    name: ClassVar[str] = ""
    rules: ClassVar[Mapping[str, str]] = {}

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = _checked(
                owner, f.name, getattr(self, f.name), self.rules.get(f.name, "positive")
            )
            object.__setattr__(self, f.name, value)

    def __call__(self, x: Any) -> Array:
        """Spikes ``(x >= 0)`` in ``x``'s dtype; the derivative is :meth:`surrogate_grad`."""
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            return (x >= 0).astype(x.dtype)
        return _heaviside(x, self)

    def surrogate_grad(self, x: Array) -> Array:
        """The derivative g'(x) used in the backward pass."""
        raise NotImplementedError

    def surrogate_fun(self, x: Array) -> Array:
        """The smooth function g(x) whose derivative is :meth:`surrogate_grad`."""
        raise NotImplementedError(
            f"{type(self).__name__} defines only a surrogate gradient g'(x) (surrogate_grad); "
            "it has no closed-form surrogate_fun g(x)"
        )

    def integral(self) -> Any:
        """The scale ∫g'(x) dx over the real line, in closed form (a traced value under jit or
        vmap); ``inf`` when the tails do not vanish fast enough, NaN when it is undefined."""
        raise NotImplementedError(f"{type(self).__name__} defines no integral()")

    def peak(self) -> Any:
        """The height max g'(x): g'(0) here, the maximum of every bump-shaped g' (classes whose
        maximum can lie elsewhere override this)."""
        return self.surrogate_grad(jnp.zeros(()))

    def normalized(self) -> Normalized:
        """This surrogate rescaled to unit integral (:class:`Normalized`); forward unchanged."""
        return Normalized(self)


@jax.custom_jvp
def _heaviside(x: Array, surrogate: Surrogate) -> Array:
    del surrogate
    return (x >= 0).astype(x.dtype)


# The surrogate is a pytree *primal* argument, not a nondiff_argnum: its parameters may be
# tracers of an enclosing jit/vmap (traced alpha for sweeps), and a tracer in nondiff_argnums
# leaks when the spike function runs inside lax.scan. Its tangent is ignored, so parameters get
# no gradient. (Rebuilding an instance from zero tangents skips validation: see _register.)
@_heaviside.defjvp
def _heaviside_jvp(primals: tuple, tangents: tuple) -> tuple[Array, Array]:
    (x, surrogate), (x_dot, _) = primals, tangents
    # 16-bit inputs: evaluate g' in float32, then round once to x's dtype.
    grad = surrogate.surrogate_grad(x.astype(jnp.promote_types(x.dtype, jnp.float32)))
    return _heaviside(x, surrogate), grad.astype(x.dtype) * x_dot


def _finite_names() -> str:
    """The surrogates whose g' has a finite, positive integral at their default parameters."""
    ok = []
    for name, cls in sorted(REGISTRY.items()):
        value = float(cls().integral())
        if math.isfinite(value) and value > 0:
            ok.append(name)
    return ", ".join(ok)


@dataclasses.dataclass(frozen=True)
class Normalized(Surrogate):
    """``base`` rescaled to unit integral, to compare surrogate *shapes* at equal scale.

    g'_n(x) = g'(x) / I,   g_n(x) = ½ + (g(x) − g(0)) / I,   I = ``base.integral()``,

    the closed-form integral, so the rescaling is exact and follows traced parameters under
    ``jit`` and ``vmap``. The forward pass (the spike) is the base's exact step. The base needs
    a finite, positive I (not ``leaky_relu``, ``straight_through``, ... whose g' does not
    vanish in the tails). The config key ``surrogate.normalize=true`` builds one.

    References:
      Zenke & Vogels 2021 (Neural Computation 33(4)): the scale of a surrogate matters more
      than its shape.
    """

    base: Surrogate

    def __post_init__(self) -> None:
        if not isinstance(self.base, Surrogate):
            raise ValueError(f"Normalized: base must be a Surrogate, got {self.base!r}")
        integral = self.base.integral()
        if isinstance(integral, jax.core.Tracer):
            return  # traced parameters: nothing to check
        values = np.asarray(integral, dtype=float)  # array parameters: every element
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            value = values[bad].flat[0]
            where = "" if values.ndim == 0 else f" at index {np.argwhere(bad)[0].tolist()}"
            raise ValueError(
                f"{type(self.base).__name__}: normalize=true needs a finite, positive integral "
                f"of g'(x), but {self.base!r} has {value:g}{where}; these can be normalized (at "
                f"their defaults): {_finite_names()}"
            )

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.base.name

    def surrogate_grad(self, x: Array) -> Array:
        return self.base.surrogate_grad(x) / self.base.integral()

    def surrogate_fun(self, x: Array) -> Array:
        g = self.base.surrogate_fun
        return 0.5 + (g(x) - g(jnp.zeros_like(x))) / self.base.integral()

    def integral(self) -> Any:
        return 1.0

    def peak(self) -> Any:
        return self.base.peak() / self.base.integral()

    def normalized(self) -> Normalized:
        return self


def _unflatten_normalized(_: None, children: tuple) -> Normalized:
    obj = object.__new__(Normalized)  # JAX rebuilds from tracers or zeros: no validation
    object.__setattr__(obj, "base", children[0])
    return obj


jax.tree_util.register_pytree_with_keys(
    Normalized,
    lambda n: (((jax.tree_util.GetAttrKey("base"), n.base),), None),
    _unflatten_normalized,
)


def _normal(x: Array, mean: Any, std: Any) -> Array:
    """The normal density N(x; mean, std)."""
    return jnp.exp(-0.5 * ((x - mean) / std) ** 2) / (math.sqrt(2 * math.pi) * std)


def _sign(x: Array) -> Array:
    """-1 for x < 0, else +1 (so the sign is +1 at x = 0)."""
    return jnp.where(x < 0, -1.0, 1.0).astype(jnp.result_type(x, float))


def _abs(x: Array) -> Array:
    """|x| whose derivative at 0 is +1 (``jnp.abs`` has 0 there); for smooth g at x = 0."""
    return _sign(x) * x


def _sigmoid_grad(x: Array, alpha: Any) -> Array:
    """α σ(αx)(1 − σ(αx)), written α σ(αx) σ(−αx): no cancellation in 1 − σ for x > 0."""
    return alpha * jax.nn.sigmoid(alpha * x) * jax.nn.sigmoid(-alpha * x)


def _where(cond: Any, a: Any, b: Any) -> Any:
    """``a if cond else b``, for Python numbers and traced values alike."""
    if isinstance(cond, (bool, np.bool_)):
        return a if cond else b
    return jnp.where(cond, a, b)


def _maximum(a: Any, b: Any) -> Any:
    return max(a, b) if isinstance(a, float) and isinstance(b, float) else jnp.maximum(a, b)


def _sign_inf(c: Any) -> Any:
    return _where(c > 0, math.inf, -math.inf)


_S = TypeVar("_S", bound=type[Surrogate])
REGISTRY: Registry[type[Surrogate]] = Registry("surrogate", owner="{name}")


@dataclass_transform(frozen_default=True)
def _register(cls: _S) -> _S:
    """Make ``cls`` a frozen dataclass and a pytree (fields with ``static`` metadata are static,
    the others leaves), and list it in :data:`REGISTRY` under ``cls.name``."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    fields = dataclasses.fields(cls)
    data = tuple(f.name for f in fields if not f.metadata.get("static"))
    meta = tuple(f.name for f in fields if f.metadata.get("static"))

    def flatten(obj):
        children = tuple((jax.tree_util.GetAttrKey(n), getattr(obj, n)) for n in data)
        return children, tuple(getattr(obj, n) for n in meta)

    def unflatten(aux, children):
        # JAX rebuilds instances from tracers, zero tangents or placeholders: no validation.
        obj = object.__new__(cls)
        for n, v in (*zip(meta, aux, strict=True), *zip(data, children, strict=True)):
            object.__setattr__(obj, n, v)
        return obj

    jax.tree_util.register_pytree_with_keys(cls, flatten, unflatten)
    return REGISTRY.add(cls.name, cls)


@_register
class Sigmoid(Surrogate):
    """Logistic-sigmoid surrogate.

    g'(x) = α σ(αx)(1 − σ(αx)),   g(x) = σ(αx).   Default α = 4 (g'(0) = α/4 = 1).
    Larger α: a taller (peak α/4), narrower bump with exponentially decaying tails.

    References:
      Neftci, Mostafa & Zenke 2019; SpikingJelly / braintools docs (``Sigmoid``).
    """

    name: ClassVar[str] = "sigmoid"
    alpha: float = 4.0

    def surrogate_grad(self, x: Array) -> Array:
        return _sigmoid_grad(x, self.alpha)

    def surrogate_fun(self, x: Array) -> Array:
        return jax.nn.sigmoid(self.alpha * x)

    def integral(self) -> Any:
        return 1.0


@_register
class SoftSign(Surrogate):
    """Soft-sign surrogate: a rational bump with slowly (1/x²) decaying tails.

    g'(x) = α / (2(1 + |αx|)²),   g(x) = ½(αx / (1 + |αx|) + 1).   Default α = 1.
    Larger α: taller (peak α/2) and narrower.

    References:
      SpikingJelly / braintools docs (``SoftSign``).
    """

    name: ClassVar[str] = "softsign"
    alpha: float = 1.0

    def surrogate_grad(self, x: Array) -> Array:
        return self.alpha / (2 * (1 + jnp.abs(self.alpha * x)) ** 2)

    def surrogate_fun(self, x: Array) -> Array:
        ax = self.alpha * x
        return 0.5 * (ax / (1 + jnp.abs(ax)) + 1)

    def integral(self) -> Any:
        return 1.0


@_register
class Arctan(Surrogate):
    """Arctangent surrogate: a Cauchy-shaped bump (1/x² tails).

    g'(x) = α / (2(1 + (παx/2)²)),   g(x) = arctan(παx/2)/π + ½.   Default α = 1.
    Larger α: taller (peak α/2) and narrower.

    References:
      Fang et al. 2021 (PLIF); SpikingJelly / braintools docs (``ATan`` / ``Arctan``).
    """

    name: ClassVar[str] = "arctan"
    alpha: float = 1.0

    def surrogate_grad(self, x: Array) -> Array:
        return self.alpha / (2 * (1 + (math.pi / 2 * x * self.alpha) ** 2))  # (x = 0: no inf*0)

    def surrogate_fun(self, x: Array) -> Array:
        return jnp.arctan(math.pi / 2 * self.alpha * x) / math.pi + 0.5

    def integral(self) -> Any:
        return 1.0


@_register
class ERF(Surrogate):
    """Error-function surrogate: a Gaussian bump.

    g'(x) = (α/√π) exp(−α²x²),   g(x) = ½(1 + erf(αx)).   Default α = 1.
    Larger α: taller (peak α/√π) and narrower (standard deviation 1/(α√2)).

    References:
      SpikingJelly / braintools docs (``Erf`` / ``ERF``).
    """

    name: ClassVar[str] = "erf"
    alpha: float = 1.0

    def surrogate_grad(self, x: Array) -> Array:
        return self.alpha / math.sqrt(math.pi) * jnp.exp(-((self.alpha * x) ** 2))

    def surrogate_fun(self, x: Array) -> Array:
        return 0.5 * (1 + jsp_special.erf(self.alpha * x))

    def integral(self) -> Any:
        return 1.0


@_register
class PiecewiseQuadratic(Surrogate):
    """Piecewise-quadratic surrogate: a triangle of height α on [−1/α, 1/α].

    g'(x) = 0 if |x| > 1/α, else α − α²|x|  (so g'(±1/α) = 0);
    g(x) = 0 (x < −1/α), 1 (x > 1/α), else −½α²x|x| + αx + ½.   Default α = 1.
    Larger α: taller and narrower (area 1).

    References:
      Esser et al. 2016; SpikingJelly / braintools docs (``PiecewiseQuadratic``).
    """

    name: ClassVar[str] = "piecewise_quadratic"
    alpha: float = 1.0

    def surrogate_grad(self, x: Array) -> Array:
        # α·max(1 − α|x|, 0), not max(α − α²|x|, 0): α² overflows float32 above α ≈ 1.8e19
        # and inf·0 gave NaN at x = 0.
        return self.alpha * jnp.maximum(1.0 - self.alpha * jnp.abs(x), 0.0)

    def surrogate_fun(self, x: Array) -> Array:
        ax = self.alpha * x
        inner = -0.5 * ax * jnp.abs(ax) + ax + 0.5
        return jnp.where(jnp.abs(ax) > 1, jnp.where(x < 0, 0.0, 1.0), inner)

    def integral(self) -> Any:
        return 1.0


@_register
class PiecewiseExp(Surrogate):
    """Piecewise-exponential surrogate: a Laplace (two-sided exponential) bump.

    g'(x) = (α/2) exp(−α|x|),   g(x) = ½e^{αx} (x < 0), 1 − ½e^{−αx} (x ≥ 0).   Default α = 1.
    Larger α: taller (peak α/2) and narrower.

    References:
      Neftci, Mostafa & Zenke 2019; SpikingJelly / braintools docs (``PiecewiseExp``).
    """

    name: ClassVar[str] = "piecewise_exp"
    alpha: float = 1.0

    def surrogate_grad(self, x: Array) -> Array:
        return self.alpha / 2 * jnp.exp(-self.alpha * jnp.abs(x))

    def surrogate_fun(self, x: Array) -> Array:
        half_e = 0.5 * jnp.exp(-self.alpha * _abs(x))  # bounded on both branches: no inf
        return jnp.where(x < 0, half_e, 1 - half_e)

    def integral(self) -> Any:
        return 1.0


@_register
class NonzeroSignLog(Surrogate):
    """Nonzero-sign-log surrogate: heavy 1/|x| tails, g unbounded (logarithmic).

    g'(x) = α / (1 + α|x|),   g(x) = s(x) ln(1 + α|x|) with s(x) = −1 if x < 0 else +1.
    Default α = 1. Larger α: taller (peak α) and narrower.

    References:
      SpikingJelly / braintools docs (``NonzeroSignLogAbs`` / ``NonzeroSignLog``).
    """

    name: ClassVar[str] = "nonzero_sign_log"
    alpha: float = 1.0

    def surrogate_grad(self, x: Array) -> Array:
        return self.alpha / (1 + self.alpha * jnp.abs(x))

    def surrogate_fun(self, x: Array) -> Array:
        return _sign(x) * jnp.log1p(self.alpha * _abs(x))

    def integral(self) -> Any:
        return math.inf  # 1/|x| tails


@_register
class PiecewiseLeakyRelu(Surrogate):
    """Piecewise leaky ReLU: a box of height 1/(2w) on [−w, w] over a floor of slope c.

    g'(x) = 1/(2w) if |x| ≤ w, else c;
    g(x) = cx + cw (x < −w), x/(2w) + ½ (|x| ≤ w), cx − cw + 1 (x > w).
    Defaults c = 0.01, w = 1. Larger w: wider and lower box; c: gradient far from threshold.

    References:
      SpikingJelly / braintools docs (``PiecewiseLeakyReLU`` / ``PiecewiseLeakyRelu``).
    """

    name: ClassVar[str] = "piecewise_leaky_relu"
    rules: ClassVar[Mapping[str, str]] = {"c": "finite"}
    c: float = 0.01
    w: float = 1.0

    def surrogate_grad(self, x: Array) -> Array:
        return jnp.where(jnp.abs(x) <= self.w, 0.5 / self.w, self.c)

    def surrogate_fun(self, x: Array) -> Array:
        c, w = self.c, self.w
        outer = jnp.where(x < 0, c * x + c * w, c * x - c * w + 1)
        return jnp.where(jnp.abs(x) <= w, x / (2 * w) + 0.5, outer)

    def integral(self) -> Any:
        return _where(self.c == 0, 1.0, _sign_inf(self.c))  # the box, plus c over the real line

    def peak(self) -> Any:
        return _maximum(0.5 / self.w, self.c)


@_register
class LeakyRelu(Surrogate):
    """Leaky-ReLU surrogate: a step in the slope, α below threshold and β above.

    g'(x) = α if x < 0, else β  (β at x = 0);   g(x) = αx if x < 0, else βx.
    Defaults α = 0.1, β = 1. α (may be 0 or negative) is the gradient of silent neurons.

    References:
      SpikingJelly / braintools docs (``LeakyKReLU`` / ``LeakyRelu``).
    """

    name: ClassVar[str] = "leaky_relu"
    rules: ClassVar[Mapping[str, str]] = {"alpha": "finite"}
    alpha: float = 0.1
    beta: float = 1.0

    def surrogate_grad(self, x: Array) -> Array:
        return jnp.where(x < 0, self.alpha, self.beta)

    def surrogate_fun(self, x: Array) -> Array:
        return jnp.where(x < 0, self.alpha * x, self.beta * x)

    def integral(self) -> Any:
        return _where(self.alpha >= 0, math.inf, math.nan)  # β·∞ (+ α·∞: undefined if α < 0)

    def peak(self) -> Any:
        return _maximum(self.alpha, self.beta)


@_register
class LogTailedRelu(Surrogate):
    """Log-tailed ReLU: slope α below 0, 1 on (0, 1], then a 1/x (logarithmic) tail.

    g'(x) = α if x ≤ 0 (α at x = 0); 1 if 0 < x ≤ 1; 1/x if x > 1;
    g(x) = αx (x ≤ 0); x (0 < x ≤ 1); 1 + ln x (x > 1).   Default α = 0 (may be 0 or negative).

    References:
      Cai et al. 2017 (HWGQ); SpikingJelly / braintools docs (``LogTailedReLU``).
    """

    name: ClassVar[str] = "log_tailed_relu"
    rules: ClassVar[Mapping[str, str]] = {"alpha": "finite"}
    alpha: float = 0.0

    def surrogate_grad(self, x: Array) -> Array:
        tail = 1 / jnp.where(x > 1, x, 1.0)
        return jnp.where(x <= 0, self.alpha, jnp.where(x <= 1, 1.0, tail))

    def surrogate_fun(self, x: Array) -> Array:
        tail = 1 + jnp.log(jnp.where(x > 1, x, 1.0))  # no log(x <= 0), even untaken
        return jnp.where(x <= 0, self.alpha * x, jnp.where(x <= 1, x, tail))

    def integral(self) -> Any:
        return _where(self.alpha >= 0, math.inf, math.nan)  # the 1/x tail (+ α·∞)

    def peak(self) -> Any:
        return _maximum(self.alpha, 1.0)


@_register
class ReluGrad(Surrogate):
    """Triangular (ReLU-shaped) surrogate gradient of height α·width on [−width, width].

    g'(x) = max(α·width − α|x|, 0)  (0 at |x| = width).   Defaults α = 0.3, width = 1.
    α scales the height; width sets the support. Only g' is defined.

    References:
      Neftci, Mostafa & Zenke 2019; braintools docs (``ReluGrad``).
    """

    name: ClassVar[str] = "relu_grad"
    alpha: float = 0.3
    width: float = 1.0

    def surrogate_grad(self, x: Array) -> Array:
        return self.alpha * jnp.maximum(self.width - jnp.abs(x), 0.0)  # (0 at |x| = width)

    def integral(self) -> Any:
        return self.alpha * self.width**2


@_register
class GaussianGrad(Surrogate):
    """Gaussian surrogate gradient.

    g'(x) = α N(x; 0, σ).   Defaults σ = 0.5, α = 0.5. α scales; σ sets the width.
    Only g' is defined.

    References:
      Yin, Corradi & Bohté 2021; braintools docs (``GaussianGrad``).
    """

    name: ClassVar[str] = "gaussian_grad"
    sigma: float = 0.5
    alpha: float = 0.5

    def surrogate_grad(self, x: Array) -> Array:
        return self.alpha * _normal(x, 0.0, self.sigma)

    def integral(self) -> Any:
        return self.alpha


@_register
class MultiGaussianGrad(Surrogate):
    """Multi-Gaussian surrogate gradient: a Gaussian with two wide negative side lobes.

    g'(x) = scale·[(1+h) N(x; 0, σ) − h N(x; σ, sσ) − h N(x; −σ, sσ)].
    Defaults h = 0.15, s = 6, σ = 0.5, scale = 0.5. h (≥ 0) weights the side lobes, s
    their width relative to σ. Only g' is defined.

    References:
      Yin, Corradi & Bohté 2021; braintools docs (``MultiGaussianGrad``).
    """

    name: ClassVar[str] = "multi_gaussian_grad"
    rules: ClassVar[Mapping[str, str]] = {"h": "nonnegative"}  # h < 0: peak() is not g'(0)
    h: float = 0.15
    s: float = 6.0
    sigma: float = 0.5
    scale: float = 0.5

    def surrogate_grad(self, x: Array) -> Array:
        h, wide = self.h, self.s * self.sigma
        center = (1 + h) * _normal(x, 0.0, self.sigma)
        return self.scale * (
            center - h * _normal(x, self.sigma, wide) - h * _normal(x, -self.sigma, wide)
        )

    def integral(self) -> Any:
        return self.scale * (1 - self.h)  # (1 + h) − h − h Gaussians of unit area


@_register
class InvSquareGrad(Surrogate):
    """Inverse-square surrogate gradient (the SuperSpike shape, peak 1).

    g'(x) = 1 / (α|x| + 1)².   Default α = 100. Larger α: narrower. Only g' is defined
    (:class:`FastSigmoid` is the same g' with a g).

    References:
      Zenke & Ganguli 2018; braintools docs (``InvSquareGrad``).
    """

    name: ClassVar[str] = "inv_square_grad"
    alpha: float = 100.0

    def surrogate_grad(self, x: Array) -> Array:
        return 1 / (self.alpha * jnp.abs(x) + 1) ** 2

    def integral(self) -> Any:
        return 2 / self.alpha


@_register
class SlayerGrad(Surrogate):
    """SLAYER's exponential surrogate gradient (peak 1).

    g'(x) = exp(−α|x|).   Default α = 1. Larger α: narrower. Only g' is defined.

    References:
      Shrestha & Orchard 2018 (SLAYER); braintools docs (``SlayerGrad``).
    """

    name: ClassVar[str] = "slayer_grad"
    alpha: float = 1.0

    def surrogate_grad(self, x: Array) -> Array:
        return jnp.exp(-self.alpha * jnp.abs(x))

    def integral(self) -> Any:
        return 2 / self.alpha


def _one_period(x: Array, period: Any) -> Array:
    """``x`` moved by whole periods into [-period/2, period/2] (exact there): ``(2i-1)ωx``
    overflowed float32 for |x| > 1e34, and cos(inf) is NaN. The remainder first (exact, and
    below one period), so that ``x / period`` cannot overflow either (a period below 1 at
    |x| ~ 3e38 gave NaN); then at most one period more (exact: Sterbenz)."""
    r = jax.lax.rem(x, jnp.asarray(period, x.dtype))
    return r - jnp.round(r / period) * period


@_register
class SquarewaveFourierSeries(Surrogate):
    """Square wave of period T approximated by its first n odd Fourier terms.

    g'(x) = (4/T) Σ_{i=1..n} cos((2i−1)ωx),   g(x) = ½ + (2/π) Σ_{i=1..n} sin((2i−1)ωx)/(2i−1),
    ω = 2π/T. Defaults n = 2 (an integer >= 1, static), T = t_period = 8. g' is periodic and
    changes sign; larger n: a sharper step, larger T: wider. The sums run over n terms, as in
    braintools; SpikingJelly's ``SquarewaveFourierSeries`` sums n − 1 (its n = 3 is our n = 2).

    References:
      SpikingJelly / braintools docs (``SquarewaveFourierSeries``).
    """

    name: ClassVar[str] = "squarewave_fourier_series"
    rules: ClassVar[Mapping[str, str]] = {"n": "integer"}
    n: int = dataclasses.field(default=2, metadata={"static": True})
    t_period: float = 8.0

    def surrogate_grad(self, x: Array) -> Array:
        w = 2 * math.pi / self.t_period
        x = _one_period(x, self.t_period)
        return 4 / self.t_period * sum(jnp.cos((2 * i - 1) * w * x) for i in range(1, self.n + 1))

    def surrogate_fun(self, x: Array) -> Array:
        w = 2 * math.pi / self.t_period
        x = _one_period(x, self.t_period)
        terms = sum(jnp.sin((2 * i - 1) * w * x) / (2 * i - 1) for i in range(1, self.n + 1))
        return 0.5 + 2 / math.pi * terms

    def integral(self) -> Any:
        """g' is periodic: its integral over the central lobe |x| <= T/(4n), where g rises
        across the step, (4/π) Σ_{i=1..n} sin((2i−1)π/(2n))/(2i−1) (1.2004 for n = 2; it tends
        to (2/π) Si(π) ≈ 1.1790, the Gibbs overshoot, as n grows)."""
        n = self.n
        return 4 / math.pi * sum(math.sin((2 * i - 1) * math.pi / (2 * n)) / (2 * i - 1)
                                 for i in range(1, n + 1))


@_register
class S2NN(Surrogate):
    """S2NN: sigmoid-shaped below threshold, a 1/(x+1) tail above.

    g'(x) = α σ(αx)(1 − σ(αx)) if x < 0, else β/(x + 1)  (β at x = 0);
    g(x) = σ(αx) if x < 0, else β ln(x + 1 + ε) + ½.   Defaults α = 4, β = 1, ε = 1e-8.
    ε (>= 0) only guards the logarithm: g's derivative for x ≥ 0 is β/(x + 1 + ε), within β·ε
    of g'. Larger α: steeper left half; β scales the right half.

    References:
      Suetake et al. 2023 (S3NN, Neural Networks); braintools docs (``S2NN``).
    """

    name: ClassVar[str] = "s2nn"
    rules: ClassVar[Mapping[str, str]] = {"epsilon": "nonnegative"}
    alpha: float = 4.0
    beta: float = 1.0
    epsilon: float = 1e-8

    def surrogate_grad(self, x: Array) -> Array:
        right = self.beta / (jnp.where(x >= 0, x, 0.0) + 1)
        return jnp.where(x < 0, _sigmoid_grad(x, self.alpha), right)

    def surrogate_fun(self, x: Array) -> Array:
        right = self.beta * jnp.log(jnp.where(x >= 0, x, 0.0) + 1 + self.epsilon) + 0.5
        return jnp.where(x < 0, jax.nn.sigmoid(self.alpha * x), right)

    def integral(self) -> Any:
        return math.inf  # the β/(x + 1) tail

    def peak(self) -> Any:
        return _maximum(self.alpha / 4, self.beta)  # sup of the sigmoid half, β at x = 0


@_register
class QPseudoSpike(Surrogate):
    """q-PseudoSpike: a bump with tunable power-law tails |x|^(−α).

    g'(x) = (1 + 2|x|/(α+1))^(−α),
    g(x) = ½ + sign(x)·(α+1)/(2(1−α))·[(1 + 2|x|/(α+1))^(1−α) − 1]  (α = 1: the limit
    ½ + sign(x)·((α+1)/2)·ln(1 + 2|x|/(α+1))).   Default α = 2; peak 1 for any α.
    Smaller α: heavier tails; α → ∞ tends to exp(−2|x|). Integral (α+1)/(α−1) for α > 1
    (3 at the default), infinite for α <= 1.

    This follows braintools, whose (α+1) differs from the paper and SpikingJelly, which use
    (α−1) and so have unit integral for every α > 1: that one is
    :class:`QPseudoSpikePaper` (``q_pseudo_spike_paper``).

    References:
      Herranz-Celotti & Rouat 2024 (arXiv 2202.00282); braintools docs (``QPseudoSpike``).
    """

    name: ClassVar[str] = "q_pseudo_spike"
    alpha: float = 2.0

    def surrogate_grad(self, x: Array) -> Array:
        # exp(−α·log1p(u)), not (1+u)^(−α): float32's 1+u lost 2e-4 (relative) at α = 1e3
        return jnp.exp(-self.alpha * jnp.log1p(2 * jnp.abs(x) / (self.alpha + 1)))

    def surrogate_fun(self, x: Array) -> Array:
        a = self.alpha
        log_base = jnp.log1p(2 * _abs(x) / (a + 1))
        one = a == 1  # [(1+u)^(1−α) − 1]/(1−α) = expm1((1−α) ln(1+u))/(1−α) → ln(1+u) at α=1
        d = jnp.where(one, 1.0, 1 - a)
        ratio = jnp.where(one, log_base, jnp.expm1(d * log_base) / d)
        return 0.5 + _sign(x) * (a + 1) / 2 * ratio

    def integral(self) -> Any:
        a = self.alpha  # (α+1)/(α−1) for α > 1; the tails |x|^(−α) are not integrable else
        return _where(a > 1, (a + 1) / _where(a > 1, a - 1, 1.0), math.inf)


@_register
class QPseudoSpikePaper(Surrogate):
    """q-PseudoSpike as defined in the paper (and SpikingJelly): unit integral for every α.

    g'(x) = (1 + 2|x|/(α−1))^(−α),
    g(x) = ½ + sign(x)·½·[1 − (1 + 2|x|/(α−1))^(1−α)].   Default α = 2; α > 1 (the tail
    fatness: g' decays as |x|^(−α)); peak 1 and ∫g' = 1 for any α. Smaller α: heavier tails;
    α → ∞ tends to exp(−2|x|). :class:`QPseudoSpike` is braintools' variant with (α+1).

    References:
      Herranz-Celotti & Rouat 2024, "Stabilizing spiking neuron training" (arXiv 2202.00282),
      the q-PseudoSpike; SpikingJelly docs (``QPseudoSpike``).
    """

    name: ClassVar[str] = "q_pseudo_spike_paper"
    alpha: float = 2.0

    def __post_init__(self) -> None:
        a = self.alpha  # (α−1) divides: α must exceed 1
        number = isinstance(a, (numbers.Real, np.ndarray, jax.Array)) and not isinstance(
            a, (bool, np.bool_, jax.core.Tracer)
        )
        if number and np.asarray(a).dtype != bool and np.issubdtype(np.asarray(a).dtype, np.number):
            values = np.asarray(a, np.float64)
            if not np.all(np.isfinite(values) & (values > 1)):
                raise ValueError(f"QPseudoSpikePaper: alpha must be finite and > 1, got {a!r}")
        super().__post_init__()

    def surrogate_grad(self, x: Array) -> Array:
        return jnp.exp(-self.alpha * jnp.log1p(2 * jnp.abs(x) / (self.alpha - 1)))

    def surrogate_fun(self, x: Array) -> Array:
        log_base = jnp.log1p(2 * _abs(x) / (self.alpha - 1))
        return 0.5 - _sign(x) * 0.5 * jnp.expm1((1 - self.alpha) * log_base)

    def integral(self) -> Any:
        return 1.0


@_register
class FastSigmoid(Surrogate):
    """Fast sigmoid (SuperSpike): snnTorch's ``fast_sigmoid`` (slope 25; its default is atan).

    g'(x) = 1 / (α|x| + 1)²,   g(x) = x / (1 + α|x|) + ½.   Default α = 25; peak 1 for any α.
    Larger α: narrower (g saturates at ½ ± 1/α).

    References:
      Zenke & Ganguli 2018 (SuperSpike); snnTorch docs (``surrogate.fast_sigmoid``).
    """

    name: ClassVar[str] = "fast_sigmoid"
    alpha: float = 25.0

    def surrogate_grad(self, x: Array) -> Array:
        return 1 / (self.alpha * jnp.abs(x) + 1) ** 2

    def surrogate_fun(self, x: Array) -> Array:
        return x / (1 + self.alpha * jnp.abs(x)) + 0.5

    def integral(self) -> Any:
        return 2 / self.alpha


@_register
class StraightThrough(Surrogate):
    """Straight-through estimator: the step's gradient is taken to be 1 everywhere.

    g'(x) = 1,   g(x) = x + ½.   No parameters.

    References:
      Bengio, Léonard & Courville 2013.
    """

    name: ClassVar[str] = "straight_through"

    def surrogate_grad(self, x: Array) -> Array:
        return jnp.ones_like(x)

    def surrogate_fun(self, x: Array) -> Array:
        return x + 0.5

    def integral(self) -> Any:
        return math.inf


@_register
class Boxcar(Surrogate):
    """Boxcar (rectangular) surrogate of the given height on the open interval |x| < width/2.

    g'(x) = height if |x| < width/2, else 0  (0 at |x| = width/2);
    g(x) = height·clip(x, −width/2, width/2) + ½.   Defaults width = 1, height = 1.

    References:
      Wu et al. 2018 (STBP, rectangular curve); snnTorch / SpikingJelly docs.
    """

    name: ClassVar[str] = "boxcar"
    width: float = 1.0
    height: float = 1.0

    def surrogate_grad(self, x: Array) -> Array:
        return jnp.where(jnp.abs(x) < self.width / 2, self.height, 0.0)

    def surrogate_fun(self, x: Array) -> Array:
        half = self.width / 2  # where, not clip: clip's derivative is ½ at the edges
        inside = jnp.abs(x) < half
        return self.height * jnp.where(inside, x, jnp.where(x < 0, -half, half)) + 0.5

    def integral(self) -> Any:
        return self.height * self.width


def available() -> tuple[str, ...]:
    """The config names, sorted (one ``conf/surrogate/<name>.yaml`` each)."""
    return REGISTRY.names()


def param_names(name: str) -> tuple[str, ...]:
    """The parameters of surrogate ``name``, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(REGISTRY.lookup(name)))


def get(name: str, **params: Any) -> Surrogate:
    """The surrogate called ``name`` with ``params`` (the others at their defaults).

    Raises:
      ValueError: an unknown name (lists all names), an unknown parameter (names it and the
        valid ones) or an invalid value (names class, parameter and value).
    """
    for k, v in params.items():  # (the class lets None through: a pytree's placeholder)
        if v is None:
            raise ValueError(f"{name}: {k} must be a number, got None")
    return REGISTRY.create(name, **params)


def from_config(cfg: Mapping[str, Any]) -> Surrogate:
    """The surrogate of a ``surrogate`` config group: ``{"name": ..., <its parameters>,
    "normalize": bool}`` (a dict or a ``DictConfig``); ``normalize: true`` returns it rescaled
    to unit integral (:meth:`Surrogate.normalized`). Errors as :func:`get`."""
    params = plain(cfg)
    normalize = params.pop("normalize", False)
    for k, v in params.items():  # a config holds numbers (the class lets placeholders through)
        if k != "name" and not (isinstance(v, numbers.Real) and not isinstance(v, bool)):
            raise ValueError(f"{params.get('name')}: {k} must be a number, got {v!r}")
    s = REGISTRY.build(params)
    return s.normalized() if normalize else s


def _functional(cls: type[Surrogate], fname: str) -> Callable[..., Array]:
    fields = dataclasses.fields(cls)
    sig = inspect.Signature(
        [inspect.Parameter("x", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [
            inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=f.default)
            for f in fields
        ]
    )

    def fn(*args: Any, **kwargs: Any) -> Array:
        bound = sig.bind(*args, **kwargs)
        x = bound.arguments.pop("x")
        return cls(**bound.arguments)(x)

    fn.__name__ = fn.__qualname__ = fname
    fn.__signature__ = sig  # type: ignore[attr-defined]
    fn.__doc__ = f"``{cls.__name__}(**params)(x)``: spikes of ``x``, surrogate gradient backward."
    return fn


sigmoid = _functional(Sigmoid, "sigmoid")
soft_sign = _functional(SoftSign, "soft_sign")
arctan = _functional(Arctan, "arctan")
erf = _functional(ERF, "erf")
piecewise_quadratic = _functional(PiecewiseQuadratic, "piecewise_quadratic")
piecewise_exp = _functional(PiecewiseExp, "piecewise_exp")
nonzero_sign_log = _functional(NonzeroSignLog, "nonzero_sign_log")
piecewise_leaky_relu = _functional(PiecewiseLeakyRelu, "piecewise_leaky_relu")
leaky_relu = _functional(LeakyRelu, "leaky_relu")
log_tailed_relu = _functional(LogTailedRelu, "log_tailed_relu")
relu_grad = _functional(ReluGrad, "relu_grad")
gaussian_grad = _functional(GaussianGrad, "gaussian_grad")
multi_gaussian_grad = _functional(MultiGaussianGrad, "multi_gaussian_grad")
inv_square_grad = _functional(InvSquareGrad, "inv_square_grad")
slayer_grad = _functional(SlayerGrad, "slayer_grad")
squarewave_fourier_series = _functional(SquarewaveFourierSeries, "squarewave_fourier_series")
s2nn = _functional(S2NN, "s2nn")
q_pseudo_spike = _functional(QPseudoSpike, "q_pseudo_spike")
q_pseudo_spike_paper = _functional(QPseudoSpikePaper, "q_pseudo_spike_paper")
fast_sigmoid = _functional(FastSigmoid, "fast_sigmoid")
straight_through = _functional(StraightThrough, "straight_through")
boxcar = _functional(Boxcar, "boxcar")
