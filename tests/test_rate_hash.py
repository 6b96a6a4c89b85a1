"""The counter-based rate coder (``encoder.generator=hash``): unbiased, independent across
steps, pixels and examples, and a pure function of (example key, step)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snntrain.encoding import Rate, example_keys, hash_words, lowbias32

T, B, D = 400, 8, 256


def _spikes(p: float, seed: int = 0) -> np.ndarray:
    keys = example_keys(jax.random.PRNGKey(seed), jnp.arange(B))
    return np.asarray(Rate()(jnp.full((B, D), p), keys, T))


@pytest.mark.parametrize("p", [0.0, 1 / 256, 0.1, 0.5, 0.9, 1.0])
def test_rate_is_the_quantised_probability(p):
    s = _spikes(p)
    q = round(256 * p) / 256
    sigma = np.sqrt(q * (1 - q) / s.size)
    assert abs(s.mean() - q) <= 4.5 * sigma  # exact 0 and 1 at the ends (sigma = 0)
    per_pixel = s.mean(axis=0)  # every pixel, not only the average, has the rate
    assert np.abs(per_pixel - q).max() <= 5.5 * np.sqrt(q * (1 - q) / T) + 1e-12


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).mean() / np.sqrt((a * a).mean() * (b * b).mean()))


def test_independent_across_steps_pixels_and_examples():
    s = _spikes(0.5).astype(np.float64)  # T x B x D
    bound = 4.5 / np.sqrt(s[1:].size)
    assert abs(_corr(s[1:], s[:-1])) < bound  # consecutive steps
    assert abs(_corr(s[:, :, 1:], s[:, :, :-1])) < bound  # neighbouring pixels (same word)
    assert abs(_corr(s[:, :, 4:], s[:, :, :-4])) < bound  # the same byte of neighbouring words
    assert abs(_corr(s[:, 1:], s[:, :-1])) < bound  # consecutive examples


def test_same_key_same_spikes_and_windows_are_exact():
    keys = example_keys(jax.random.PRNGKey(3), jnp.arange(B))
    x = jax.random.uniform(jax.random.PRNGKey(4), (B, 7, 5))
    full = Rate()(x, keys, 20)
    np.testing.assert_array_equal(full, Rate()(x, keys, 20))
    np.testing.assert_array_equal(full[5:12], Rate().steps(x, keys, 5, 7, 20))
    same_x = jnp.broadcast_to(x[:1], x.shape)  # every example the same image
    a = Rate()(same_x, keys, 20)
    b = Rate()(same_x, example_keys(jax.random.PRNGKey(3), jnp.arange(B) + 1), 20)
    assert (np.asarray(a[:, 0]) != np.asarray(a[:, 1])).any()  # examples draw differently
    np.testing.assert_array_equal(np.asarray(b[:, :-1]), np.asarray(a[:, 1:]))  # by index


def test_words_of_one_example_never_collide():
    keys = example_keys(jax.random.PRNGKey(0), jnp.arange(2))
    w = np.asarray(hash_words(keys, jnp.arange(300), 50))  # L x B x M
    for b in range(2):
        assert len(np.unique(w[:, b])) == w[:, b].size
    x = jnp.arange(1 << 16, dtype=jnp.uint32)
    assert len(np.unique(np.asarray(lowbias32(x)))) == 1 << 16  # a bijection


def test_threefry_generator_is_still_available():
    keys = example_keys(jax.random.PRNGKey(0), jnp.arange(B))
    s = np.asarray(Rate(generator="threefry")(jnp.full((B, D), 0.25), keys, 100))
    assert abs(s.mean() - 0.25) < 4.5 * np.sqrt(0.25 * 0.75 / s.size)
    with pytest.raises(ValueError, match="generator must be one of hash, threefry"):
        Rate(generator="philox")
