"""Neurons: single steps against hand computations, reset gradients, ALIF, the time loop."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snntrain import neurons, surrogates

SLOPE = 0.3  # the test spike function's derivative: a constant, so gradients are hand-computable


# Heaviside forward (H(0) = 1), constant derivative ``SLOPE`` on both sides backward.
spike = surrogates.LeakyRelu(alpha=SLOPE, beta=SLOPE)


V0 = np.array([0.0, 0.5, 0.9, 2.0], np.float32)
I_IN = np.array([0.5, 0.6, 0.05, -0.5], np.float32)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("detach", [False, True])
def test_lif_single_step_matches_hand_computation(reset, detach):
    cell = neurons.LIF(beta=0.8, threshold=0.7, reset=reset, detach_reset=detach)
    state, s = cell.step({"v": jnp.asarray(V0)}, jnp.asarray(I_IN), spike, cell.default_params())
    # charge: 0.8 * v0 + i = [0.5, 1.0, 0.77, 1.1]; fire: >= 0.7 -> [0, 1, 1, 1]
    np.testing.assert_array_equal(np.asarray(s), [0.0, 1.0, 1.0, 1.0])
    charged = np.array([0.5, 1.0, 0.77, 1.1], np.float32)
    expected = {"subtract": [0.5, 0.3, 0.07, 0.4], "zero": [0.5, 0.0, 0.0, 0.0], "none": charged}[
        reset
    ]
    np.testing.assert_allclose(np.asarray(state["v"]), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("detach", [False, True])
def test_gradient_through_reset_with_and_without_detach(reset, detach):
    """d v_t / d i_t after the reset, by hand, with a constant surrogate slope ``SLOPE``."""
    cell = neurons.LIF(beta=0.8, threshold=0.7, reset=reset, detach_reset=detach)
    p = cell.default_params()
    grad = jax.grad(lambda i: cell.step({"v": jnp.asarray(V0)}, i, spike, p)[0]["v"].sum())(
        jnp.asarray(I_IN)
    )
    v = np.array([0.5, 1.0, 0.77, 1.1], np.float32)
    s = (v >= 0.7).astype(np.float32)
    ds = 0.0 if detach else SLOPE  # d s / d v through the reset term
    expected = {
        "subtract": 1.0 - 0.7 * ds * np.ones(4),  # v - s * theta
        "zero": (1.0 - s) - v * ds,  # v * (1 - s)
        "none": np.ones(4),
    }[reset]
    np.testing.assert_allclose(np.asarray(grad), expected, rtol=1e-6)


def test_spike_output_keeps_its_surrogate_gradient_under_detach_reset():
    cell = neurons.LIF(beta=0.8, threshold=0.7, detach_reset=True)
    g = jax.grad(
        lambda i: cell.step({"v": jnp.asarray(V0)}, i, spike, cell.default_params())[1].sum()
    )(jnp.asarray(I_IN))
    np.testing.assert_allclose(np.asarray(g), SLOPE * np.ones(4), rtol=1e-6)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_if_single_step_is_integration_without_leak(reset):
    cell = neurons.IF(threshold=0.7, reset=reset)
    assert "beta" not in cell.default_params()
    state, s = cell.step({"v": jnp.asarray(V0)}, jnp.asarray(I_IN), spike, cell.default_params())
    charged = V0 + I_IN  # [0.5, 1.1, 0.95, 1.5]
    np.testing.assert_array_equal(np.asarray(s), [0.0, 1.0, 1.0, 1.0])
    expected = {"subtract": [0.5, 0.4, 0.25, 0.8], "zero": [0.5, 0, 0, 0], "none": charged}[reset]
    np.testing.assert_allclose(np.asarray(state["v"]), expected, atol=1e-6)


def test_tau_sets_beta_to_exp_minus_dt_over_tau():
    assert neurons.LIF(tau=10.0).default_params()["beta"] == pytest.approx(math.exp(-0.1))
    assert neurons.LIF(beta=0.5, tau=4.0, dt=2.0).decay == pytest.approx(math.exp(-0.5))
    assert neurons.LIF(beta=0.5).decay == 0.5
    alif = neurons.ALIF(tau_a=20.0, dt=1.0)
    assert alif.default_params()["rho"] == pytest.approx(math.exp(-1 / 20))


def test_invalid_neuron_parameters_fail_in_one_line():
    with pytest.raises(ValueError, match="beta"):
        neurons.LIF(beta=1.5)
    with pytest.raises(ValueError, match="tau"):
        neurons.LIF(tau=-1.0)
    with pytest.raises(ValueError, match="reset"):
        neurons.IF(reset="soft")
    with pytest.raises(ValueError, match="takes no parameter 'beta'"):
        neurons.get("if", beta=0.9)
    with pytest.raises(ValueError, match="valid: alif, if, lif"):
        neurons.get("izhikevich")
    # infinite thresholds and adaptation: an ALIF with b=inf had theta = NaN and never fired
    for make in (neurons.LIF, neurons.IF, neurons.ALIF):
        with pytest.raises(ValueError, match="threshold must be finite and > 0, got inf"):
            make(threshold=math.inf)
    with pytest.raises(ValueError, match="ALIF: b must be finite and >= 0, got inf"):
        neurons.ALIF(b=math.inf)
    # "false" is truthy (the reset was detached); True passed as a threshold of 1
    with pytest.raises(ValueError, match="LIF: detach_reset must be true or false, got 'false'"):
        neurons.get("lif", detach_reset="false")
    with pytest.raises(ValueError, match="IF: threshold must be a number, got True"):
        neurons.IF(threshold=True)
    # text where a number belongs passed float() checks and stayed text ("0.9")
    for make, key in ((neurons.LIF, "beta"), (neurons.IF, "threshold"), (neurons.ALIF, "b"),
                      (neurons.ALIF, "rho"), (neurons.LIF, "tau")):
        with pytest.raises(ValueError, match=f"{make.__name__}: {key} must be a number, got '0.9'"):
            make(**{key: "0.9"})


def test_alif_threshold_sequence_matches_hand_computation():
    """Constant input 1.2, beta = rho = 0.5, threshold 1, b = 0.5 (worked out in the comments).

    t=1: a=0,     theta=1,       v=1.2   -> spike, v=0.2,    a <- 0.5*0 + 1     = 1
    t=2: a=1,     theta=1.5,     v=1.3   -> none,            a <- 0.5
    t=3: a=0.5,   theta=1.25,    v=1.85  -> spike, v=0.6,    a <- 0.25 + 1      = 1.25
    t=4: a=1.25,  theta=1.625,   v=1.5   -> none,            a <- 0.625
    t=5: a=0.625, theta=1.3125,  v=1.95  -> spike, v=0.6375, a <- 0.3125 + 1    = 1.3125
    t=6: a=1.3125,theta=1.65625, v=1.51875 -> none
    """
    cell = neurons.ALIF(beta=0.5, threshold=1.0, rho=0.5, b=0.5)
    p = cell.default_params()
    state = cell.init_state((1,))
    thetas, spikes, vs = [], [], []
    for _ in range(6):
        thetas.append(float(p["threshold"] + p["b"] * state["a"][0]))
        state, s = cell.step(state, jnp.full((1,), 1.2), spike, p)
        spikes.append(float(s[0]))
        vs.append(float(state["v"][0]))
    np.testing.assert_allclose(thetas, [1, 1.5, 1.25, 1.625, 1.3125, 1.65625], rtol=1e-6)
    np.testing.assert_array_equal(spikes, [1, 0, 1, 0, 1, 0])
    np.testing.assert_allclose(vs, [0.2, 1.3, 0.6, 1.5, 0.6375, 1.51875], rtol=1e-5)
    run_spikes = neurons.run(cell, p, jnp.full((6, 1, 1), 1.2), spike)
    np.testing.assert_array_equal(np.asarray(run_spikes).ravel(), spikes)


def test_alif_with_b_zero_is_lif():
    i = jax.random.normal(jax.random.PRNGKey(0), (7, 3, 5)) + 0.5
    lif = neurons.LIF(beta=0.7, threshold=0.8)
    alif = neurons.ALIF(beta=0.7, threshold=0.8, b=0.0)
    np.testing.assert_array_equal(
        neurons.run(lif, lif.default_params(), i, spike),
        neurons.run(alif, alif.default_params(), i, spike),
    )


def _loop(cell, p, i_TxBxN, recurrent=None):
    """The straightforward reference: a Python loop over the first (time) axis."""
    state = cell.init_state(i_TxBxN.shape[1:])
    s = jnp.zeros(i_TxBxN.shape[1:])
    out = []
    for t in range(i_TxBxN.shape[0]):
        i_t = i_TxBxN[t] + (recurrent(s) if recurrent is not None else 0.0)
        state, s = cell.step(state, i_t, spike, p)
        out.append(s)
    return jnp.stack(out)


@pytest.mark.parametrize("kind", ["lif", "if", "alif"])
def test_run_is_time_major_with_T_not_equal_B(kind):
    """T=7, B=3: a loop over the batch axis instead of time would give other spikes/shapes."""
    cell = neurons.get(kind)
    i_TxBxN = 0.8 * jax.random.normal(jax.random.PRNGKey(1), (7, 3, 4)) + 0.4
    s = neurons.run(cell, cell.default_params(), i_TxBxN, spike)
    assert s.shape == (7, 3, 4)
    np.testing.assert_array_equal(
        np.asarray(s), np.asarray(_loop(cell, cell.default_params(), i_TxBxN))
    )
    wrong = jnp.swapaxes(_loop(cell, cell.default_params(), jnp.swapaxes(i_TxBxN, 0, 1)), 0, 1)
    assert not np.array_equal(np.asarray(s), np.asarray(wrong))
    assert 0 < float(s.mean()) < 1


def test_run_with_recurrent_input_matches_loop():
    w = 0.5 * jax.random.normal(jax.random.PRNGKey(2), (4, 4))
    rec = lambda s: s @ w
    cell = neurons.LIF()
    i_TxBxN = jax.random.normal(jax.random.PRNGKey(3), (9, 2, 4)) + 0.5
    s = neurons.run(cell, cell.default_params(), i_TxBxN, spike, recurrent=rec)
    np.testing.assert_array_equal(s, _loop(cell, cell.default_params(), i_TxBxN, rec))
    assert not np.array_equal(s, neurons.run(cell, cell.default_params(), i_TxBxN, spike))


@pytest.mark.parametrize("kind", ["lif", "alif"])
def test_remat_gives_identical_values_and_gradients(kind):
    cell = neurons.get(kind)
    i_TxBxN = jax.random.normal(jax.random.PRNGKey(4), (12, 3, 5)) + 0.5

    def loss(i, remat):
        return (
            neurons.run(cell, cell.default_params(), i, spike, remat=remat)
            * jnp.arange(12.0)[:, None, None]
        ).sum()

    g0 = jax.jit(jax.grad(lambda i: loss(i, False)))(i_TxBxN)
    g1 = jax.jit(jax.grad(lambda i: loss(i, True)))(i_TxBxN)
    assert float(jnp.abs(g0).max()) > 0
    np.testing.assert_allclose(g0, g1, rtol=0, atol=1e-6)


def test_leaky_integrate_equals_recursion():
    i = jax.random.normal(jax.random.PRNGKey(5), (6, 2, 3))
    v, ref = jnp.zeros((2, 3)), []
    for t in range(6):
        v = 0.75 * v + i[t]
        ref.append(v)
    np.testing.assert_allclose(neurons.leaky_integrate(i, 0.75), jnp.stack(ref), atol=1e-6)


def test_bfloat16_spikes_stay_bfloat16_and_the_state_is_float32():
    cell = neurons.ALIF()
    s, (state) = neurons.run(cell, cell.default_params(), jnp.ones((4, 2, 3), jnp.bfloat16),
                             spike, return_carry=True)
    assert s.dtype == jnp.bfloat16
    assert state["v"].dtype == state["a"].dtype == jnp.float32


@pytest.mark.parametrize("learned", [False, True])
def test_bfloat16_currents_decay_with_the_float32_beta(learned):
    """In bfloat16 the decay rounded to a multiple of 2**-8: beta = 0.999 became 1.0 (the LIF
    stopped leaking: v = 1.0 after 49 empty steps, not 0.999**49 = 0.952) and 0.99 became
    0.98828 (reviewer). The state and the decay are float32 now, also for a beta given as an
    array (a learned or a population member's beta)."""
    i = jnp.zeros((50, 1, 2), jnp.bfloat16).at[0].set(1.0)
    for beta, rho in ((0.999, 0.995), (0.99, 0.9)):
        cell = neurons.ALIF(beta=beta, rho=rho, threshold=1e3, b=0.0)
        p = cell.default_params()
        if learned:
            p = {k: jnp.full((2,), v, jnp.bfloat16 if k == "threshold" else jnp.float32)
                 for k, v in p.items()}
        _, state = neurons.run(cell, p, i, spike, return_carry=True)
        v = np.float32(1.0)
        for _ in range(49):
            v = np.float32(np.float32(beta) * v)
        np.testing.assert_allclose(state["v"], [[v, v]], rtol=1e-6)
        assert abs(float(state["v"][0, 0]) - beta**49) < 1e-5


def test_leaky_integrate_of_bfloat16_currents_is_float32():
    """The readout's trace in bfloat16 lost 7% of a slow membrane (readout_beta 0.99, T = 200)
    to the rounded decay's powers; its kernel and trace are float32 now (the currents, small
    integers here, are exact in bfloat16)."""
    i = jnp.asarray(np.random.default_rng(0).integers(-3, 4, (200, 2, 3)), jnp.bfloat16)
    v = neurons.leaky_integrate(i, 0.99)
    assert v.dtype == jnp.float32
    ref, acc = [], np.zeros((2, 3))
    for t in range(200):
        acc = 0.99 * acc + np.asarray(i[t], np.float64)
        ref.append(acc)
    np.testing.assert_allclose(v, np.stack(ref), rtol=1e-4, atol=1e-4)
