"""The autotuner: picks a candidate by timing, caches per device and shapes, survives a corrupt
cache, and never times twice for the same key."""

import json

import jax.numpy as jnp
import pytest

from snntrain import autotune


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNTRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(autotune, "_memory", {})
    return tmp_path / "autotune.json"


def test_fastest_is_cached_per_shape_and_not_timed_again(cache, monkeypatch):
    calls = []
    times = iter([2.0, 1.0, 1.0, 3.0])
    monkeypatch.setattr(autotune, "_time", lambda fn, args, budget_s: (calls.append(1),
                                                                          next(times))[1])
    cands = {"a": jnp.sin, "b": jnp.cos}
    args = lambda: autotune.random_args(((4, 3), jnp.float32))
    assert autotune.fastest("op", [(4, 3)], cands, args) == "b"  # a 2.0, b 1.0
    assert autotune.fastest("op", [(4, 3)], cands, args) == "b"
    assert len(calls) == 2  # the second call was answered from memory
    assert autotune.fastest("op", [(5, 3)], cands, args) == "a"  # another shape: timed
    assert len(calls) == 4
    table = json.loads(cache.read_text())
    assert sorted(v["choice"] for v in table.values()) == ["a", "b"]
    autotune._memory.clear()  # a new process: answered from the file, no timing
    assert autotune.fastest("op", [(4, 3)], cands, args) == "b" and len(calls) == 4


def test_corrupt_cache_is_ignored_with_a_message(cache, capsys, monkeypatch):
    cache.write_text("{not json")
    monkeypatch.setattr(autotune, "_time", lambda fn, args, budget_s: 1.0)
    choice = autotune.fastest("op", [(2,)], {"a": jnp.sin},
                              lambda: autotune.random_args(((2,), jnp.float32)))
    assert choice == "a"
    assert capsys.readouterr().err.count("ignoring the unreadable autotune cache") == 1
    assert json.loads(cache.read_text())  # rewritten as valid JSON


def test_an_unreadable_cache_is_reported_once_per_process(cache, capsys):
    """Start-up (the cached malloc choice) and the malloc trial each read the cache: a run too
    short to finish the trial said "ignoring the unreadable autotune cache" twice."""
    cache.write_text("[1, 2]")
    assert autotune.load_cache(cache) == {} and autotune.load_cache(cache) == {}
    assert capsys.readouterr().err.count("ignoring the unreadable autotune cache") == 1


def test_an_unwritable_cache_is_said_not_cached(tmp_path, capsys, monkeypatch):
    """A cache directory under a file: the line said "cached in ..." and nothing was written."""
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("SNNTRAIN_CACHE_DIR", str(tmp_path / "afile" / "sub"))
    monkeypatch.setattr(autotune, "_memory", {})
    monkeypatch.setattr(autotune, "_time", lambda fn, args, budget_s: 1.0)
    autotune.fastest("op", [(2,)], {"a": jnp.sin}, lambda: autotune.random_args(((2,),
                                                                                 jnp.float32)))
    err = capsys.readouterr().err
    assert f"; not cached: {tmp_path / 'afile' / 'sub' / 'autotune.json'} cannot be written (" \
        in err and "cached in" not in err


def test_when_every_candidate_fails_the_real_error_is_raised(cache):
    """A wrong input (3 channels into a conv built for 1) failed every formulation, and the
    autotuner said ``min() arg is an empty sequence``; the last candidate's error now rises."""
    def bad(x):
        raise TypeError("input has 3 channels, the kernel 1")

    with pytest.raises(TypeError, match="^input has 3 channels, the kernel 1"):
        autotune.fastest("op", [(2,)], {"a": bad, "b": bad},
                         lambda: autotune.random_args(((2,), jnp.float32)))
    assert not cache.exists()  # nothing cached for it
    with pytest.raises(ValueError, match="^autotune op: no candidates$"):
        autotune.fastest("op", [(2,)], {}, lambda: autotune.random_args(((2,), jnp.float32)))


def test_switch(monkeypatch):
    monkeypatch.setenv("SNNTRAIN_AUTOTUNE", "0")
    assert not autotune.enabled()
    monkeypatch.setenv("SNNTRAIN_AUTOTUNE", "1")
    assert autotune.enabled()


def test_real_timing_picks_the_faster(cache):
    slow = lambda x: sum(jnp.sin(x * i) for i in range(1, 30)) * 0 + jnp.sin(x)
    choice = autotune.fastest("op", [(256, 256)], {"fast": jnp.sin, "slow": slow},
                              lambda: autotune.random_args(((256, 256), jnp.float32)))
    assert choice == "fast"


@pytest.mark.slow
def test_conv_pool_auto_times_the_formulations_and_equals_the_one_it_picked(cache, monkeypatch):
    """``conv_method=auto`` on real shapes: one timing per shape (cached), and the result is
    exactly that of the formulation it chose; every candidate is exact (test_models checks
    s2d, dense and lax against lax.conv + reduce_window)."""
    import jax
    import numpy as np

    from snntrain import convpool

    monkeypatch.setenv("SNNTRAIN_AUTOTUNE", "1")
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 12, 12, 8))
    w = jax.random.normal(jax.random.PRNGKey(1), (5, 5, 2, 4))
    y = jax.jit(lambda x, w: convpool.conv_pool(x, w, "SAME", 2, "auto"))(x, w)
    (entry,) = json.loads(cache.read_text()).values()
    assert entry["choice"] in convpool.TUNED and set(entry["ms"]) == set(convpool.TUNED)
    ref = convpool.conv_pool(x, w, "SAME", 2, entry["choice"])
    np.testing.assert_array_equal(np.asarray(y), np.asarray(ref))
    convpool.conv_pool(x[:, :10, :10], w, "SAME", 2, "auto")  # a new shape: tuned again
    assert len(json.loads(cache.read_text())) == 2
    monkeypatch.setenv("SNNTRAIN_AUTOTUNE", "0")
    # (the rule's own formulation, recorded as the run's choice: a checkpoint keeps it)
    assert convpool.tuned_method(x.shape, w.shape, x.dtype, "SAME", 2) == convpool.rule_method(
        x.shape, w.shape, "SAME") == "s2d"


def test_an_empty_block_is_not_timed(cache, monkeypatch):
    from snntrain import convpool

    def no_timing(*a, **k):
        raise AssertionError("timed an empty input")

    monkeypatch.setattr(autotune, "fastest", no_timing)
    assert convpool.tuned_method((1, 28, 28, 0), (5, 5, 1, 12), jnp.float32, "VALID", 2) == "rule"
    assert not cache.exists()


def test_the_cache_key_names_the_cpu_model_and_cores(monkeypatch):
    """On a CPU the device kind is just "cpu": a cache in a home directory shared by a
    cluster's nodes handed one CPU model's winner to every other."""
    from snntrain import hostenv

    monkeypatch.setattr(hostenv, "cpu_model", lambda: "AMD EPYC 7763")
    monkeypatch.setattr(autotune.os, "cpu_count", lambda: 8)
    zen = autotune.cache_key("op", [(2,)])
    assert zen.startswith("cpu:AMD EPYC 7763 x8|jax ")
    monkeypatch.setattr(hostenv, "cpu_model", lambda: "Intel(R) Xeon(R) Platinum 8480+")
    assert autotune.cache_key("op", [(2,)]) != zen
    monkeypatch.setattr(hostenv, "cpu_model", lambda: "AMD EPYC 7763")
    monkeypatch.setattr(autotune.os, "cpu_count", lambda: 2)
    assert autotune.cache_key("op", [(2,)]) != zen


def test_the_cpu_model_tells_generations_apart_that_share_a_name():
    """A virtual machine's /proc/cpuinfo said "AMD EPYC" on Zen 3, Zen 4 and Zen 5 alike (with
    the same SIMD flags on Zen 4 and 5), so the conv and malloc caches, keyed by that name, gave
    one generation's winner to another; the family and model numbers now come with it."""
    from snntrain import hostenv

    def info(family: int, model: int) -> str:
        return (f"processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: {family}\n"
                f"model\t\t: {model}\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx512f\n\n"
                "processor\t: 1\ncpu family\t: 99\nmodel\t\t: 99\nmodel name\t: AMD EPYC\n")

    zen4, zen5 = hostenv.cpu_model(info(25, 17)), hostenv.cpu_model(info(26, 2))
    assert zen4 == "AMD EPYC (family 25 model 17)"  # (the first processor's)
    assert zen5 == "AMD EPYC (family 26 model 2)"
    assert hostenv.cpu_model("model name\t: Some CPU\n") == "Some CPU"  # (no numbers given)
