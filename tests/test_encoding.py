"""Encoders: rate frequencies, latency spike times, direct identity, per-example keys."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snntrain import encoding


def _keys(n, seed=0):
    return encoding.example_keys(jax.random.PRNGKey(seed), jnp.arange(n))


def test_rate_frequency_converges_to_intensity():
    """T = 2000 Bernoulli draws per input: |frequency - p| <= 4.5 * sqrt(p (1 - p) / T)."""
    T = 2000
    x = jnp.linspace(0.0, 1.0, 48).reshape(2, 4, 6, 1)  # B=2 examples of 4x6x1
    s = encoding.Rate()(x, _keys(2), T)
    assert s.shape == (T, 2, 4, 6, 1)
    assert set(np.unique(np.asarray(s))) <= {0.0, 1.0}
    freq, p = np.asarray(s.mean(0)), np.asarray(x)
    tol = 4.5 * np.sqrt(p * (1 - p) / T) + 1e-9
    assert (np.abs(freq - p) <= tol).all(), np.abs(freq - p).max()
    # and with a gain: p = clip(gain * x, 0, 1)
    s2 = encoding.Rate(gain=2.0)(x, _keys(2), T)
    p2 = np.clip(2 * p, 0, 1)
    assert (np.abs(np.asarray(s2.mean(0)) - p2) <= 4.5 * np.sqrt(p2 * (1 - p2) / T) + 1e-9).all()


def test_rate_draws_depend_only_on_each_examples_key():
    """Encoding a batch, or each half separately with the same per-example keys, is identical."""
    x = jax.random.uniform(jax.random.PRNGKey(1), (6, 5))
    keys = _keys(6, seed=3)
    full = encoding.Rate()(x, keys, 9)
    halves = jnp.concatenate(
        [encoding.Rate()(x[:3], keys[:3], 9), encoding.Rate()(x[3:], keys[3:], 9)], axis=1
    )
    np.testing.assert_array_equal(full, halves)


@pytest.mark.parametrize("T", [5, 25])
def test_latency_linear_spike_times_equal_the_formula(T):
    x = np.array([[0.0, 0.005, 0.01, 0.2, 0.5, 0.73, 0.99, 1.0]], np.float32)
    s = np.asarray(encoding.Latency(mode="linear", threshold=0.01)(jnp.asarray(x), _keys(1), T))
    assert s.shape == (T, 1, 8)
    counts = s.sum(0)[0]
    np.testing.assert_array_equal(counts, [0, 0, 1, 1, 1, 1, 1, 1])  # below threshold: silent
    expected = np.round((1.0 - x[0]) * (T - 1)).astype(int)
    for d in range(2, 8):
        assert int(np.argmax(s[:, 0, d])) == expected[d], (d, x[0, d])
    assert int(np.argmax(s[:, 0, 7])) == 0 and int(np.argmax(s[:, 0, 2])) == T - 1


def test_latency_log_spike_times_equal_the_formula():
    T, thr, tau = 30, 0.1, 4.0
    x = np.array([[0.05, 0.1, 0.10001, 0.15, 0.3, 0.6, 1.0]], np.float32)
    enc = encoding.Latency(mode="log", threshold=thr, tau=tau)
    s = np.asarray(enc(jnp.asarray(x), _keys(1), T))
    np.testing.assert_array_equal(s.sum(0)[0], [0, 0, 1, 1, 1, 1, 1])  # x <= threshold: silent
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.minimum(np.round(tau * np.log(x[0] / (x[0] - thr))), T - 1)
    # by hand: 0.15 -> 4 ln 3 = 4.39 -> 4; 0.3 -> 4 ln 1.5 = 1.62 -> 2; 1.0 -> 0.42 -> 0
    np.testing.assert_array_equal(t[3:], [4, 2, 1, 0])
    for d in range(2, 7):
        assert int(np.argmax(s[:, 0, d])) == t[d]
    assert int(np.argmax(s[:, 0, 2])) == T - 1  # 4 ln(10001) = 36.8: clamped to T - 1
    with pytest.raises(ValueError, match="threshold must be > 0 with mode=log"):
        encoding.Latency(mode="log", threshold=0.0)


def test_direct_is_identity_at_every_step():
    x = jax.random.uniform(jax.random.PRNGKey(2), (3, 4, 4, 1))
    r = encoding.Direct()(x, _keys(3), 7)
    assert isinstance(r, encoding.Repeated) and r.shape == (7, 3, 4, 4, 1) and r.T == 7
    full = r.materialize()
    for t in range(7):
        np.testing.assert_array_equal(full[t], x)
    np.testing.assert_array_equal(jnp.asarray(r), full)  # usable as an ordinary array
    doubled = jax.jit(lambda r: jax.tree.map(lambda a: 2 * a, r))(r)  # a pytree through jit
    assert isinstance(doubled, encoding.Repeated) and doubled.T == 7


def test_get_builds_every_encoder_and_rejects_bad_names():
    for name in ("rate", "latency", "direct", "none"):
        assert encoding.get(name).name == name
    with pytest.raises(ValueError, match="valid: direct, latency, none, rate"):
        encoding.get("delta")
    with pytest.raises(ValueError, match="mode"):
        encoding.get("latency", mode="exp")


def test_rate_8bit_draws_match_their_quantised_probability():
    """resolution=8: P = round(256 p)/256; 0 never fires, 1 always; frequencies within 4 sigma."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from snntrain.encoding import Rate, example_keys

    p = jnp.array([[0.0, 1.0, 0.5, 0.1, 0.013, 0.77, 0.3333]])
    T = 40000
    for resolution in (8, 32):
        s = Rate(resolution=resolution)(p, example_keys(jax.random.PRNGKey(3), jnp.arange(1)), T)
        assert s.shape == (T, 1, 7) and s.dtype == p.dtype
        freq = np.asarray(s.mean(0))[0]
        q = np.round(np.asarray(p)[0] * 256) / 256 if resolution == 8 else np.asarray(p)[0]
        assert freq[0] == 0.0 and freq[1] == 1.0
        np.testing.assert_allclose(freq, q, atol=4 * np.sqrt(0.25 / T))


@pytest.mark.parametrize(
    "encoder",
    [encoding.Rate(), pytest.param(encoding.Rate(resolution=32), marks=pytest.mark.slow),
     encoding.Latency(), encoding.Latency("log")],
    ids=["rate8", "rate32", "latency", "latency-log"],
)
def test_a_window_of_steps_equals_the_same_steps_of_the_whole_code(encoder):
    """``Encoded`` windows (a traced start, as in the remat scan) draw exactly the steps the
    whole ``T``-step code has there; drawing nothing gives an empty array."""
    T, x = 9, jax.random.uniform(jax.random.PRNGKey(1), (3, 5, 2))
    whole = encoder(x, _keys(3), T)
    lazy = encoding.Encoded(encoder, x, _keys(3), T)
    assert lazy.shape == whole.shape
    np.testing.assert_array_equal(lazy.materialize(), whole)
    pieces = jax.jit(lambda e, s: e.window(s, 4).materialize())
    for start in (0, 2, 5):
        np.testing.assert_array_equal(pieces(lazy, start), whole[start : start + 4])
    np.testing.assert_array_equal(lazy.window(2, 5).window(1, 2).materialize(), whole[3:5])
    assert lazy.window(0, 0).materialize().shape == (0, 3, 5, 2)
    # drawn one step at a time (a lax.map, as the conv model draws its input): the same bits
    np.testing.assert_array_equal(lazy.materialize(per_step=True), whole)
    steps = jax.jit(lambda e, s: e.window(s, 4).materialize(per_step=True))
    for start in (0, 5):
        np.testing.assert_array_equal(steps(lazy, start), whole[start : start + 4])
    assert lazy.window(0, 0).materialize(per_step=True).shape == (0, 3, 5, 2)


@pytest.mark.parametrize("gain", ["2", True, float("nan"), 0.0])
def test_rate_gain_must_be_a_positive_number(gain):
    """gain="2" was accepted and failed at call time deep inside jnp."""
    message = f"rate encoder: gain must be finite and > 0, got {gain!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        encoding.get("rate", gain=gain)


@pytest.mark.parametrize("encoder", ["rate", "latency encoder.mode=linear"])
def test_bfloat16_compute_draws_the_float32_pixels_spikes(encoder, monkeypatch):
    """The pixels were cast to bfloat16 before the encoder: the rate code's probabilities
    moved by up to 1/343 (32 of 256 levels differed) and some latency spikes by a step. Spikes
    are exact in bfloat16: the bfloat16 step now draws the float32 step's spikes."""
    from conftest import compose
    from flax import nnx

    from snntrain import data, steps, train

    drawn = []
    for dtype in ("float32", "bfloat16"):
        exp = train.build(compose(*f"encoder={encoder}".split(), f"trainer.dtype={dtype}",
                                  "trainer.batch_size=256", "T=25"))
        model = type(nnx.merge(exp.graphdef, exp.params, exp.rest))
        if not drawn:  # (the model's input, as drawn)
            call = model.__call__
            monkeypatch.setattr(model, "__call__", lambda self, x, *a, call=call, **k: (
                drawn.append(np.asarray(encoding.realize(x), np.float32)) or call(self, x, *a,
                                                                                   **k)))
        batch = next(data.batches(exp.data.train, exp.batch_size))
        # (the digits' pixels, k / 16, are bfloat16 numbers: pixels k / 255 of a photo are not)
        batch["x"] = (np.arange(batch["x"].size) % 256 / 255).astype(np.float32).reshape(
            batch["x"].shape)
        steps.make_forward(exp)(exp.params, batch, jax.random.key(3), exp.surrogate)
    assert len(drawn) == 2 and drawn[0].shape == (25, 256, 8, 8, 1) and drawn[0].sum() > 0
    np.testing.assert_array_equal(drawn[1], drawn[0])
