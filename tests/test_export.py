"""NIR export and import: round trips give identical parameters and outputs, the exported graph
run by an independent forward-Euler NIR simulator (written here from NIR's node definitions)
gives our spikes, foreign graphs load, files pass nir.read(type_check=True), and what NIR cannot
represent is refused."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

nir = pytest.importorskip("nir")

from snntrain import export, models, neurons, surrogates  # noqa: E402
from snntrain.errors import ConfigError  # noqa: E402

spike = surrogates.FastSigmoid(alpha=5.0)
T, B = 7, 3


def neuron_cfg(kind: str = "lif", **params) -> dict:
    """A neuron config dict (the key naming the neuron is ``name`` or, before, ``kind``)."""
    key = "name" if hasattr(neurons, "from_config") else "kind"
    return {key: kind, **params}


# ---- an independent NIR simulator ------------------------------------------------------------


def simulate(graph: nir.NIRGraph, x_TxBx: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """Every node's output at every step (``T x B x ...``): each node reads the sum of its
    inputs; an input not computed yet at this step (a cycle) is the previous step's output,
    at the first step the node's response to zero input (an ``Affine``'s bias, else 0).
    Neurons take one Euler step of ``tau dv/dt = (v_leak - v) + R I`` and fire at
    ``v > v_threshold`` (then ``v = v_reset``)."""
    order, pred = ["input"], {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        pred[b].append(a)
    while len(order) < len(graph.nodes):  # breadth-first from the input
        order += [b for a, b in graph.edges if a in order and b not in order][:1]
    out = {n: (np.asarray(graph.nodes[n].bias, np.float64)
               if isinstance(graph.nodes[n], nir.Affine) else None) for n in order}
    state: dict[str, np.ndarray] = {}
    trace = {n: [] for n in order}
    for x_t in np.asarray(x_TxBx, np.float64):
        done = {}
        for name in order:
            node = graph.nodes[name]
            if name == "input":
                done[name] = x_t
                trace[name].append(x_t)
                continue
            ins = [done.get(p, out[p]) for p in pred[name]]
            i = sum(v for v in ins if v is not None)
            if isinstance(node, nir.Affine):
                y = i @ node.weight.T + node.bias
            elif isinstance(node, nir.Linear):
                y = i @ node.weight.T
            elif isinstance(node, nir.Conv2d):
                pad = node.padding
                pad = "SAME" if isinstance(pad, str) else [(int(p), int(p)) for p in pad]
                y = lax.conv_general_dilated(jnp.asarray(i), jnp.asarray(node.weight), (1, 1), pad,
                                             dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                             precision=lax.Precision.HIGHEST)
                y = np.asarray(y, np.float64) + node.bias[:, None, None]
            elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
                k = int(node.kernel_size[0])
                b_, c, h, w = i.shape
                y = i[:, :, : h // k * k, : w // k * k].reshape(b_, c, h // k, k, w // k, k)
                y = y.mean((3, 5)) if isinstance(node, nir.AvgPool2d) else y.sum((3, 5))
            elif isinstance(node, nir.Flatten):
                y = i.reshape(i.shape[0], -1)
            elif isinstance(node, (nir.LIF, nir.LI, nir.IF, nir.I)):
                v = state.get(name, np.zeros_like(i))
                if isinstance(node, (nir.LIF, nir.LI)):
                    v = v + dt / node.tau * (node.v_leak - v + node.r * i)
                else:
                    v = v + dt * node.r * i
                if isinstance(node, (nir.LIF, nir.IF)):
                    y = (v > node.v_threshold).astype(np.float64)
                    v = np.where(y > 0, node.v_reset, v)
                else:
                    y = v
                state[name] = v
            elif isinstance(node, nir.Output):
                y = i
            else:
                raise NotImplementedError(type(node).__name__)
            done[name] = y
            trace[name].append(y)
        out = done
    return {n: np.stack(v) for n, v in trace.items()}


# ---- the models under test ---------------------------------------------------------------------

CASES = {
    "mlp_learned": (models.MLP, (4, 3, 1), dict(hidden=[6, 5], learn_beta=True,
                                               learn_threshold=True)),
    "recurrent_spike_count": (models.RecurrentMLP, (5,), dict(hidden=[6], readout="spike_count",
                                                             learn_threshold=True)),
    "conv_same_avg_before": (models.ConvSNN, (8, 7, 2), dict(
        channels=[3, 4], kernel_size=[3, 2], pool=[2, 1], pool_mode="avg", norm="none",
        dense=[5], learn_beta=True)),
    "conv_valid_if_after": (models.ConvSNN, (9, 8, 1), dict(
        channels=[3], kernel_size=3, padding="VALID", pool=2, pool_mode="avg",
        pool_before_neuron=False, norm="none", readout_beta=1.0,
        neuron=neuron_cfg("if", threshold=0.8, reset="zero"))),
}


def _model(case: str, seed: int) -> nnx.Module:
    cls, shape, kw = CASES[case]
    kw = {"neuron": neuron_cfg(beta=0.8, threshold=0.9, reset="zero"), **kw}
    m = cls(shape, 3, rngs=nnx.Rngs(seed), **kw)
    for name in ("conv0", "conv1", "fc0", "fc1", "rec0"):  # twice the init: every layer spikes
        if hasattr(m, name):
            getattr(m, name).kernel[...] = 2 * getattr(m, name).kernel[...]
    rng = np.random.default_rng(seed)
    for name in ("lif0", "lif1", "lif2", "out_neurons"):
        layer = (m.readout.neurons if name == "out_neurons" and hasattr(m.readout, "neurons")
                 else getattr(m, name, None))
        if layer is None:
            continue
        if layer.learn_beta:  # spread per-neuron betas and thresholds
            layer.beta_logit[...] = jnp.asarray(rng.normal(1.0, 1.0, layer.beta_logit.shape),
                                                jnp.float32)
        if layer.learn_threshold:
            layer.threshold[...] = jnp.asarray(rng.uniform(0.5, 1.5, layer.threshold.shape),
                                               jnp.float32)
    return m


def _spikes(shape, seed=0):
    return jax.random.bernoulli(jax.random.PRNGKey(seed), 0.4, (T, B, *shape)).astype(jnp.float32)


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.slow) if c == "conv_same_avg_before" else c
    for c in sorted(CASES)])
def test_round_trip_and_simulator(case, tmp_path):
    a = _model(case, 0)
    path = tmp_path / "model.nir"
    nir.write(path, export.to_nir(a))
    graph = nir.read(path, type_check=True)
    assert float(graph.metadata["dt"]) == 1.0
    # import into a model of the same config but other initial weights
    b = _model(case, 1)
    params = export.from_nir(graph, b)
    want = nnx.state(a, nnx.Param)
    assert jax.tree.structure(params) == jax.tree.structure(want)
    for p, q in zip(jax.tree.leaves(params), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(np.asarray(p), np.asarray(q))
    graphdef, _, rest = nnx.split(b, nnx.Param, ...)
    loaded = nnx.merge(graphdef, params, rest)
    x = _spikes(CASES[case][1])
    out_a, aux_a = a.trace(x, spike)
    out_b, aux_b = loaded.trace(x, spike)
    np.testing.assert_array_equal(out_a, out_b)
    for k in aux_a["spike_counts"]:
        np.testing.assert_array_equal(aux_a["spike_counts"][k], aux_b["spike_counts"][k])
    # the graph means what our model computes: simulate it independently
    x_nir = np.asarray(x)
    if len(CASES[case][1]) == 3 and isinstance(a, models.ConvSNN):
        x_nir = x_nir.transpose(0, 1, 4, 2, 3)  # channels-first
    else:
        x_nir = x_nir.reshape(T, B, -1)
    sim = simulate(graph, x_nir, 1.0)
    for k, c_B in aux_a["spike_counts"].items():  # (a spiking readout's: its out_neurons)
        node = "out_neurons" if k == "readout" else k
        np.testing.assert_array_equal(sim[node].reshape(T, B, -1).sum((0, 2)), np.asarray(c_B))
    np.testing.assert_allclose(sim["output"], np.asarray(out_a), rtol=1e-5, atol=1e-5)
    assert all(float(c.sum()) > 0 for c in aux_a["spike_counts"].values())  # not silent


def test_time_constants_and_dt():
    """tau = dt / (1 - beta), R = tau / dt, v_leak = 0; beta 0.8 and dt 0.5 give tau 2.5 and
    R 5; loading with the same dt gives beta back."""
    m = models.MLP((2,), 2, hidden=[3], neuron=neuron_cfg(beta=0.8, reset="zero"),
                   readout_beta=0.5, rngs=nnx.Rngs(0))
    g = export.to_nir(m, dt=0.5)
    np.testing.assert_allclose(g.nodes["lif0"].tau, 2.5)
    np.testing.assert_allclose(g.nodes["lif0"].r, 5.0)
    np.testing.assert_array_equal(g.nodes["lif0"].v_leak, 0.0)
    np.testing.assert_allclose(g.nodes["out_neurons"].tau, 1.0)  # readout beta 0.5
    assert isinstance(g.nodes["out_neurons"], nir.LI)
    export.from_nir(g, m)  # dt from the metadata
    with pytest.raises(export.NIRError, match=r"^lif0: the graph's beta \[0.6 0.6 0.6\] "
                       r"differs from the model's fixed 0.8; set model.neuron.beta or "
                       r"model.learn_beta=true$"):  # (1 - dt / tau at dt 1)
        export.from_nir(g, m, dt=1.0)


def test_a_long_list_of_values_in_a_message_says_it_is_cut():
    """The first 3 of 4 per-channel betas were printed as if they were all."""
    from snntrain.nirgraph import _first

    assert _first(np.array([0.9, 0.91, 0.92, 0.93])) == "[0.9  0.91 0.92 ...] (4 values)"
    assert _first(np.array([0.9, 0.91])) == "[0.9  0.91]"


def test_foreign_graph_loads_and_means_the_same():
    """A graph as other libraries write it (node names layer_<i>, Linear without bias, the
    recurrent layer as an input -> lif <-> w_rec, lif -> output subgraph as snnTorch does,
    r = beta rather than tau / dt as spyx writes, and a leak potential): the input gain
    dt R / tau and v_leak fold into the weights, and our model then spikes as the NIR
    simulation of the graph."""
    rng = np.random.default_rng(0)
    w_in, w_rec = rng.normal(0, 1, (4, 5)), rng.normal(0, 0.5, (4, 4))
    w_out = rng.normal(0, 1, (2, 4))
    beta = 0.75
    tau = np.full(4, 1 / (1 - beta))
    lif = nir.LIF(tau=tau, r=np.full(4, beta), v_leak=np.full(4, 0.2), v_threshold=np.full(4, 0.3))
    sub = nir.NIRGraph(
        nodes={"layer_1.lif": lif, "layer_1.w_rec": nir.Linear(weight=w_rec),
               "layer_1.input": nir.Input(input_type=np.array([4])),
               "layer_1.output": nir.Output(output_type=np.array([4]))},
        edges=[("layer_1.input", "layer_1.lif"), ("layer_1.w_rec", "layer_1.lif"),
               ("layer_1.lif", "layer_1.w_rec"), ("layer_1.lif", "layer_1.output")])
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([5])), "layer_0": nir.Linear(weight=w_in),
               "layer_1": sub, "layer_2": nir.Linear(weight=w_out),
               "layer_3": nir.LI(tau=np.full(2, 2.0), r=np.full(2, 2.0), v_leak=np.zeros(2)),
               "output": nir.Output(output_type=np.array([2]))},
        edges=[("input", "layer_0"), ("layer_0", "layer_1"), ("layer_1", "layer_2"),
               ("layer_2", "layer_3"), ("layer_3", "output")])
    m = models.RecurrentMLP((5,), 2, hidden=[4], readout_beta=0.5, rngs=nnx.Rngs(0),
                            neuron=neuron_cfg(beta=beta, threshold=0.3, reset="zero"))
    params = export.from_nir(graph, m)
    g, _, rest = nnx.split(m, nnx.Param, ...)
    loaded = nnx.merge(g, params, rest)
    gain = beta * (1 - beta)  # dt R / tau
    np.testing.assert_allclose(loaded.fc0.kernel[...], (w_in * gain).T, rtol=1e-6)
    np.testing.assert_allclose(loaded.fc0.bias[...], 0.2 * (1 - beta), rtol=1e-6)
    x = _spikes((5,), seed=3)
    out, aux = loaded.trace(x, spike)
    flat_nodes = {"input": graph.nodes["input"], "layer_0": graph.nodes["layer_0"], "lif": lif,
                  "w_rec": nir.Linear(weight=w_rec), "layer_2": graph.nodes["layer_2"],
                  "layer_3": graph.nodes["layer_3"], "output": graph.nodes["output"]}
    flat = nir.NIRGraph(nodes=flat_nodes, type_check=False, edges=[
        ("input", "layer_0"), ("layer_0", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
        ("lif", "layer_2"), ("layer_2", "layer_3"), ("layer_3", "output")])
    sim = simulate(flat, np.asarray(x), 1.0)
    np.testing.assert_array_equal(sim["lif"].sum((0, 2)), np.asarray(aux["spike_counts"]["lif0"]))
    assert 0 < float(aux["spike_counts"]["lif0"].sum()) < T * B * 4
    np.testing.assert_allclose(sim["output"], np.asarray(out), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("cls", "kw", "message"),
    [
        (models.MLP, dict(neuron=neuron_cfg(reset="subtract")),
         r"^lif0: reset=subtract has no NIR equivalent .*; use model.neuron.reset=zero$"),
        (models.MLP, dict(neuron=neuron_cfg(reset="none")),
         r"^lif0: reset=none .*use model.neuron.reset=zero$"),
        (models.MLP, dict(neuron=neuron_cfg("alif", reset="zero")),
         r"^lif0: ALIF's adaptive threshold has no NIR node; use model/neuron=lif$"),
        (models.ConvSNN, dict(channels=[2], norm="none", neuron=neuron_cfg(reset="zero")),
         r"^pool0: NIR has no max pooling node; use model.pool_mode=avg$"),
        (models.ConvSNN, dict(channels=[2], pool_mode="avg", neuron=neuron_cfg(reset="zero")),
         r"^conv0: LayerNorm has no NIR node; use model.norm=none$"),
        # every affected layer is named, the fix once (not only the first layer)
        (models.MLP, dict(hidden=[16, 16], neuron=neuron_cfg(reset="subtract")),
         r"^lif0, lif1: reset=subtract has no NIR equivalent \(NIR's neurons reset to "
         r"v_reset\); use model.neuron.reset=zero$"),
        (models.MLP, dict(hidden=[3, 3, 3], neuron=neuron_cfg("alif", reset="zero")),
         r"^lif0, lif1, lif2: ALIF's adaptive threshold has no NIR node; use model/neuron=lif$"),
        (models.MLP, dict(hidden=[3, 3], readout="spike_count", neuron=neuron_cfg(reset="none")),
         r"^lif0, lif1, out_neurons: reset=none .*; use model.neuron.reset=zero$"),
        (models.ConvSNN, dict(norm="none", neuron=neuron_cfg(reset="zero")),
         r"^pool0, pool1: NIR has no max pooling node; use model.pool_mode=avg$"),
        (models.ConvSNN, dict(pool=[1, 2], norm="none", neuron=neuron_cfg(reset="zero")),
         r"^pool1: NIR has no max pooling node; use model.pool_mode=avg$"),
        (models.ConvSNN, dict(pool_mode="avg", neuron=neuron_cfg(reset="zero")),
         r"^conv0, conv1: LayerNorm has no NIR node; use model.norm=none$"),
        (models.ConvSNN, dict(pool_mode="avg", norm="none", dense=[4]),
         r"^lif0, lif1, lif2: reset=subtract .*; use model.neuron.reset=zero$"),
    ],
)
def test_refusals(cls, kw, message):
    shape = (6, 6, 1) if cls is models.ConvSNN else (4,)
    m = cls(shape, 2, rngs=nnx.Rngs(0), **kw)
    with pytest.raises(export.NIRError, match=message):
        export.to_nir(m)


def test_every_refusal_at_once():
    """A default conv run needed three export attempts to learn its three options, and each
    named only the first layer: every item names all the layers it affects, the fix once."""
    m = models.ConvSNN((6, 6, 1), 2, rngs=nnx.Rngs(0))
    assert m.n_conv == 2  # the default conv model: conv0, conv1
    with pytest.raises(export.NIRError) as e:
        export.to_nir(m)
    assert str(e.value) == (
        "3 things NIR cannot represent: conv0, conv1: LayerNorm has no NIR node; use "
        "model.norm=none; pool0, pool1: NIR has no max pooling node; use model.pool_mode=avg; "
        "lif0, lif1: reset=subtract has no NIR equivalent (NIR's neurons reset to v_reset); "
        "use model.neuron.reset=zero")


def test_every_refusal_at_once_mlp():
    """An MLP with 2 hidden layers and the default reset names both of its layers."""
    m = models.MLP((4,), 2, hidden=[16, 16], rngs=nnx.Rngs(0))
    with pytest.raises(export.NIRError) as e:
        export.to_nir(m)
    assert str(e.value) == (
        "lif0, lif1: reset=subtract has no NIR equivalent (NIR's neurons reset to v_reset); "
        "use model.neuron.reset=zero")


def test_import_mismatches():
    rec = models.RecurrentMLP((4,), 2, hidden=[3], neuron=neuron_cfg(reset="zero"),
                              rngs=nnx.Rngs(0))
    mlp = models.MLP((4,), 2, hidden=[3], neuron=neuron_cfg(reset="zero"), rngs=nnx.Rngs(0))
    with pytest.raises(export.NIRError, match=r"lif0: the graph has a recurrent weight; use "
                       r"model=recurrent"):
        export.from_nir(export.to_nir(rec), mlp)
    with pytest.raises(export.NIRError, match=r"^lif0: the graph has no recurrent weight; use "
                       r"model=mlp$"):  # read "has no a recurrent weight"
        export.from_nir(export.to_nir(mlp), rec)
    wide = models.MLP((4,), 2, hidden=[3, 3], neuron=neuron_cfg(reset="zero"), rngs=nnx.Rngs(0))
    with pytest.raises(export.NIRError, match=r"do not match the model's \[fc0 \(affine\)"):
        export.from_nir(export.to_nir(mlp), wide)
    # another width: said in the graph's layout (it quoted (4, 6) for the graph's (6, 4))
    six = models.MLP((4,), 2, hidden=[6], neuron=neuron_cfg(reset="zero"), rngs=nnx.Rngs(0))
    with pytest.raises(export.NIRError, match=r"^fc0 \(NIR node .*\): the graph's weight has "
                       r"shape \(6, 4\), the model needs \(3, 4\) \(NIR's layout: out x in\)$"):
        export.from_nir(export.to_nir(six), mlp)
    sub = models.MLP((4,), 2, hidden=[3], neuron=neuron_cfg(reset="subtract"), rngs=nnx.Rngs(0))
    with pytest.raises(export.NIRError, match=r"use model.neuron.reset=zero"):
        export.from_nir(export.to_nir(mlp), sub)
    beta = models.MLP((4,), 2, hidden=[3], readout_beta=0.7, neuron=neuron_cfg(reset="zero"),
                      rngs=nnx.Rngs(0))
    with pytest.raises(export.NIRError, match=r"set model.readout_beta"):
        export.from_nir(export.to_nir(mlp), beta)
    # an IF model: "set model/neuron=lif or model.learn_beta=true", but IF cannot learn beta
    if_model = models.MLP((4,), 2, hidden=[3], neuron={"name": "if", "reset": "zero"},
                          rngs=nnx.Rngs(0))
    with pytest.raises(export.NIRError, match=r"fixed 1.0; use model/neuron=lif \(the IF neuron "
                       r"has no beta\)$"):
        export.from_nir(export.to_nir(mlp), if_model)
    # another kernel size: was "conv0: padding [1, 1] is neither SAME nor VALID"
    conv = {"channels": [4], "norm": "none", "pool_mode": "avg", "neuron": neuron_cfg(reset="zero")}
    three = models.ConvSNN((8, 8, 1), 10, kernel_size=3, rngs=nnx.Rngs(0), **conv)
    five = models.ConvSNN((8, 8, 1), 10, kernel_size=5, rngs=nnx.Rngs(0), **conv)
    with pytest.raises(export.NIRError, match=r"^conv0: the graph's kernel is 3x3, the model's "
                       r"5x5; set model.kernel_size to the graph's$"):
        export.from_nir(export.to_nir(three), five)


def test_sum_pool_folds_into_the_conv():
    """A SumPool2d graph loads as avg pooling with the conv scaled by k^2 (same outputs)."""
    m = _model("conv_same_avg_before", 0)
    g = export.to_nir(m)
    g.nodes["pool0"] = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                     padding=np.array([0, 0]))
    g.nodes["conv0"].weight = g.nodes["conv0"].weight / 4
    g.nodes["conv0"].bias = g.nodes["conv0"].bias / 4
    params = export.from_nir(g, _model("conv_same_avg_before", 1))
    np.testing.assert_allclose(params["conv0"]["kernel"][...], m.conv0.kernel[...], rtol=1e-6)


def test_spyx_imports_our_graph():
    """spyx's NIR importer reads our graph with our weights, beta and thresholds. Its LIF is not
    NIR's: it fires from the previous step's membrane (a one-step delay per layer) and resets by
    subtraction, so its spikes equal ours only delayed, on an input where no neuron would fire
    twice (one input step, currents below 2 threshold / beta): then layer l fires at t + l."""
    spyx_nir = pytest.importorskip("spyx.nir")
    m = models.MLP((4,), 3, hidden=[5], readout="spike_count", rngs=nnx.Rngs(0),
                   neuron=neuron_cfg(beta=0.8, threshold=1.0, reset="zero"))
    rng = np.random.default_rng(0)
    m.fc0.kernel[...] = jnp.asarray(rng.uniform(0.0, 1.2, (4, 5)), jnp.float32)
    m.readout.linear.kernel[...] = jnp.asarray(rng.uniform(0.0, 0.45, (5, 3)), jnp.float32)
    x = jnp.zeros((6, 2, 4)).at[0].set(jnp.array([[1.0, 1.0, 0, 0], [0, 0, 1.0, 1.0]]))
    model, out = spyx_nir.from_nir(export.to_nir(m), x, dt=1.0)
    fc0, lif0 = model.layers[0], model.layers[1]
    np.testing.assert_array_equal(fc0.kernel[...], m.fc0.kernel[...])
    np.testing.assert_allclose(lif0.beta[...], 0.8, rtol=1e-6)
    np.testing.assert_array_equal(lif0.threshold, 1.0)
    ours, _ = m.trace(x, spike)
    assert float(ours.sum()) > 0
    np.testing.assert_array_equal(np.asarray(out)[2:], np.asarray(ours)[:-2])
    assert float(np.abs(np.asarray(out)[:2]).sum()) == 0 == float(ours[-2:].sum())


@pytest.mark.slow
def test_cli_exports_a_trained_run(tmp_path, capsys):
    """Train one tiny epoch, export with ``python -m snntrain.export``, load it back."""
    from conftest import compose

    from snntrain import train

    cfg = compose("model.neuron.reset=zero", "T=4", "model.hidden=[8]")
    run = tmp_path / "run"
    train.train_and_evaluate(cfg, run)
    out = tmp_path / "model.nir"
    assert export.main([str(run), "--nir", str(out)]) == 0
    graph = nir.read(out, type_check=True)
    assert int(graph.metadata["T"]) == 4 and str(graph.metadata["encoder"]) == "rate"
    params = train.params_of(run)
    loaded = export.from_nir(out, train.build(cfg).model())
    for p, q in zip(jax.tree.leaves(loaded), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(np.asarray(p), np.asarray(q))
    assert export.main([str(tmp_path / "nothing"), "--nir", str(out)]) == 2
    assert "snntrain: error:" in capsys.readouterr().err
    assert export.main([str(run), "--nir", str(tmp_path / "no" / "m.nir")]) == 2
    assert capsys.readouterr().err == (f"snntrain: error: --nir {tmp_path / 'no' / 'm.nir'}: "
                                       f"cannot write it: directory {tmp_path / 'no'} does not "
                                       "exist\n")
    failed = tmp_path / "failed"  # (a run that failed before it wrote its config)
    failed.mkdir()
    (failed / "summary.json").write_text(json.dumps({"status": "failed", "error":
                                                     "ConfigError: dataset.path=x: no such file"}))
    assert export.main([str(failed), "--nir", str(out)]) == 2
    assert capsys.readouterr().err == (f"snntrain: error: {failed} holds a run that failed "
                                       "before it trained (nothing to export): ConfigError: "
                                       "dataset.path=x: no such file\n")
    # not over a file that is not NIR (--nir <run>/config.yaml replaced the run's config),
    # nor at a dt whose time constants are infinite (tau = inf was written, refused on import)
    config = (run / "config.yaml").read_bytes()
    assert export.main([str(run), "--nir", str(run / "config.yaml")]) == 2
    assert capsys.readouterr().err == (f"snntrain: error: --nir {run / 'config.yaml'}: the file "
                                       "exists and is not a NIR (HDF5) file; not overwritten: "
                                       "choose another path\n")
    assert (run / "config.yaml").read_bytes() == config
    assert export.main([str(run), "--nir", str(out), "--dt", "1.7e308"]) == 2
    assert capsys.readouterr().err == ("snntrain: error: --dt 1.7e+308: the graph's lif0.tau "
                                       "would not be finite at this dt; give the time step of "
                                       "the neurons' beta (their dt)\n")
    assert export.main([str(run), "--nir", str(out)]) == 0  # (over an earlier export: fine)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps(summary | {"status": "preempted"}))
    assert export.main([str(run), "--nir", str(out)]) == 0
    assert capsys.readouterr().err == (f"note: {run} is preempted (its summary.json): the graph "
                                       "holds the parameters of its last checkpoint\n")
    bad = compose("T=4", "model.hidden=[8]")  # reset=subtract: refused with the fix
    train.train_and_evaluate(bad, tmp_path / "sub")
    assert export.main([str(tmp_path / "sub"), "--nir", str(out)]) == 2
    assert "use model.neuron.reset=zero" in capsys.readouterr().err


def test_a_config_yaml_that_is_not_yaml_is_one_line(tmp_path, capsys):
    """A hand-edited config.yaml with a YAML error ended in yaml.parser's traceback."""
    (tmp_path / "config.yaml").write_text("model:\n  hidden:\n  - 32\n - 8\n")
    assert export.main([str(tmp_path), "--nir", str(tmp_path / "m.nir")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"snntrain: error: {tmp_path / 'config.yaml'} is not readable YAML "
                          "(ParserError: ") and err.count("\n") == 1


def test_init_from_a_file_that_is_not_nir_names_the_key(tmp_path):
    from conftest import compose

    from snntrain import train

    not_nir = tmp_path / "weights.npz"
    np.savez(not_nir, w=np.zeros(3))
    with pytest.raises(ConfigError, match=r"^trainer\.init_from='.*weights\.npz' is invalid: "
                                          r"must be a \.nir file \(NIR graphs are HDF5 files; "
                                          r"this one is not\)$"):
        train.train_and_evaluate(compose("model.neuron.reset=zero", "T=4", "model.hidden=[8]",
                                         f"trainer.init_from={not_nir}"), tmp_path / "init")
    assert not (tmp_path / "init" / "checkpoints").exists() or not any(
        (tmp_path / "init" / "checkpoints").iterdir())


def test_init_from_accepts_an_hdf5_file_after_a_user_block(tmp_path):
    """HDF5's signature sits at byte 0, 512, 1024, 2048, ... (after a user block)."""
    from snntrain.config import HDF5_SIGNATURE, _nir_file

    for at, ok in ((0, True), (4096, True), (100, False)):
        path = tmp_path / f"at{at}.nir"
        path.write_bytes(b"\0" * at + HDF5_SIGNATURE + b"\0" * 64)
        assert (_nir_file(str(path)) is None) == ok, at


@pytest.mark.slow
def test_cli_exports_a_population_member(tmp_path, capsys):
    """A population's directory is refused in one line naming how to export a member (before:
    "incompatible run: members: ..."); a member's directory exports that member's parameters
    (before: "no checkpoint", the population's checkpoints hold them)."""
    from conftest import compose

    from snntrain import population, train

    cfg = compose("model.neuron.reset=zero", "T=4", "model.hidden=[8]",
                  "trainer.population.surrogate.alpha=[1,4]")
    run, out = tmp_path / "pop", tmp_path / "member.nir"
    train.train_and_evaluate(cfg, run)
    capsys.readouterr()
    assert export.main([str(run), "--nir", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"snntrain: error: {run} is a population of 2 members; export one of them: python -m "
        f"snntrain.export {run / 'members' / '<name>'} --nir <file> (names: "
        "0-surrogate.alpha=1, 1-surrogate.alpha=4)\n")
    member = run / "members" / "1-surrogate.alpha=4"
    assert export.main([str(member), "--nir", str(out)]) == 0
    wanted = population.params_of(run)[member.name]
    member_cfg = population.members(cfg)[1].cfg
    loaded = export.from_nir(out, train.build(member_cfg).model())
    for p, q in zip(jax.tree.leaves(loaded), jax.tree.leaves(wanted), strict=True):
        np.testing.assert_array_equal(np.asarray(p), np.asarray(q))
    # trainer.init_from in a population: every member starts from the graph, as its solo run
    # does (before, a population ignored the key without a word)
    common = ("model.neuron.reset=zero", "T=4", "model.hidden=[8]", f"trainer.init_from={out}")
    from snntrain import config  # (a neuron NIR cannot hold: refused before the run directory)
    with pytest.raises(ConfigError, match=rf"^trainer.init_from={out}: reset=subtract has no "
                                          r"NIR equivalent .*; use model.neuron.reset=zero$"):
        config.validate(compose(*common[1:]))
    pop = train.train_and_evaluate(compose(*common, "trainer.population.seed=[0,1]"),
                                   tmp_path / "from_nir")
    solo = train.train_and_evaluate(compose(*common, "seed=1"), tmp_path / "solo")
    member = tmp_path / "from_nir" / "members" / "1-seed=1"
    assert pop["completed"] == 2
    assert (member / "metrics.jsonl").read_text().splitlines()[0] == (
        tmp_path / "solo" / "metrics.jsonl").read_text().splitlines()[0]
    assert json.loads((member / "summary.json").read_text())["test_loss"] == solo["test_loss"]
    fresh = train.train_and_evaluate(compose(*common[:3], "seed=1"), tmp_path / "fresh")
    assert fresh["test_loss"] != solo["test_loss"]  # the graph's weights made the difference


# ---- import faults: what used to load silently wrong or fail with a traceback ----------------


def _with_rec(graph: nir.NIRGraph, target: str, *recs: tuple[str, nir.NIRNode]) -> nir.NIRGraph:
    """``graph`` with recurrent weights ``target -> rec -> target`` added."""
    nodes, edges = dict(graph.nodes), list(graph.edges)
    for name, node in recs:
        nodes[name] = node
        edges += [(target, name), (name, target)]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata),
                        type_check=False)


def _zero_reset_mlp(**kw) -> nnx.Module:
    return models.MLP((4,), 2, hidden=[3], rngs=nnx.Rngs(0),
                      neuron=neuron_cfg(beta=0.8, threshold=0.9, reset="zero"), **kw)


def test_recurrent_affine_bias_folds_into_the_input_bias():
    """snnTorch exports a recurrent nn.Linear with bias as an Affine: its bias, a constant
    current at every step, is added to fc0's bias (before: dropped without a word, and the
    spikes differed from the NIR simulation)."""
    a = _model("recurrent_spike_count", 0)
    g = export.to_nir(a)
    b_rec = np.linspace(0.3, 0.7, 6)
    w_rec = np.asarray(g.nodes["rec0"].weight, np.float64)
    g.nodes["rec0"] = nir.Affine(weight=w_rec, bias=b_rec)
    loaded = nnx.clone(a)
    nnx.update(loaded, export.from_nir(g, _model("recurrent_spike_count", 1)))
    np.testing.assert_allclose(loaded.fc0.bias[...], np.asarray(a.fc0.bias[...]) + b_rec,
                               rtol=1e-6)
    np.testing.assert_allclose(loaded.rec0.kernel[...], w_rec.T, rtol=1e-6)
    x = _spikes((5,), seed=2)
    out, aux = loaded.trace(x, spike)
    sim = simulate(g, np.asarray(x), 1.0)
    np.testing.assert_array_equal(sim["lif0"].sum((0, 2)), np.asarray(aux["spike_counts"]["lif0"]))
    np.testing.assert_allclose(sim["output"], np.asarray(out), rtol=1e-5, atol=1e-5)
    _, aux_a = a.trace(x, spike)  # the bias matters: without it the spikes differ
    assert not np.array_equal(np.asarray(aux_a["spike_counts"]["lif0"]),
                              np.asarray(aux["spike_counts"]["lif0"]))


def test_recurrent_weight_off_a_hidden_layer_is_refused():
    """A recurrent weight on the output neurons (or the input, an Affine, ...) has no place in
    snntrain's models: refused naming the node (before: ignored, outputs differed)."""
    mlp = _zero_reset_mlp()
    g = export.to_nir(mlp)
    r = ("r", nir.Linear(weight=np.eye(2)))
    tail = ("the graph has a recurrent weight on this node (NIR node r); snntrain's recurrent "
            "weights feed hidden spiking layers only (model=recurrent), it cannot load this graph")
    for target, where in (("out_neurons", "out_neurons (NIR node out_neurons)"),
                          ("readout", "readout (NIR node readout)"),
                          ("input", "NIR node input")):
        node = ("r", nir.Linear(weight=np.eye(4 if target == "input" else 2)))
        with pytest.raises(export.NIRError) as e:
            export.from_nir(_with_rec(g, target, node), mlp)
        assert str(e.value) == f"{where}: {tail}"
    rec = models.RecurrentMLP((4,), 2, hidden=[3], rngs=nnx.Rngs(0),
                              neuron=neuron_cfg(reset="zero"))
    with pytest.raises(export.NIRError) as e:
        export.from_nir(_with_rec(export.to_nir(rec), "out_neurons", r), rec)
    assert str(e.value) == f"out_neurons (NIR node out_neurons): {tail}"
    two = _with_rec(export.to_nir(rec), "lif0", ("r2", nir.Linear(weight=np.eye(3))))
    with pytest.raises(export.NIRError) as e:
        export.from_nir(two, rec)
    assert str(e.value) == ("lif0: the graph has 2 recurrent weights on this layer (NIR nodes "
                            "rec0, r2); snntrain's recurrent layer has one")


def test_beta_outside_0_1_is_refused_with_the_dt_to_pass():
    """snnTorch writes tau = 1e-4 / (1 - beta) and no dt: with the default dt 1, beta = 1 -
    dt / tau = -1999 (before: NaN parameters with learn_beta, else "set model.neuron.beta",
    which cannot help). Refused naming the layer, tau, dt and where dt came from."""
    fixed, learned = _zero_reset_mlp(), _zero_reset_mlp(learn_beta=True)
    g = export.to_nir(fixed, dt=1e-4)
    snntorch_like = nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata={}, type_check=False)
    want = ("lif0: tau = 0.0005 with dt = 1 (the default 1: the graph's metadata has no dt) "
            "gives beta = 1 - dt/tau = -1999 (3 of 3 outside (0, 1]); pass the graph's dt "
            "(from_nir(..., dt=...), trainer.init_from_dt; snnTorch's graphs have dt = 1e-4)")
    for m in (fixed, learned):
        with pytest.raises(export.NIRError) as e:
            export.from_nir(snntorch_like, m)
        assert str(e.value) == want
    with pytest.raises(export.NIRError) as e:
        export.from_nir(g, fixed, dt=1.0)
    assert str(e.value) == want.replace("the default 1: the graph's metadata has no dt",
                                        "the dt argument")
    meta_1 = nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata={"dt": 1.0}, type_check=False)
    with pytest.raises(export.NIRError, match=r"^lif0: .*\(the graph's metadata\) gives"):
        export.from_nir(meta_1, fixed)
    params = export.from_nir(snntorch_like, learned, dt=1e-4)  # the graph's dt: loads
    np.testing.assert_allclose(jax.nn.sigmoid(params["lif0"]["beta_logit"][...]), 0.8, rtol=1e-5)
    export.from_nir(snntorch_like, fixed, dt=1e-4)
    neg = export.to_nir(fixed)
    neg.nodes["lif0"].tau = -neg.nodes["lif0"].tau  # beta > 1
    with pytest.raises(export.NIRError, match=r"^lif0: tau = -5 with dt = 1 \(the graph's "
                                              r"metadata\) gives beta = 1 - dt/tau = 1.2 "):
        export.from_nir(neg, fixed)
    with pytest.raises(export.NIRError, match=r"^dt = 0 \(the dt argument\) is invalid"):
        export.from_nir(g, fixed, dt=0.0)


def _exp(path, model_fn, **trainer):
    """A stand-in for an Experiment: what nir_params reads (run.trainer, model())."""
    from types import SimpleNamespace

    return SimpleNamespace(run=SimpleNamespace(
        trainer=SimpleNamespace(init_from=str(path), **trainer)), model=model_fn)


def test_init_from_dt(tmp_path):
    """trainer.init_from_dt is the graph's dt (before: no way to pass it); read defensively,
    so a config without the key still loads with the graph's metadata."""
    fixed = _zero_reset_mlp()
    g = export.to_nir(fixed, dt=1e-4)
    path = tmp_path / "snntorch.nir"
    nir.write(path, nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata={}, type_check=False))
    with pytest.raises(ConfigError) as e:
        export.nir_params(_exp(path, _zero_reset_mlp))  # no init_from_dt key at all
    assert str(e.value).startswith(f"trainer.init_from={path}: lif0: tau = 0.0005 with dt = 1 "
                                   "(the default 1: the graph's metadata has no dt)")
    with pytest.raises(ConfigError) as e:
        export.nir_params(_exp(path, _zero_reset_mlp, init_from_dt=None))
    assert "(the default 1: the graph's metadata has no dt)" in str(e.value)
    with pytest.raises(ConfigError) as e:
        export.nir_params(_exp(path, _zero_reset_mlp, init_from_dt=0.5))
    assert str(e.value).startswith(f"trainer.init_from={path}: lif0: tau = 0.0005 with dt = "
                                   "0.5 (trainer.init_from_dt) gives beta")
    learned = lambda: _zero_reset_mlp(learn_beta=True)  # noqa: E731
    params = export.nir_params(_exp(path, learned, init_from_dt=1e-4))
    np.testing.assert_allclose(jax.nn.sigmoid(params["lif0"]["beta_logit"][...]), 0.8, rtol=1e-5)
    np.testing.assert_allclose(params["fc0"]["kernel"][...], fixed.fc0.kernel[...], rtol=1e-6)
    from omegaconf import OmegaConf  # the trainer group as a DictConfig works too

    exp = _exp(path, learned)
    exp.run.trainer = OmegaConf.create({"init_from": str(path), "init_from_dt": 1e-4})
    assert export.nir_params(exp) is not None


def test_init_from_an_hdf5_file_that_is_not_nir(tmp_path):
    """An HDF5 file without NIR's groups (before: KeyError "Unable to synchronously open
    object (object 'node' doesn't exist)")."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ConfigError, match=(
            rf"^trainer.init_from={path}: not a NIR graph \(an HDF5 file without NIR's groups: "
            r".*'node'.*\); NIR graphs are written by nir.write or python -m snntrain.export$")):
        export.nir_params(_exp(path, _zero_reset_mlp))
    with pytest.raises(export.NIRError, match=rf"^{path}: not a NIR graph \("):
        export.from_nir(path, _zero_reset_mlp())


def test_shape_mismatch_names_the_layer_and_unknown_edges():
    """A conv graph for 8x8 inputs into the same model on 6x6 data (before: a ValueError
    "operands could not be broadcast together ..." naming no layer), and an edge to a node
    the graph does not have (before: KeyError 'ghost')."""
    kw = dict(channels=[2], kernel_size=3, pool=1, pool_mode="avg", norm="none", dense=[],
              neuron=neuron_cfg(reset="zero"), rngs=nnx.Rngs(0))
    g = export.to_nir(models.ConvSNN((8, 8, 1), 2, **kw))
    with pytest.raises(export.NIRError) as e:
        export.from_nir(g, models.ConvSNN((6, 6, 1), 2, **kw))
    assert str(e.value) == ("lif0: the graph's layer has shape (2, 8, 8), the model's (2, 6, 6) "
                            "(C, H, W: is the graph for another input size?)")
    mlp = _zero_reset_mlp()
    g = export.to_nir(mlp)
    ghost = nir.NIRGraph(nodes=dict(g.nodes), edges=[*g.edges, ("lif0", "ghost")],
                         type_check=False)
    with pytest.raises(export.NIRError) as e:
        export.from_nir(ghost, mlp)
    assert str(e.value) == ("the NIR graph's edge 'lif0' -> 'ghost' names node 'ghost', which "
                            "the graph does not have")


def test_alif_refusal_names_every_problem_at_once():
    """An ALIF MLP with the default subtractive reset: both fixes in one message (before: only
    the ALIF one; following it still failed on the reset)."""
    alif = models.MLP((4,), 2, hidden=[3, 3], rngs=nnx.Rngs(0), neuron=neuron_cfg("alif"))
    assert alif.lif0.neuron.reset == "subtract"
    with pytest.raises(export.NIRError) as e:
        export.to_nir(alif)
    assert str(e.value) == (
        "2 things NIR cannot represent: lif0, lif1: ALIF's adaptive threshold has no NIR node; "
        "use model/neuron=lif; lif0, lif1: reset=subtract has no NIR equivalent (NIR's neurons "
        "reset to v_reset); use model.neuron.reset=zero")
    lif = models.MLP((4,), 2, hidden=[3, 3], rngs=nnx.Rngs(0), neuron=neuron_cfg(reset="zero"))
    with pytest.raises(export.NIRError) as e:
        export.from_nir(export.to_nir(lif), alif)
    assert str(e.value) == (
        "lif0: ALIF's adaptive threshold has no NIR node; use model/neuron=lif; reset=subtract "
        "has no NIR equivalent (NIR's neurons reset to v_reset); use model.neuron.reset=zero")


@pytest.mark.slow  # (default run kept under ~10 minutes; CI runs it)
def test_init_from_a_graph_that_does_not_fit_is_refused_before_the_run_directory(tmp_path):
    """A graph of other layer sizes, or another fixed beta, than the model was refused when
    the graph was loaded, after the run directory existed (a failed summary.json in it). The
    start-up loads the graph into the model built for the graph's own input size."""
    from _workers import cli
    from conftest import compose

    from snntrain import config, nirgraph

    base = ("model.neuron.reset=zero", "model.hidden=[8]")
    run = config.parse(compose(*base))
    path = tmp_path / "digits.nir"
    nir.write(path, export.to_nir(models.from_config(run.model, (8, 8, 1), 10, 0)))

    def check(*more):
        nirgraph.check_init_from(config.parse(compose(*base, f"trainer.init_from={path}",
                                                      *more)))

    check()  # (the graph of this very model)
    with pytest.raises(ConfigError) as e:
        check("model.hidden=[16]")
    assert str(e.value) == (f"trainer.init_from={path}: fc0 (NIR node fc0): the graph's weight "
                            "has shape (8, 64), the model needs (16, 64) (NIR's layout: out x in)")
    with pytest.raises(ConfigError, match=rf"^trainer.init_from={path}: lif0: the graph's beta "
                                          r"\[0.9 0.9 0.9 ...\] \(8 values\) differs from "
                                          r"the model's fixed 0.5; set "
                                          r"model.neuron.beta or model.learn_beta=true$"):
        check("model.neuron.beta=0.5")
    with pytest.raises(ConfigError, match=rf"^trainer.init_from={path}: the NIR graph's layers "
                                          r"\[.*\] do not match the model's"):
        check("model.hidden=[8,8]")
    with pytest.raises(ConfigError, match=r"do not match the model's \[conv0 \(conv\)"):
        nirgraph.check_init_from(config.parse(compose(  # (a dense graph for a conv model)
            "model=conv", "model.pool_mode=avg", "model.norm=none", "model.neuron.reset=zero",
            f"trainer.init_from={path}", tiny=False)))
    # a population: each member's model (a varying beta: the base config's may fit none)
    from snntrain import startup

    def check_population(betas):
        cfg = compose(*base, f"trainer.init_from={path}", "model.neuron.beta=0.5",
                      f"trainer.population.neuron.beta={betas}", "trainer.population.seed=[0,1]")
        startup._check_init_from(cfg, config.parse(cfg), None)

    check_population("[0.9]")
    with pytest.raises(ConfigError, match=r"lif0: the graph's beta .* differs from the model's "
                                          r"fixed 0.7"):
        check_population("[0.9,0.7]")
    run_dir = tmp_path / "run"
    p = cli(*base, "model.hidden=[16]", f"trainer.init_from={path}",
            f"hydra.run.dir={run_dir}", "logger=none", cwd=tmp_path)
    assert p.returncode == 2 and not run_dir.exists(), p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith(
        f"snntrain: error: trainer.init_from={path}: "), p.stderr[-2000:]
    p = cli(*base, f"trainer.init_from={path}", "trainer.epochs=1", "T=4",
            f"hydra.run.dir={run_dir}", "logger=none", "trainer.progress=false", cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]  # (the graph that fits trains from it)
    assert f"initialised the model from {path}" in p.stdout + p.stderr


def test_init_from_a_graph_for_another_input_size_is_refused_before_the_run_directory(
        tmp_path):
    """A graph of 4x4 inputs on the 8x8 digits was refused when the data was loaded, after
    the run directory existed: the start-up knows the digits' shape and loads the graph into
    the model built for it."""
    from _workers import cli
    from conftest import compose

    from snntrain import config

    base = ("model.neuron.reset=zero", "model.hidden=[8]")
    path = tmp_path / "small.nir"
    nir.write(path, export.to_nir(models.from_config(config.parse(compose(*base)).model,
                                                     (4, 4, 1), 10, 0)))
    run_dir = tmp_path / "run"
    p = cli(*base, f"trainer.init_from={path}", f"hydra.run.dir={run_dir}", "logger=none",
            cwd=tmp_path)
    assert p.returncode == 2 and not run_dir.exists(), p.stderr[-2000:]
    assert p.stderr.strip().splitlines()[-1] == (
        f"snntrain: error: trainer.init_from={path}: fc0 (NIR node fc0): the graph's weight has "
        "shape (8, 16), the model needs (8, 64) (NIR's layout: out x in)"), p.stderr[-2000:]


def test_a_graph_with_values_no_model_could_hold_is_refused():
    """A NaN weight loaded and the run "diverged at step 1" (blaming the learning rate); a
    threshold of 0 loaded into a learned threshold, which model.neuron.threshold refuses."""
    m = _zero_reset_mlp(learn_threshold=True)
    g = export.to_nir(m)
    w = np.array(g.nodes["fc0"].weight, np.float32)
    w[1, 2] = np.nan
    bad = nir.NIRGraph(nodes={**g.nodes, "fc0": nir.Affine(weight=w, bias=g.nodes["fc0"].bias)},
                       edges=g.edges, type_check=False)
    with pytest.raises(export.NIRError) as e:
        export.from_nir(bad, m)
    assert str(e.value) == ("fc0 (NIR node fc0): the graph's values are not all finite (1 of 12 "
                            "are NaN or infinite)")
    w64 = np.array(g.nodes["fc0"].weight, np.float64)
    w64[1, 2] = 1e39  # (finite in float64)
    big = nir.NIRGraph(nodes={**g.nodes, "fc0": nir.Affine(weight=w64, bias=g.nodes["fc0"].bias)},
                       edges=g.edges, type_check=False)
    with pytest.raises(export.NIRError, match=r"not all finite \(.* in float32\)$"):
        export.from_nir(big, m)
    lif = g.nodes["lif0"]
    for theta in (0.0, np.nan):
        node = nir.LIF(tau=lif.tau, r=lif.r, v_leak=lif.v_leak,
                       v_threshold=np.full_like(lif.v_threshold, theta), v_reset=lif.v_reset)
        zero = nir.NIRGraph(nodes={**g.nodes, "lif0": node}, edges=g.edges, type_check=False)
        with pytest.raises(export.NIRError, match=r"^lif0: the graph's threshold \[.*\] is "
                                                  r"invalid: a threshold must be finite and > "
                                                  r"0$"):
            export.from_nir(zero, m)
    np.testing.assert_array_equal(  # (the graph as exported still loads)
        export.from_nir(g, m)["fc0"]["kernel"][...], m.fc0.kernel[...])


def test_our_graphs_readout_must_be_the_models(tmp_path):
    """NIR has no node for how the output is read over time; our export records it in the
    metadata. spike_count with readout_scale 3 loaded into a model of scale 1 (or membrane_max
    into membrane_mean) trained another network without a word (tester)."""
    def mlp(**kw):
        return models.MLP((4,), 3, hidden=[5], rngs=nnx.Rngs(0),
                          neuron=neuron_cfg(beta=0.8, reset="zero"), **kw)

    graph = export.to_nir(mlp(readout="spike_count", readout_scale=3.0))
    export.from_nir(graph, mlp(readout="spike_count", readout_scale=3.0))
    with pytest.raises(export.NIRError) as e:
        export.from_nir(graph, mlp(readout="spike_count"))
    assert str(e.value) == (
        "the graph was exported with model.readout=spike_count model.readout_scale=3, this "
        "model has model.readout=spike_count model.readout_scale=1: set model.readout="
        "spike_count model.readout_scale=3")
    with pytest.raises(export.NIRError, match=r"^the graph was exported with model.readout="
                                              r"membrane_max, this model has model.readout="
                                              r"membrane_mean: set model.readout=membrane_max$"):
        export.from_nir(export.to_nir(mlp(readout="membrane_max")), mlp())
    # another library's graph (no snntrain metadata) is read as the model says
    other = export.to_nir(mlp(readout="membrane_max"))
    other.metadata = {"dt": 1.0}
    export.from_nir(other, mlp())


def test_export_into_a_path_under_a_file_says_so(tmp_path):
    (tmp_path / "a.nir").write_text("")
    run = tmp_path / "run"
    from conftest import compose

    from snntrain import train

    train.train_and_evaluate(compose("trainer.epochs=1", "model.neuron.reset=zero"), run)
    p = subprocess.run([sys.executable, "-m", "snntrain.export", str(run), "--nir",
                        str(tmp_path / "a.nir" / "x.nir")], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip() == (f"snntrain: error: --nir {tmp_path}/a.nir/x.nir: cannot write it: "
                                f"{tmp_path}/a.nir is a file, not a directory")
