"""The training step and loop: numbers, determinism, outputs."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import compose

from snntrain import data as data_lib
from snntrain import steps, train
from snntrain.checkpoint import Checkpoints


def _batch(exp, n=None):
    src = exp.data.train
    return next(data_lib.batches(src, exp.batch_size, seed=0, epoch=0))


def test_train_step_decreases_loss_on_a_fixed_batch():
    exp = train.build(compose("model.hidden=[64]", "T=10"))
    step = jax.jit(lambda s, b, k, f: train.make_train_step(exp)(s, b, k, f))
    state, batch = exp.init_state(), _batch(exp)
    key = jax.random.PRNGKey(0)
    losses = []
    for _ in range(15):
        # the same step key every time: the batch's spikes are fixed, only parameters change
        state, m = step(state.replace(step=jnp.zeros((), jnp.int32)), batch, key, exp.surrogate)
        losses.append(float(m["loss"]))
    assert losses[-1] < 0.5 * losses[0], losses
    assert np.isfinite(losses).all()


def test_masked_padding_rows_do_not_change_the_step():
    """A batch padded with garbage rows under mask 0 gives the same update as the real rows."""
    exp = train.build(compose("trainer.batch_size=8"))
    fn = jax.jit(train.make_train_step(exp))
    batch = _batch(exp)
    padded = {k: v.copy() for k, v in batch.items()}
    padded["mask"][5:] = 0.0
    garbage = {k: v.copy() for k, v in padded.items()}
    garbage["x"][5:] = 1.0
    garbage["y"][5:] = 3
    key = jax.random.PRNGKey(1)
    s1, m1 = fn(exp.init_state(), padded, key, exp.surrogate)
    s2, m2 = fn(exp.init_state(), garbage, key, exp.surrogate)
    for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s2.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(m1["count"]) == 5.0
    assert float(m1["loss"]) == float(m2["loss"])


def test_gradient_of_masked_mean_equals_mean_over_real_rows():
    """Loss is the mean cross-entropy over the real rows only (checked against optax directly)."""
    import optax

    exp = train.build(compose("trainer.batch_size=8"))
    batch = _batch(exp)
    batch["mask"][6:] = 0.0
    key = jax.random.PRNGKey(2)
    _, m = jax.jit(train.make_train_step(exp))(exp.init_state(), batch, key, exp.surrogate)
    logits, _ = steps.make_forward(exp)(exp.params, batch, jax.random.fold_in(key, 0),
                                        exp.surrogate)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits[:6], batch["y"][:6])
    np.testing.assert_allclose(float(m["loss"]), float(ce.mean()), rtol=1e-6)


def test_same_seed_identical_metrics_different_seed_different(tmp_path):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train.train_and_evaluate(compose(f"seed={seed}"), tmp_path / name)
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        runs[name] = [{k: v for k, v in json.loads(x).items() if k != "samples_per_s"}
                      for x in lines]
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]


def test_run_writes_outputs_and_reaches_accuracy(tmp_path):
    summary = train.train_and_evaluate(
        compose("trainer.epochs=8", "model.hidden=[128]", "T=12"), tmp_path)
    assert summary["test_accuracy"] >= 0.93, summary["test_accuracy"]
    saved = json.loads((tmp_path / "summary.json").read_text())
    for key in ("test_accuracy", "test_loss", "train_loss", "steps", "wall_time_s",
                "compile_time_s", "device"):
        assert key in saved
    assert saved["steps"] == 8 * data_lib.steps_per_epoch(1294, 64)  # 1797 - 359 test - 144 val
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in lines if r["split"] == "epoch"]
    assert [r["epoch"] for r in epochs] == list(range(1, 9))
    assert epochs[-1]["test_accuracy"] == saved["test_accuracy"]
    assert (tmp_path / "checkpoints").is_dir()
    assert 0.0 < saved["firing_rates"]["lif0"] < 1.0


@pytest.mark.slow
def test_default_config_reaches_97_percent(tmp_path):
    """The README's first command: the default experiment reaches >= 97% test accuracy."""
    summary = train.train_and_evaluate(compose("logger=none", "trainer.progress=false",
                                               tiny=False), tmp_path)
    assert summary["test_accuracy"] >= 0.97, summary


def test_fused_epoch_equals_per_step_loop(tmp_path):
    """trainer.fused_epoch runs the same steps on the same batches (checked on parameters).

    Throughput counts only the timed steps: the per-step loop's first step (it compiles) is
    not timed; the fused epoch is compiled ahead, so every step is. (Before, the fused run's
    first epoch reported 1.4e12 samples/s: its time was set to zero.)"""
    from snntrain.train import params_of

    out, summaries = {}, {}
    records = {}
    for fused in (False, True):
        d = tmp_path / str(fused)
        cfg = compose("trainer.epochs=2", "trainer.parallel=none", f"trainer.fused_epoch={fused}",
                      "trainer.log_every=1")
        summaries[fused] = train.train_and_evaluate(cfg, d)
        out[fused] = jax.tree.leaves(params_of(d))
        records[fused] = [(r["step"], r["split"], r.get("loss")) for x in
                          (d / "metrics.jsonl").read_text().splitlines()
                          if (r := json.loads(x))["split"] in ("train", "epoch")]
    # the same records under the same step numbers (the fused run's train records were
    # numbered 1, 3, 5, ... and ran past the epoch's end)
    assert [r[:2] for r in records[True]] == [r[:2] for r in records[False]]
    np.testing.assert_allclose([r[2] for r in records[True] if r[1] == "train"],
                               [r[2] for r in records[False] if r[1] == "train"], rtol=1e-5)
    for fused in (False, True):
        d = tmp_path / str(fused)
        epochs = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()
                  if json.loads(x)["split"] == "epoch"]
        assert all(0 < r["samples_per_s"] < 20 * summaries[fused]["samples_per_s"]
                   for r in epochs), [r["samples_per_s"] for r in epochs]
    for a, b in zip(out[False], out[True], strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6, rtol=0)
    batch, steps = cfg.trainer.batch_size, summaries[True]["steps"]
    for fused, timed in ((False, steps - 1), (True, steps)):
        s = summaries[fused]
        assert s["samples_per_s"] * s["train_time_s"] == pytest.approx(timed * batch, rel=1e-9)
        assert s["compile_time_s"] > 0


def test_a_fused_epoch_writes_no_mid_epoch_checkpoint(tmp_path):
    """trainer.fused_epoch with trainer.checkpoint_every=5: checkpoints 5 and 10 held the
    state after all 11 steps of the epoch (its steps are replayed after it ran), so a resume
    from one trained steps twice. A fused run checkpoints at epoch ends only (as documented)."""
    cfg = compose("trainer.epochs=1", "trainer.fused_epoch=true", "trainer.checkpoint_every=5",
                  "trainer.keep_checkpoints=5")
    steps = train.build(cfg).steps_per_epoch
    train.train_and_evaluate(cfg, tmp_path)
    assert Checkpoints(tmp_path / "checkpoints", write=False).steps() == [steps]


def test_a_run_whose_only_step_compiled_says_its_throughput_was_not_measured(tmp_path, capsys):
    """An epoch of one step (the step that compiles, never timed): summary.json and the end
    table said samples_per_s 0.0000, as if the run had not moved."""
    from snntrain.progress import print_summary

    cfg = compose("trainer.epochs=1", "trainer.batch_size=1294")
    assert train.build(cfg).steps_per_epoch == 1
    summary = train.train_and_evaluate(cfg, tmp_path)
    assert summary["samples_per_s"] is None
    assert json.loads((tmp_path / "summary.json").read_text())["samples_per_s"] is None
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["samples_per_s"] for r in records if r["split"] == "epoch"] == [None]
    print_summary(summary)
    assert "not measured (no step timed this attempt)" in capsys.readouterr().out


@pytest.mark.slow
def test_a_member_at_an_absurd_learning_rate_evaluates_as_its_solo_run(tmp_path):
    """``optimizer.lr=1e30`` gives logits ~ 1e31: the population's evaluation (another
    program than the solo run's) recorded val and test losses of NaN or -inf, and the
    population called the member diverged while its own summary and its solo run said
    completed. The readout's bias now goes into its product (one array of logits: XLA
    computed the addition after it again in each consumer, with and without an FMA)."""
    base = ("T=5", "model.hidden=[16]", "trainer.epochs=2")
    pop = train.train_and_evaluate(compose(
        *base, "trainer.population.optimizer.lr=[0.001,1e30]",
        "trainer.population.seed=[0,1]"), tmp_path / "pop")
    solo = train.train_and_evaluate(compose(*base, "optimizer.lr=1e30", "seed=0"),
                                    tmp_path / "solo")
    assert pop["completed"] == 4 and pop["diverged"] == 0 and solo["status"] == "completed"
    member = tmp_path / "pop" / "members" / "2-optimizer.lr=1e+30,seed=0"
    epochs = [json.loads(x) for x in (member / "metrics.jsonl").read_text().splitlines()
              if '"split": "epoch"' in x]
    want = [json.loads(x) for x in (tmp_path / "solo" / "metrics.jsonl").read_text()
            .splitlines() if '"split": "epoch"' in x]
    for got, exp_ in zip(epochs, want, strict=True):
        for k in ("val_loss", "test_loss"):  # (1e31: the programs' rounding differs by 1e24)
            assert got[k] == pytest.approx(exp_[k], rel=1e-2), k
