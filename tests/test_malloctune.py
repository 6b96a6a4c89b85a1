"""The per-machine malloc policy: switch parsing, cache keying, the trial's choice and a run.

The trial is driven by an injected fake timer (no timed assertion): each "step" takes the time
the fake assigns to the policy in force, so the expected winner is known exactly.
"""

import json
import math
import os
import subprocess
import sys

import jax.numpy as jnp
import pytest

from snntrain import autotune, hostenv, malloctune, population
from snntrain.errors import ConfigError


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNTRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv(autotune.ENV_SWITCH, "1")  # conftest turns the autotuners off
    for k in (hostenv.MODE_SWITCH, hostenv.ENV_SWITCH, "GLIBC_TUNABLES"):
        monkeypatch.delenv(k, raising=False)
    return tmp_path


@pytest.mark.parametrize(("env", "mode"), [
    ({}, "auto"),
    ({"SNNTRAIN_MALLOC": "heap"}, "heap"),
    ({"SNNTRAIN_MALLOC": "Default"}, "default"),
    ({"SNNTRAIN_HUGEPAGES": "0"}, "default"),
    ({"SNNTRAIN_HUGEPAGES": "1"}, "hugepages"),
    ({"SNNTRAIN_HUGEPAGES": "0", "SNNTRAIN_MALLOC": "heap"}, "heap"),  # the new switch wins
    ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1", "SNNTRAIN_HUGEPAGES": "0"}, "hugepages"),
])
def test_malloc_mode(env, mode):
    assert hostenv.malloc_mode(env) == mode


def test_bad_malloc_mode_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="SNNTRAIN_MALLOC='fast'.*auto, heap, default, hugepages"):
        hostenv.malloc_mode({"SNNTRAIN_MALLOC": "fast"})


def test_the_older_switch_is_checked_too():
    """``SNNTRAIN_HUGEPAGES=yes`` was taken as ``auto``; with ``SNNTRAIN_MALLOC=hugepages``,
    ``SNNTRAIN_HUGEPAGES=0`` stopped the restart while the run reported huge pages."""
    with pytest.raises(ConfigError, match=r"^SNNTRAIN_HUGEPAGES='yes' is not 1 or 0 \(the "
                       r"older switch; or set SNNTRAIN_MALLOC to one of auto, heap, default, "
                       r"hugepages\)$"):
        hostenv.malloc_mode({"SNNTRAIN_HUGEPAGES": "yes"})
    with pytest.raises(ConfigError, match=r"^SNNTRAIN_MALLOC=hugepages and SNNTRAIN_HUGEPAGES=0 "
                       r"disagree \(the older switch keeps huge pages off\): unset "
                       r"SNNTRAIN_HUGEPAGES$"):
        hostenv.malloc_mode({"SNNTRAIN_MALLOC": "hugepages", "SNNTRAIN_HUGEPAGES": "0"})
    assert hostenv.malloc_mode({"SNNTRAIN_MALLOC": "hugepages", "SNNTRAIN_HUGEPAGES": "1"}) \
        == "hugepages"
    # another policy beside the older switch's huge pages ran it without a word
    with pytest.raises(ConfigError, match=r"^SNNTRAIN_MALLOC=heap and SNNTRAIN_HUGEPAGES=1 "
                       r"disagree \(the older switch asks for huge pages\): unset "
                       r"SNNTRAIN_HUGEPAGES$"):
        hostenv.malloc_mode({"SNNTRAIN_MALLOC": "heap", "SNNTRAIN_HUGEPAGES": "1"})


@pytest.mark.parametrize("value", ["false", "off", "maybe"])
def test_the_autotune_switch_takes_1_or_0(monkeypatch, value):
    """``SNNTRAIN_AUTOTUNE=false`` (or off) left the timing on without a word: only 0 is off."""
    from snntrain import autotune

    monkeypatch.setenv("SNNTRAIN_AUTOTUNE", value)
    with pytest.raises(ConfigError, match=rf"^SNNTRAIN_AUTOTUNE='{value}' is not 1 or 0 \(0 "
                       r"turns off the start-up timing of formulations and malloc policies\)$"):
        autotune.check_switch()
    for ok in ("0", "1", " 0 "):
        monkeypatch.setenv("SNNTRAIN_AUTOTUNE", ok)
        autotune.check_switch()
    assert not autotune.enabled()  # (" 0 ": off, as 0)


class FakeClock:
    """A timer whose every step lasts ``ms[policy in force]`` milliseconds and page-faults
    ``faults[policy in force]`` times (default: 5000 under ``default``, 0 under ``heap``)."""

    def __init__(self, ms: dict[str, float], faults: dict[str, int] | None = None):
        self.ms, self.now, self.heap, self.switches = ms, 0.0, False, []
        self.per_step = faults or {"default": 5000, "heap": 0}
        self.faulted = 0

    def timer(self) -> float:
        return self.now

    def faults(self) -> int:
        return self.faulted

    def set_heap(self, on: bool) -> bool:
        self.heap = on
        self.switches.append(on)
        return True

    def run(self):
        self.now += self.ms["heap" if self.heap else "default"] / 1e3
        self.faulted += self.per_step["heap" if self.heap else "default"]
        return jnp.zeros(())


def _drive(ms: dict[str, float], key: str = "k", faults: dict[str, int] | None = None
           ) -> tuple[malloctune.MallocTrial, FakeClock, int]:
    clock, said = FakeClock(ms, faults), []
    trial = malloctune.MallocTrial(key, timer=clock.timer, set_heap=clock.set_heap,
                                   say=said.append, faults=clock.faults)
    steps = 0
    while not trial.done:
        trial.step(clock.run)
        steps += 1
        assert steps < 1000
    assert len(said) == 1 and said[0].startswith(f"snntrain: autotune malloc: {trial.choice}")
    return trial, clock, steps


@pytest.mark.parametrize(("ms", "winner"), [
    ({"default": 30.0, "heap": 21.0}, "heap"),
    ({"default": 21.0, "heap": 30.0}, "default"),
    ({"default": 30.0, "heap": 30.0}, "default"),  # a tie keeps glibc as it is
    ({"default": 30.0, "heap": 27.6}, "default"),  # 8% faster: within the 10% margin
    ({"default": 3.0, "heap": 2.0}, "heap"),  # k capped at MAX_STEPS
])
def test_trial_picks_the_faster_policy_and_leaves_it_on(cache_dir, ms, winner):
    trial, clock, steps = _drive(ms)
    assert trial.choice == winner
    assert clock.heap == (winner == "heap")
    # windows: default, heap, default, heap; each 1 untimed + k timed steps, k = 0.1 s / step
    k = max(malloctune.MIN_STEPS, min(malloctune.MAX_STEPS, math.ceil(100 / ms["default"])))
    assert steps == malloctune.ROUNDS * 2 * (k + 1)
    assert clock.switches[:4] == [False, True, False, True]  # default set explicitly first
    assert {c: len(v) for c, v in trial.times.items()} == {"default": 2 * k, "heap": 2 * k}
    entry = json.loads((cache_dir / "autotune.json").read_text())["k"]
    assert entry == {"choice": winner, "ms": {"default": ms["default"], "heap": ms["heap"]},
                     "faults": {"default": 5000, "heap": 0}}
    assert malloctune.cached("k") == winner


@pytest.mark.parametrize(("default_faults", "winner"), [
    (0, "default"),  # heap 30% faster, but glibc keeps the blocks: the lead is not heap's
    (malloctune.MIN_FAULTS - 1, "default"),
    (malloctune.MIN_FAULTS, "heap"),
])
def test_heap_needs_the_page_faults_it_removes(cache_dir, default_faults, winner):
    trial, clock, _ = _drive({"default": 30.0, "heap": 21.0},
                             faults={"default": default_faults, "heap": 0})
    assert trial.choice == winner and clock.heap == (winner == "heap")
    assert set(trial.faults["default"]) == {default_faults} and set(trial.faults["heap"]) == {0}


def test_choose_uses_medians_and_the_margin():
    assert malloctune.choose({"default": [1.0, 1.0, 9.0], "heap": [2.0, 2.0, 0.1]}) == "default"
    assert malloctune.choose({"default": [3.0, 3.0], "heap": [2.0, 2.6]}) == "heap"  # 2.3 < 2.7
    assert malloctune.choose({"default": [3.0, 3.0], "heap": [2.6, 2.9]}) == "default"  # 2.75
    times = {"default": [3.0, 3.0], "heap": [2.0, 2.0]}
    assert malloctune.choose(times, {"default": [0, 5000, 5000], "heap": [0]}) == "heap"
    assert malloctune.choose(times, {"default": [0, 0, 5000], "heap": [0]}) == "default"
    # heavy faulting (CONV: ~60,000 per step): a small lead is the faults removed
    close = {"default": [171.0, 171.0], "heap": [157.0, 157.0]}  # 8% (a CONV trial on Zen 5)
    assert malloctune.choose(close, {"default": [60000], "heap": [0]}) == "heap"
    assert malloctune.choose(close, {"default": [5000], "heap": [0]}) == "default"
    assert malloctune.choose({"default": [171.0], "heap": [169.0]},
                             {"default": [60000], "heap": [0]}) == "default"  # 1%


def _cfg(*overrides):
    from hydra import compose, initialize_config_dir

    from snntrain.paths import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=["logger=none", *overrides])


def test_cache_key_changes_with_the_step_and_machine_not_with_other_settings(monkeypatch):
    sig = population.malloc_signature(_cfg())
    for same in (["trainer.epochs=3"], ["seed=7"], ["optimizer.lr=0.5"]):
        assert population.malloc_signature(_cfg(*same)) == sig, same
    for other in (["T=50"], ["trainer.batch_size=64"], ["model.hidden=[128]"],
                  ["trainer.remat=true"], ["model=conv"]):
        assert population.malloc_signature(_cfg(*other)) != sig, other
    k = malloctune.key(sig)
    monkeypatch.setattr(hostenv, "thp_mode", lambda: "always")
    assert malloctune.key(sig) != k
    monkeypatch.undo()
    monkeypatch.setattr(hostenv, "cpu_model", lambda: "Another CPU")
    assert malloctune.key(sig) != k
    monkeypatch.undo()
    assert malloctune.key(sig) == k
    flags = os.environ.get("XLA_FLAGS", "")
    monkeypatch.setenv("XLA_FLAGS", f"{flags} --xla_force_host_platform_device_count=7")
    assert malloctune.key(sig) != k  # (a population on a CPU split into 7 devices)


def test_cached_choice_is_used_and_a_new_key_tunes_again(cache_dir, monkeypatch):
    heap_calls = []
    monkeypatch.setattr(hostenv, "use_heap", heap_calls.append)
    sig = "a" * 16
    autotune.store_cache(autotune.cache_path(), malloctune.key(sig), {"choice": "heap"})
    assert malloctune.for_run(sig) is None and heap_calls == [True]
    trial = malloctune.for_run("b" * 16)  # other shapes: not cached, a trial
    assert isinstance(trial, malloctune.MallocTrial) and not trial.done


@pytest.mark.parametrize(("switch", "value"), [("SNNTRAIN_MALLOC", "default"),
                                               ("SNNTRAIN_MALLOC", "heap"),
                                               ("SNNTRAIN_HUGEPAGES", "0")])
def test_forced_policy_is_respected(cache_dir, monkeypatch, switch, value):
    monkeypatch.setenv(switch, value)
    heap_calls = []
    monkeypatch.setattr(hostenv, "use_heap", heap_calls.append)
    sig = "c" * 16
    autotune.store_cache(autotune.cache_path(), malloctune.key(sig), {"choice": "heap"})
    assert malloctune.for_run(sig) is None and heap_calls == []  # no trial, cache not applied


def test_autotune_off_means_no_trial_and_no_cache(cache_dir, monkeypatch):
    monkeypatch.setenv(autotune.ENV_SWITCH, "0")
    heap_calls = []
    monkeypatch.setattr(hostenv, "use_heap", heap_calls.append)
    autotune.store_cache(autotune.cache_path(), malloctune.key("d" * 16), {"choice": "heap"})
    assert malloctune.for_run("d" * 16) is None and malloctune.for_run("e" * 16) is None
    assert heap_calls == []


def test_corrupt_cache_is_ignored_with_a_message(cache_dir, capsys):
    (cache_dir / "autotune.json").write_text("{not json")
    assert malloctune.cached("anything") is None
    assert "ignoring the unreadable autotune cache" in capsys.readouterr().err
    trial, _, _ = _drive({"default": 10.0, "heap": 5.0}, key="k2")
    assert json.loads((cache_dir / "autotune.json").read_text())["k2"]["choice"] == "heap"


CHILD = (
    "import ctypes, os, sys\n"
    "from snntrain import hostenv\n"
    "print(hostenv.prepare(), hostenv.use_heap(True), hostenv.use_heap(False))\n"
)


@pytest.mark.skipif(hostenv._libc() is None, reason="glibc only")
@pytest.mark.parametrize(("env", "out"), [({}, "auto True True"),
                                          ({"SNNTRAIN_MALLOC": "heap"}, "heap True True"),
                                          ({"SNNTRAIN_HUGEPAGES": "0"}, "default True True")])
def test_prepare_in_a_fresh_process(env, out):
    full = {k: v for k, v in os.environ.items()
            if k not in (hostenv.MODE_SWITCH, hostenv.ENV_SWITCH, "GLIBC_TUNABLES")}
    res = subprocess.run([sys.executable, "-c", CHILD], env={**full, **env},
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == out.split()


@pytest.mark.parametrize(("cached", "env", "applied"), [
    (None, {}, "auto"),  # no choice yet: one arena, the run times both
    ("heap", {}, "heap"),
    ("default", {}, "default"),
    ("heap", {"SNNTRAIN_MALLOC": "default"}, "default"),  # forced beats cached
    ("default", {"SNNTRAIN_HUGEPAGES": "1"}, "hugepages"),
    (None, {"_": "trainer.fused_epoch=true"}, "default"),  # no trial in a fused epoch
    (None, {"_": "trainer.population.seed=[0,1]"}, "auto"),  # a population times both
    ("heap", {"_": "trainer.population.seed=[0,1]"}, "heap"),  # under its own key
])
def test_prepare_run_applies_the_cached_or_forced_policy(cache_dir, monkeypatch, cached, env,
                                                         applied):
    for k, v in env.items():
        if k != "_":
            monkeypatch.setenv(k, v)
    got = []
    monkeypatch.setattr(hostenv, "prepare", lambda mode=None: got.append(mode) or mode)
    cfg = _cfg(*[v for k, v in env.items() if k == "_"])
    if cached:
        autotune.store_cache(autotune.cache_path(),
                             malloctune.key(population.malloc_signature(cfg)), {"choice": cached})
    assert malloctune.prepare_run(cfg, population.malloc_signature(cfg)) == applied
    assert got == [applied]


def test_a_run_with_the_trial_computes_the_same_values_and_caches_the_choice(
        cache_dir, monkeypatch, tmp_path):
    """The trial switches malloc mid-run; the run's metrics must be bit-identical to a run
    with glibc untouched (malloc decides where buffers live, never what they hold)."""
    from conftest import compose

    from snntrain import train

    monkeypatch.setattr(malloctune, "WINDOW_S", 1e-6)  # k = 2: the trial fits in 12 steps
    said = []
    monkeypatch.setattr(train, "say_stderr", said.append)
    cfg = ("trainer.epochs=1", "trainer.batch_size=64", "trainer.parallel=none",
           "trainer.log_every=5")
    tried = train.train_and_evaluate(compose(*cfg), tmp_path / "auto")
    entry = json.loads((cache_dir / "autotune.json").read_text())
    (k, v), = entry.items()
    assert "|malloc|" in k and v["choice"] in malloctune.CANDIDATES and set(v["ms"]) == {
        "default", "heap"}
    assert len([m for m in said if "autotune malloc" in m]) == 1
    assert [m for m in said if "autotune malloc" in m] == [
        m for m in said if m.startswith(f"snntrain: autotune malloc: {v['choice']}")]
    monkeypatch.setenv(hostenv.MODE_SWITCH, "default")
    plain = train.train_and_evaluate(compose(*cfg), tmp_path / "default")
    lines = [(tmp_path / d / "metrics.jsonl").read_text().splitlines() for d in ("auto", "default")]
    strip = [[{k: x for k, x in json.loads(r).items() if "per_s" not in k and "time" not in k}
              for r in rs] for rs in lines]
    assert strip[0] == strip[1] and len(strip[0]) > 3, strip
    for key in ("test_accuracy", "final_train_loss"):
        if key in plain:
            assert tried[key] == plain[key], key


POP = "trainer.population"


def test_population_signature_has_its_step_and_the_solo_one_is_unchanged():
    """The solo signature is the hash the caches were written with (STEP_KEYS only); a
    population adds its resolved group: members per group, vectorize, mesh, axes."""
    import hashlib

    from omegaconf import OmegaConf


    solo = _cfg()
    parts = [(k, OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v)
             for k in malloctune.STEP_KEYS for v in [OmegaConf.select(solo, k)]]
    old = hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert population.malloc_signature(solo) == old
    pop = _cfg(f"{POP}.seed=[0,1]")
    sig = population.malloc_signature(pop)
    assert sig != old
    assert population.malloc_signature(population.members(pop)[1].cfg) == old  # a member: solo
    assert population.step_signature(pop) == {"members": 2, "vectorize": None, "mesh": None,
                                              "axes": ["seed"], "cpu_devices": "auto",
                                              "workers": 1}
    # one device and the split CPU are other programs: each its own malloc choice
    assert population.malloc_signature(_cfg(f"{POP}.seed=[0,1]", f"{POP}.cpu_devices=1")) != sig
    for same in ([f"{POP}.seed=[3,4]"], [f"{POP}.seed=[0,1]", f"{POP}.chunk=2"],
                 [f"{POP}.seed=[0,1]", "trainer.epochs=3"]):
        assert population.malloc_signature(_cfg(*same)) == sig, same
    vmap = population.malloc_signature(_cfg(f"{POP}.seed=[0,1]", f"{POP}.vectorize=2"))
    assert vmap != sig
    # vectorize is capped at the group's members, as build_group does
    assert population.malloc_signature(_cfg(f"{POP}.seed=[0,1]", f"{POP}.vectorize=16")) == vmap
    assert population.malloc_signature(_cfg(f"{POP}.seed=[0,1]", f"{POP}.vectorize=1")) not in (
        sig, vmap)
    for other in ([f"{POP}.seed=[0,1,2]"], [f"{POP}.seed=[0,1]", f"{POP}.chunk=1"],
                  [f"{POP}.seed=[0,1]", f"{POP}.mesh=[1,1]"], [f"{POP}.optimizer.lr=[1,2]"],
                  [f"{POP}.seed=[0,1]", "T=50"]):
        assert population.malloc_signature(_cfg(*other)) != sig, other
    # a bad population setting is keyed by its text (the run reports it, not the start-up)
    assert population.malloc_signature(_cfg(f"{POP}.seed=[0,1]", f"{POP}.chunk=0")) != sig


def test_later_groups_keep_the_first_groups_trial_or_drop_it():

    clock = FakeClock({"default": 60.0, "heap": 60.0})  # k = 2: windows of 1 + 2 steps
    trial = malloctune.MallocTrial("k", timer=clock.timer, set_heap=clock.set_heap,
                                   say=lambda _m: None, cache=False)
    assert population.trial_for_group(None, 4, 4) is None
    assert population.trial_for_group(trial, 4, 4) is trial  # unfinished, same size: goes on
    for _ in range(3):
        trial.step(clock.run)
    assert clock.heap is False and clock.switches == [False]
    trial.step(clock.run)  # the heap window's first step
    assert clock.heap is True
    assert population.trial_for_group(trial, 2, 4) is None  # smaller last group: dropped,
    assert clock.heap is False and not trial.done  # back to glibc's default settings
    trial.choice = "heap"
    assert population.trial_for_group(trial, 4, 4) is None  # chosen: nothing to time


@pytest.mark.slow
def test_a_population_run_trials_under_its_own_key_with_the_same_values(
        cache_dir, monkeypatch, tmp_path, capsys):
    """A population times its whole step (both members' programs) on its first steps and
    caches the choice under the population's key; its members' records are bit-identical to
    the population trained with glibc untouched."""
    from conftest import compose


    monkeypatch.setattr(malloctune, "WINDOW_S", 1e-6)  # k = 2: the trial fits in 12 steps
    cfg = (f"{POP}.seed=[0,1]", "trainer.log_every=5")
    assert population.train_population(compose(*cfg), tmp_path / "auto")["completed"] == 2
    said = [m for m in capsys.readouterr().err.splitlines() if "autotune malloc" in m]
    entry = json.loads((cache_dir / "autotune.json").read_text())
    (k, v), = entry.items()
    assert k == malloctune.key(population.malloc_signature(compose(*cfg)))
    assert k != malloctune.key(population.malloc_signature(compose("trainer.log_every=5")))
    assert v["choice"] in malloctune.CANDIDATES and set(v["ms"]) == {"default", "heap"}
    assert len(said) == 1 and said[0].startswith(f"snntrain: autotune malloc: {v['choice']}")
    monkeypatch.setenv(hostenv.MODE_SWITCH, "default")
    population.train_population(compose(*cfg), tmp_path / "default")
    for member in ("0-seed=0", "1-seed=1"):
        rows = [[{k: x for k, x in json.loads(r).items() if "per_s" not in k and "time" not in k}
                 for r in (tmp_path / d / "members" / member / "metrics.jsonl").read_text()
                 .splitlines()] for d in ("auto", "default")]
        assert rows[0] == rows[1] and len(rows[0]) > 3, member


def test_a_faster_heap_kept_out_by_the_fault_rule_says_why(cache_dir):
    """"autotune malloc: default (median step heap 1.88 ms, default 6.79 ms ...)" read as the
    slower policy chosen for no reason: the line names the page-fault rule that decided."""
    for default_faults, why in ((0, True), (malloctune.MIN_FAULTS, False)):
        clock, said = FakeClock({"default": 30.0, "heap": 21.0},
                                {"default": default_faults, "heap": 0}), []
        trial = malloctune.MallocTrial(f"k{default_faults}", timer=clock.timer,
                                       set_heap=clock.set_heap, say=said.append,
                                       faults=clock.faults)
        while not trial.done:
            trial.step(clock.run)
        assert (f"heap is faster here only by the trial's shared arena: default kept, as under "
                f"{malloctune.MIN_FAULTS} page faults per step" in said[0]) is why
