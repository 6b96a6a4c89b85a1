"""Export to and import from NIR, the Neuromorphic Intermediate Representation.

``to_nir(model) -> nir.NIRGraph`` writes an MLP, recurrent or conv model as a NIR graph;
``from_nir(graph, model) -> params`` loads a NIR graph of the same shape (ours or another
library's) into a model's parameters; ``nir_params(exp)`` reads ``trainer.init_from``. The
command line that exports a trained run, ``python -m snntrain.export``, is ``export.py``.

Nodes, named like our parameters: ``input`` → (``conv<i>`` (``Conv2d``, OIHW weights) →
``pool<i>`` (``AvgPool2d``) → ``lif<i>``)* → ``flatten`` → (``fc<i>`` (``Affine``) →
``lif<i>``)* → ``readout`` (``Affine``) → ``out_neurons`` → ``output``. A recurrent layer adds
``rec<i>`` (``Linear``) with the edges ``lif<i> → rec<i> → lif<i>`` (simulated with a one-step
delay, as our ``W_rec s_{t-1}``). NIR is channels-first: conv inputs are ``(C, H, W)``, and the
first dense layer after the flatten has its columns in ``C, H, W`` order (ours are ``H, W, C``:
they are permuted). An MLP's input is the flat vector of ``H * W * C`` features, channels last.

Time: NIR's neurons are continuous, ``tau dv/dt = (v_leak - v) + R I``. One forward-Euler step
of length ``dt`` gives ``v_t = (1 - dt/tau) v_{t-1} + (dt/tau) R I_t``; with ``tau = dt / (1 -
beta)``, ``R = tau / dt`` and ``v_leak = 0`` this is exactly our ``v_t = beta v_{t-1} + I_t``
(the mapping snnTorch's and spyx's NIR code uses; ``dt`` is written to the graph metadata, default
1). ``tau`` is the Euler time constant, not ``-dt / ln(beta)``. ``beta = 1`` (IF) is ``nir.IF``
with ``R = 1 / dt``, a readout with ``readout_beta = 1`` is ``nir.I``. The membrane readout is
``nir.LI`` (the logits' reduction over time, ``model.readout``, is in the metadata), the
``spike_count`` readout a spiking layer. Thresholds: NIR fires when ``v > v_threshold``, we fire
at ``v >= threshold`` (equal only on exact ties). On import, NIR's input scale ``dt R / tau``
and a nonzero ``v_leak`` are folded into the weights and biases feeding each neuron, ``beta =
1 - dt / tau``; ``dt`` defaults to the graph's metadata, else 1.

NIR has no subtractive reset (its neurons reset to ``v_reset``), no max pooling, no LayerNorm
and no adaptive threshold, so export refuses those with a one-line error that names every
affected layer and the option to change (``model.neuron.reset=zero``, ``model.pool_mode=avg``,
``model.norm=none``, ``model/neuron=lif``), all of them at once.

References:
  Pedersen et al., "Neuromorphic intermediate representation: a unified instruction set for
  interoperable brain-inspired computing", Nature Communications 15, 8122 (2024).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from snntrain import models
from snntrain import neurons as neurons_lib
from snntrain.errors import ConfigError

try:
    import nir
except ImportError:  # an optional extra: only to_nir and from_nir need it (require_nir)
    nir = None

NIR_MISSING = ("NIR export and import need the nir package: pip install 'snntrain[nir]' (in a "
               "checkout: pip install -e '.[nir]')")


def require_nir() -> None:
    """Raise the one-line ImportError of a missing ``nir`` package (the optional extra), so
    that importing this module (the trainer does, for ``trainer.init_from``) never needs it."""
    if nir is None:
        raise ImportError(NIR_MISSING)


class NIRError(ConfigError):
    """A model NIR cannot represent, or a NIR graph that does not fit the model."""


# ---- the layer plan (shared by export and import) --------------------------------------------


def _plan(model: Any) -> list[dict[str, Any]]:
    """The model as the chain of NIR nodes it maps to (recurrent weights ride on the neuron)."""
    steps: list[dict[str, Any]] = []
    chw = None
    if isinstance(model, models.ConvSNN):
        _norm_ok(model)
        _pools_ok(model)
        for i in range(model.n_conv):
            c, h, w = model.conv_in_shapes[i]
            k, p = model.kernels[i], model.pools[i]
            c_out = int(getattr(model, f"conv{i}").kernel.shape[-1])
            ho, wo = (h, w) if model.padding == "SAME" else (h - k + 1, w - k + 1)
            steps.append({"op": "conv", "name": f"conv{i}", "in_shape": (c, h, w), "k": k})
            pool = {"op": "pool", "name": f"pool{i}", "k": p, "feeds": f"conv{i}"}
            if p > 1 and model.pool_before_neuron:
                steps.append(pool)
                ho, wo = ho // p, wo // p
            steps.append({"op": "neuron", "name": f"lif{i}", "shape": (c_out, ho, wo),
                          "feeds": [f"conv{i}"]})
            if p > 1 and not model.pool_before_neuron:
                steps.append({**pool, "feeds": None})
                ho, wo = ho // p, wo // p
            chw = (c_out, ho, wo)
        steps.append({"op": "flatten", "name": "flatten", "shape": chw})
        n_fc, first = model.n_dense, model.n_conv
    elif isinstance(model, models.MLP):
        n_fc, first = model.n_layers, 0
    else:
        raise NIRError(f"{type(model).__name__}: only the mlp, recurrent and conv models export")
    for j in range(n_fc):
        fc = getattr(model, f"fc{j}")
        steps.append({"op": "affine", "name": f"fc{j}", "chw": chw if j == 0 else None})
        rec = f"rec{j}" if getattr(model, "recurrent", False) else None
        steps.append({"op": "neuron", "name": f"lif{first + j}", "shape": (fc.out_features,),
                      "feeds": [f"fc{j}", *([rec] if rec else [])], "rec": rec})
    steps.append({"op": "affine", "name": "readout", "chw": chw if n_fc == 0 else None})
    n_out = model.readout.linear.out_features
    steps.append({"op": "readout", "name": "out_neurons", "shape": (n_out,), "feeds": ["readout"]})
    return steps


def _refusals(model: Any) -> list[str]:
    """Every model-wide option that keeps ``model`` from exporting, each once with its fix and
    the names of all the layers it affects: the conv model's norm and max pooling, and its
    neurons' kind and reset."""
    found = []
    if isinstance(model, models.ConvSNN):
        for check in (_norm_ok, _pools_ok):
            try:
                check(model)
            except NIRError as e:
                found.append(str(e))
    return found + _neuron_refusals(model)


def _norm_ok(model: Any) -> None:
    if model.norm != "none":
        names = ", ".join(f"conv{i}" for i in range(model.n_conv))
        raise NIRError(f"{names}: LayerNorm has no NIR node; use model.norm=none")


def _pools_ok(model: Any) -> None:
    names = [f"pool{i}" for i in range(model.n_conv)
             if model.pools[i] > 1 and model.pool_mode == "max"]
    if names:
        raise NIRError(f"{', '.join(names)}: NIR has no max pooling node; use model.pool_mode=avg")


def _neuron_layers(model: Any) -> list[tuple[str, Any]]:
    """``(name, layer)`` of every spiking layer: ``lif0, lif1, ...`` and a spiking readout's
    ``out_neurons``."""
    layers, i = [], 0
    while hasattr(model, f"lif{i}"):
        layers.append((f"lif{i}", getattr(model, f"lif{i}")))
        i += 1
    readout = getattr(model, "readout", None)
    if getattr(readout, "mode", None) == "spike_count":
        layers.append(("out_neurons", readout.neurons))
    return layers


def _neuron_refusals(model: Any) -> list[str]:
    """The neurons NIR cannot represent: one item per problem, naming every layer with it."""
    problems: dict[str, list[str]] = {}
    for name, layer in _neuron_layers(model):
        for problem in neurons_lib.nir_problems(layer.neuron):
            problems.setdefault(problem, []).append(name)
    return [f"{', '.join(names)}: {problem}" for problem, names in problems.items()]


def _module(model: Any, name: str) -> Any:
    if name == "readout":
        return model.readout.linear
    if name == "out_neurons":
        return model.readout.neurons
    return getattr(model, name)


def _chw_to_ours(chw: tuple[int, int, int]) -> np.ndarray:
    """For each feature in NIR's ``C, H, W`` flatten order, its index in our ``H, W, C``."""
    c, h, w = chw
    return np.arange(c * h * w).reshape(h, w, c).transpose(2, 0, 1).ravel()


def _first(values: np.ndarray, n: int = 3) -> str:
    """``[0.9 0.91 0.9]``, or ``[0.9 0.91 0.9 ...] (4 values)`` when there are more."""
    flat = np.asarray(values).ravel()
    shown = np.array2string(flat[:n], precision=6)
    return shown if flat.size <= n else f"{shown[:-1]} ...] ({flat.size} values)"


def _neuron_cell(layer: Any, name: str) -> Any:
    cell = layer.neuron
    if problems := neurons_lib.nir_problems(cell):
        raise NIRError(f"{name}: {'; '.join(problems)}")
    return cell


def _neuron_params(layer: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(beta, threshold)`` of a spiking layer, broadcast to the NIR shape (float32)."""
    p = layer.params(jnp.float32)
    out = []
    for key, default in (("beta", 1.0), ("threshold", None)):
        v = np.asarray(p.get(key, default), np.float32)
        if len(shape) == 3 and v.ndim:  # per channel (C, 1, 1, 1) -> (C, 1, 1)
            v = v.reshape(-1, 1, 1)
        out.append(np.broadcast_to(v, shape).astype(np.float32))
    return out[0], out[1]


# ---- export -----------------------------------------------------------------------------------


def _spiking_node(name: str, beta: np.ndarray, theta: np.ndarray, dt: float, logit=None):
    zeros = np.zeros(beta.shape, np.float64)
    if np.all(beta == 1.0):
        return nir.IF(r=np.full(beta.shape, 1.0 / dt), v_threshold=theta, v_reset=zeros)
    if np.any(beta == 1.0):
        raise NIRError(f"{name}: some neurons have beta = 1 (no leak) and others not; NIR's LIF "
                       "needs tau = dt / (1 - beta) finite")
    with np.errstate(over="ignore"):  # (a dt of 1e308: inf, refused by the export)
        tau = dt / (1.0 - beta.astype(np.float64))
    meta = {} if logit is None else {"beta_logit": logit}
    return nir.LIF(tau=tau, r=tau / dt, v_leak=zeros, v_threshold=theta, v_reset=zeros,
                   metadata=meta)


def _node(model: Any, step: dict[str, Any], dt: float) -> nir.NIRNode:
    op, name = step["op"], step["name"]
    if op == "conv":
        conv = getattr(model, name)
        k = step["k"]
        if model.padding == "VALID":
            padding: Any = 0
        else:  # ours pads (k-1)//2 before and k//2 after, like PyTorch's "same"
            padding = (k - 1) // 2 if k % 2 else "same"
        return nir.Conv2d(input_shape=step["in_shape"][1:],
                          weight=np.asarray(conv.kernel[...], np.float32).transpose(3, 2, 0, 1),
                          stride=1, padding=padding, dilation=1, groups=1,
                          bias=np.asarray(conv.bias[...], np.float32))
    if op == "pool":
        k = step["k"]
        return nir.AvgPool2d(kernel_size=np.array([k, k]), stride=np.array([k, k]),
                             padding=np.array([0, 0]))
    if op == "flatten":
        return nir.Flatten(input_type={"input": np.array(step["shape"])}, start_dim=0, end_dim=-1)
    if op == "affine":
        lin = _module(model, name)
        w = np.asarray(lin.kernel[...], np.float32).T
        if step["chw"] is not None:
            w = w[:, _chw_to_ours(step["chw"])]
        return nir.Affine(weight=w, bias=np.asarray(lin.bias[...], np.float32))
    if op == "readout" and model.readout.mode != "spike_count":
        n, beta = step["shape"], float(model.readout.beta)
        if beta == 1.0:
            return nir.I(r=np.full(n, 1.0 / dt))
        tau = np.full(n, dt / (1.0 - beta))
        return nir.LI(tau=tau, r=tau / dt, v_leak=np.zeros(n))
    layer = _module(model, name if op == "neuron" else "out_neurons")
    _neuron_cell(layer, name)
    beta, theta = _neuron_params(layer, step["shape"])
    logit = None
    if layer.learn_beta:
        logit = np.asarray(layer.beta_logit[...], np.float32)
        logit = np.broadcast_to(logit.reshape(-1, 1, 1) if len(step["shape"]) == 3 else logit,
                                step["shape"]).copy()
    return _spiking_node(name, beta, theta, dt, logit)


def to_nir(model_or_params: Any, cfg: Any = None, *, dt: float | None = None) -> nir.NIRGraph:
    """The model (or its parameters, with the run's ``cfg``) as a type-checked NIR graph.

    Args:
      model_or_params: an ``mlp``, ``recurrent`` or ``conv`` model, or the parameters of one
        (then ``cfg``, the run's config, builds the model).
      cfg: the run's config (optional with a model): its ``T``, encoder and model name go into
        the graph metadata.
      dt: the time step of the Euler mapping (default: the neuron's ``dt``, else 1).

    Raises:
      NIRError: for what NIR cannot represent, naming every affected layer and the option to
        change (all of them at once).
    """
    require_nir()
    model = model_or_params
    if not isinstance(model, nnx.Module):
        if cfg is None:
            raise TypeError("to_nir(params, cfg): parameters need the run's config")
        from snntrain import experiment  # lazy: JAX-heavy, and only for parameters

        model = experiment.build(cfg).model(model_or_params)
    if len(found := _refusals(model)) > 1:  # all at once: one attempt instead of three
        raise NIRError(f"{len(found)} things NIR cannot represent: " + "; ".join(found))
    if found:  # the same wording, every affected layer named
        raise NIRError(found[0])
    plan = _plan(model)
    cell = next(getattr(model, s["name"]).neuron for s in plan if s["op"] == "neuron")
    dt = float(dt if dt is not None else getattr(cell, "dt", 1.0))
    if not (math.isfinite(dt) and dt > 0):
        raise NIRError(f"dt={dt} is invalid: must be > 0")
    first = plan[0]
    in_shape = first["in_shape"] if first["op"] == "conv" else (model.fc0.in_features,)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array(in_shape))}
    edges, prev = [], "input"
    for step in plan:
        nodes[step["name"]] = _node(model, step, dt)
        edges.append((prev, step["name"]))
        prev = step["name"]
        if step.get("rec"):
            rec = getattr(model, step["rec"])
            nodes[step["rec"]] = nir.Linear(weight=np.asarray(rec.kernel[...], np.float32).T)
            edges += [(step["name"], step["rec"]), (step["rec"], step["name"])]
    n_out = plan[-1]["shape"]
    nodes["output"] = nir.Output(output_type=np.array(n_out))
    edges.append((prev, "output"))
    meta: dict[str, Any] = {"source": "snntrain", "dt": dt, "model": type(model).__name__,
                            "readout": model.readout.mode,
                            "readout_scale": float(model.readout.scale),
                            "input_layout": "C,H,W" if first["op"] == "conv" else "H*W*C flat"}
    if cfg is not None:
        meta.update({"T": int(cfg.T), "encoder": str(cfg.encoder.name)})
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)


# ---- import -----------------------------------------------------------------------------------


def _same_readout(meta: dict, model: Any) -> None:
    """Our own graph's readout (its metadata: NIR has no node for how the output is read over
    time) must be the model's: ``spike_count`` with ``readout_scale`` 3 loaded into a model of
    scale 1, or ``membrane_max`` into ``membrane_mean``, trained another network silently."""
    readout = getattr(model, "readout", None)
    if meta.get("source") != "snntrain" or readout is None or "readout" not in meta:
        return
    mode, scale = str(meta["readout"]), meta.get("readout_scale")
    same_scale = mode != "spike_count" or scale is None or math.isclose(
        float(scale), readout.scale, rel_tol=1e-6)
    if mode != readout.mode or not same_scale:
        given = f"model.readout={mode}" + (f" model.readout_scale={float(scale):g}"
                                           if mode == "spike_count" and scale is not None else "")
        raise NIRError(f"the graph was exported with {given}, this model has "
                       f"model.readout={readout.mode}"
                       + (f" model.readout_scale={readout.scale:g}" if readout.mode ==
                          "spike_count" else "") + f": set {given}")


def _flat_graph(graph: nir.NIRGraph) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Nodes and edges with every subgraph (e.g. a spyx / snnTorch RNN block) inlined."""
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, list[str]] = {}
    exit_: dict[str, list[str]] = {}
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.NIRGraph):
            nodes[name] = node
            continue
        inner, inner_edges = _flat_graph(node)
        ins = {n for n, v in inner.items() if isinstance(v, nir.Input)}
        outs = {n for n, v in inner.items() if isinstance(v, nir.Output)}
        nodes.update({f"{name}/{n}": v for n, v in inner.items() if n not in ins | outs})
        edges += [(f"{name}/{a}", f"{name}/{b}") for a, b in inner_edges
                  if a not in ins and b not in outs]
        entry[name] = [f"{name}/{b}" for a, b in inner_edges if a in ins]
        exit_[name] = [f"{name}/{a}" for a, b in inner_edges if b in outs]
    for a, b in graph.edges:
        edges += [(a2, b2) for a2 in exit_.get(a, [a]) for b2 in entry.get(b, [b])]
    return nodes, edges


def _chain(graph: nir.NIRGraph) -> tuple[list[tuple[str, Any]], dict[str, list[tuple[str, Any]]]]:
    """The graph's nodes from input to output, and the recurrent weights ``(name, node)`` that
    close a cycle on each node (``lif → rec → lif``)."""
    nodes, edges = _flat_graph(graph)
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if (missing := next((n for n in (a, b) if n not in nodes), None)) is not None:
            raise NIRError(f"the NIR graph's edge {a!r} -> {b!r} names node {missing!r}, which "
                           "the graph does not have")
        succ[a].append(b)
        pred[b].append(a)
    rec = {w: succ[w][0] for w, v in nodes.items()
           if isinstance(v, (nir.Affine, nir.Linear)) and len(succ[w]) == 1 and succ[w] == pred[w]}
    rec_of: dict[str, list[tuple[str, Any]]] = {}
    for w, target in rec.items():
        rec_of.setdefault(target, []).append((w, nodes[w]))
    starts = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
    if len(starts) != 1:
        raise NIRError(f"the NIR graph has {len(starts)} input nodes; snntrain models have one")
    chain, cur = [], starts[0]
    while True:
        nxt = [s for s in succ[cur] if s not in rec]
        if len(nxt) != 1:
            raise NIRError(f"the NIR graph branches or ends at node {cur!r}; snntrain models are "
                           "chains from input to output")
        cur = nxt[0]
        if isinstance(nodes[cur], nir.Output):
            break
        chain.append((cur, nodes[cur]))
        if len(chain) > len(nodes):
            raise NIRError("the NIR graph has a cycle that is not a recurrent weight")
    return chain, rec_of


def _set(param: Any, value: np.ndarray, axes: tuple[int, ...] | None = None) -> None:
    """``param[...] = value``; ``value`` is the graph's weight transposed by ``axes`` (a
    wrong shape is said in the graph's layout: it was quoted in ours, (4, 6) for a (6, 4))."""
    old = param[...]
    value = np.asarray(value)
    if value.shape != old.shape:
        if axes is None:
            raise NIRError(f"shape {value.shape} does not fit the model's {old.shape}")
        back = np.argsort(axes)  # our layout -> the graph's
        graph, model = (tuple(sh[i] for i in back) for sh in (value.shape, old.shape))
        raise NIRError(f"the graph's weight has shape {graph}, the model needs {model} (NIR's "
                       f"layout: {'out x in' if len(axes) == 2 else 'out x in x H x W'})")
    with np.errstate(over="ignore"):
        cast = np.asarray(value, np.dtype(old.dtype))
    if not np.all(ok := np.isfinite(cast)):  # (a NaN weight trained as "diverged at step 1")
        f32 = " in float32" if np.all(np.isfinite(value)) else ""
        raise NIRError(f"the graph's values are not all finite ({int((~ok).sum())} of "
                       f"{cast.size} are NaN or infinite{f32})")
    param[...] = jnp.asarray(cast)


def _per_channel(name: str, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A NIR neuron parameter in our layout: ``N`` for dense, per channel for conv layers."""
    a = np.asarray(a, np.float64)
    try:
        a = np.broadcast_to(a, shape)
    except ValueError:
        raise NIRError(f"{name}: the graph's layer has shape {tuple(a.shape)}, the model's "
                       f"{tuple(shape)}" + (" (C, H, W: is the graph for another input size?)"
                                            if len(shape) == 3 else "")) from None
    if len(shape) == 3:
        if not np.all(a == a[:, :1, :1]):
            raise NIRError(f"{name}: parameters vary over space; snntrain's conv neurons have "
                           "one value per channel")
        return a[:, 0, 0]
    return a


def _dynamics(name: str, node: Any, shape: tuple[int, ...], dt: float, dt_from: str = ""):
    """``(beta, gain, leak_bias, threshold or None)`` of a NIR neuron node in our discrete
    form ``v_t = beta v_{t-1} + gain I_t + leak_bias``; ``dt_from`` says where ``dt`` came from
    (for the error of a ``beta`` outside ``(0, 1]``)."""
    if isinstance(node, (nir.LIF, nir.LI)):
        tau = _per_channel(name, node.tau, shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            beta = 1.0 - dt / tau
        if bad := np.flatnonzero(~((beta > 0) & (beta <= 1))).tolist():
            i = bad[0]
            raise NIRError(
                f"{name}: tau = {tau.ravel()[i]:g} with dt = {dt:g} ({dt_from}) gives beta = 1 - "
                f"dt/tau = {beta.ravel()[i]:g} ({len(bad)} of {beta.size} outside (0, 1]); pass "
                "the graph's dt (from_nir(..., dt=...), trainer.init_from_dt; snnTorch's graphs "
                "have dt = 1e-4)")
        gain = dt * _per_channel(name, node.r, shape) / tau
        leak = dt * _per_channel(name, node.v_leak, shape) / tau
    elif isinstance(node, (nir.IF, nir.I)):
        beta = np.ones(shape[:1] if len(shape) == 3 else shape)
        gain, leak = dt * _per_channel(name, node.r, shape), np.zeros_like(beta)
    else:
        raise NIRError(f"{name}: NIR node {type(node).__name__} has no snntrain neuron "
                       "(supported: LIF, IF, LI, I)")
    theta = None
    if isinstance(node, (nir.LIF, nir.IF)):
        if np.any(np.asarray(node.v_reset) != 0):
            raise NIRError(f"{name}: v_reset != 0; snntrain's zero reset needs v_reset = 0")
        theta = _per_channel(name, node.v_threshold, shape)
        if not np.all(np.isfinite(theta) & (theta > 0)):  # (as model.neuron.threshold)
            bad = theta[~(np.isfinite(theta) & (theta > 0))]
            raise NIRError(f"{name}: the graph's threshold {_first(bad)} is invalid: a "
                           "threshold must be finite and > 0")
    for what, a in (("tau", getattr(node, "tau", 1.0)), ("r", node.r),
                    ("v_leak", getattr(node, "v_leak", 0.0))):
        if not np.all(np.isfinite(np.asarray(a, np.float64))):
            raise NIRError(f"{name}: the graph's {what} is not all finite")
    return beta, gain, leak, theta


def _scale_feeds(model: Any, feeds: list[str], gain: np.ndarray, leak: np.ndarray) -> None:
    """Fold a neuron's input gain and leak into the synapses feeding it (per output unit)."""
    for j, syn in enumerate(feeds):
        mod = _module(model, syn)
        kernel = np.asarray(mod.kernel[...], np.float64)
        _set(mod.kernel, kernel * gain)  # output units are the last axis (HWIO, in x out)
        if j == 0:  # the feed-forward synapse carries the bias (rec has none)
            _set(mod.bias, np.asarray(mod.bias[...], np.float64) * gain + leak)


def _load_neuron(model: Any, step: dict, node: Any, layer: Any, dt: float,
                 dt_from: str = "") -> None:
    name = step["name"]
    beta, gain, leak, theta = _dynamics(name, node, step["shape"], dt, dt_from)
    _scale_feeds(model, step["feeds"], gain, leak)
    if layer is None:  # the membrane readout: a fixed, shared decay
        if theta is not None:
            raise NIRError(f"{name}: the graph's output neurons spike; use "
                           "model.readout=spike_count")
        b = float(model.readout.beta)
        if not np.allclose(beta, b, rtol=1e-6, atol=0):
            raise NIRError(f"{name}: the graph's output decay {_first(beta)} differs from "
                           f"model.readout_beta={b}; set model.readout_beta to it")
        return
    cell = _neuron_cell(layer, name)
    if theta is None:
        raise NIRError(f"{name}: the graph's layer does not spike ({type(node).__name__}); "
                       "a non-spiking output layer is a membrane readout: "
                       "model.readout=membrane_mean (or membrane_max, membrane_last)")
    defaults = cell.default_params()
    if layer.learn_beta:
        hint = node.metadata.get("beta_logit") if isinstance(node.metadata, dict) else None
        logit = np.log(beta) - np.log1p(-beta) if np.all(beta < 1) else None
        if hint is not None:
            hint = _per_channel(name, hint, step["shape"]).astype(np.float32)
            if np.array_equal(jax.nn.sigmoid(jnp.asarray(hint)), beta.astype(np.float32)):
                logit = hint  # our own export: the exact stored parameter
        if logit is None:
            raise NIRError(f"{name}: beta = 1 cannot be learned; use model.learn_beta=false")
        _set(layer.beta_logit, logit)
    elif not np.allclose(beta, defaults.get("beta", 1.0), rtol=1e-6, atol=0):
        fix = ("set model.neuron.beta or model.learn_beta=true" if "beta" in defaults
               else "use model/neuron=lif (the IF neuron has no beta)")
        raise NIRError(f"{name}: the graph's beta {_first(beta)} differs from the model's "
                       f"fixed {defaults.get('beta', 1.0)}; {fix}")
    if layer.learn_threshold:
        _set(layer.threshold, theta)
    elif not np.allclose(theta, defaults["threshold"], rtol=1e-6, atol=0):
        raise NIRError(f"{name}: the graph's threshold {_first(theta)} differs from the "
                       f"model's {defaults['threshold']}; set model.neuron.threshold or "
                       "model.learn_threshold=true")


def _matches(step: dict, node: Any) -> bool:
    kinds = {"conv": (nir.Conv2d,), "pool": (nir.AvgPool2d, nir.SumPool2d),
             "flatten": (nir.Flatten,), "affine": (nir.Affine, nir.Linear),
             "neuron": (nir.LIF, nir.IF), "readout": (nir.LI, nir.I, nir.LIF, nir.IF)}
    return isinstance(node, kinds[step["op"]])


def from_nir(graph: nir.NIRGraph | str | Path, model: nnx.Module, *,
             dt: float | None = None) -> nnx.State:
    """The parameters of ``model`` (its ``nnx.Param`` state, as ``nnx.split(model, nnx.Param,
    ...)[1]``) loaded from a NIR graph (or ``.nir`` file) of the same shape.

    The graph may come from another library: node names do not matter, ``Linear`` stands for
    an ``Affine`` without bias, ``SumPool2d`` for ``AvgPool2d`` (its window size is folded into
    the convolution), RNN subgraphs are inlined, a recurrent ``Affine``'s bias is added to the
    layer's input bias (a constant current, the same at every step), and a leading ``Flatten``
    of ``(C, H, W)`` images is allowed before an MLP. ``dt`` (default: the graph's metadata,
    else 1) maps NIR's time constants back to ``beta = 1 - dt / tau``, which must lie in
    ``(0, 1]``. The model's fixed options must agree with the graph (a fixed ``beta`` or
    threshold, ``readout_beta``, ``reset=zero``), else an error says which option to set.
    ``model`` is not modified.
    """
    return _from_nir(graph, model, dt, "the dt argument")


def _read(path: str | Path) -> nir.NIRGraph:
    """``nir.read(path)``; an HDF5 file that is not a NIR graph (h5py's KeyError for a missing
    group) is an :class:`NIRError` (without the path). Unreadable files raise OSError."""
    try:
        return nir.read(str(path))
    except KeyError as e:
        why = e.args[0] if e.args else e
        raise NIRError(f"not a NIR graph (an HDF5 file without NIR's groups: {why}); NIR graphs "
                       "are written by nir.write or python -m snntrain.export") from None


def _from_nir(graph: Any, model: Any, dt: float | None, dt_from: str) -> nnx.State:
    """:func:`from_nir`; ``dt_from`` names where a given ``dt`` came from (for its errors)."""
    require_nir()
    if isinstance(graph, (str, Path)):
        try:
            graph = _read(graph)
        except NIRError as e:
            raise NIRError(f"{graph}: {e}") from None
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"from_nir reads a nir.NIRGraph or the path of a .nir file, got "
                        f"{type(graph).__name__}")
    if not isinstance(model, nnx.Module):
        raise TypeError(f"from_nir loads into an snntrain model (an nnx.Module of the same "
                        f"shape as the graph), got {type(model).__name__}")
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    if dt is None:
        dt_from = "the graph's metadata" if "dt" in meta else (
            "the default 1: the graph's metadata has no dt")
        dt = meta.get("dt", 1.0)
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise NIRError(f"dt = {dt!r} ({dt_from}) is not a number") from None
    if not (math.isfinite(dt) and dt > 0):
        raise NIRError(f"dt = {dt:g} ({dt_from}) is invalid: must be > 0")
    _same_readout(meta, model)
    model = nnx.clone(model)
    plan, (chain, rec_of) = _plan(model), _chain(graph)
    names = [f"{n} ({type(v).__name__})" for n, v in chain]
    if (isinstance(model, models.MLP) and chain and isinstance(chain[0][1], nir.Flatten)
            and plan[0]["op"] == "affine"):
        shape = tuple(int(d) for d in np.asarray(chain[0][1].input_type["input"]))
        plan[0] = {**plan[0], "chw": shape if len(shape) == 3 else None}
        chain = chain[1:]
    if len(chain) != len(plan) or not all(_matches(s, n) for s, (_, n) in zip(plan, chain,
                                                                              strict=True)):
        want = [f"{s['name']} ({s['op']})" for s in plan]
        raise NIRError(f"the NIR graph's layers [{', '.join(names)}] do not match the model's "
                       f"[{', '.join(want)}]")
    loaded = {gname for gname, _ in chain}
    for target, recs in rec_of.items():  # e.g. on the input or a leading Flatten
        if target not in loaded:
            raise NIRError(f"NIR node {target}: {_rec_elsewhere(recs)}")
    for step, (gname, node) in zip(plan, chain, strict=True):
        op, name = step["op"], step["name"]
        try:
            recs = rec_of.get(gname, [])
            if recs and op != "neuron":  # the readout, an Affine, a conv, a pooling
                raise NIRError(f"{name} (NIR node {gname}): {_rec_elsewhere(recs)}")
            if op == "conv":
                _load_conv(model, step, node)
            elif op == "pool":
                _load_pool(model, step, node)
            elif op == "affine":
                lin = _module(model, name)
                w = np.asarray(node.weight, np.float64)
                if step["chw"] is not None:
                    if w.ndim != 2 or w.shape[1] != math.prod(step["chw"]):
                        raise NIRError(f"{name}: the graph's weight {tuple(w.shape)} does not "
                                       f"take the flattened {step['chw']} (C, H, W) input")
                    w_ours = np.empty_like(w)
                    w_ours[:, _chw_to_ours(step["chw"])] = w
                    w = w_ours
                _set(lin.kernel, w.T, (1, 0))
                bias = node.bias if isinstance(node, nir.Affine) else np.zeros(w.shape[0])
                _set(lin.bias, bias)
            elif op in ("neuron", "readout"):
                if op == "neuron":
                    _load_rec(model, step, gname, recs)
                    layer = getattr(model, name)
                else:
                    layer = model.readout.neurons if model.readout.mode == "spike_count" else None
                _load_neuron(model, step, node, layer, dt, dt_from)
        except NIRError as e:
            msg = str(e)
            raise NIRError(msg if msg.startswith(name) else f"{name} (NIR node {gname}): {msg}") \
                from None
    return nnx.state(model, nnx.Param)


def _rec_elsewhere(recs: list[tuple[str, Any]]) -> str:
    """The error of recurrent weights on a node that is not a hidden spiking layer."""
    return (f"the graph has a recurrent weight on this node (NIR node "
            f"{', '.join(w for w, _ in recs)}); snntrain's recurrent weights feed hidden spiking "
            "layers only (model=recurrent), it cannot load this graph")


def _load_rec(model: Any, step: dict, gname: str, recs: list[tuple[str, Any]]) -> None:
    """The recurrent weight ``rec<i>`` of a hidden layer (or the error of a missing or extra
    one). A recurrent ``Affine``'s bias is a constant input current, the same at every step
    (``W s_{t-1} + b`` with ``s_{-1} = 0``), exactly as the feed-forward bias: it is added
    to ``fc<i>``'s bias (before the neuron's input gain scales both)."""
    name = step["name"]
    if len(recs) > 1:
        raise NIRError(f"{name}: the graph has {len(recs)} recurrent weights on this layer "
                       f"(NIR nodes {', '.join(w for w, _ in recs)}); snntrain's recurrent "
                       "layer has one")
    if recs and isinstance(model, models.ConvSNN):
        raise NIRError(f"{name}: the graph has a recurrent weight (NIR node {recs[0][0]}); "
                       "snntrain's conv model has none (model=recurrent is an MLP)")
    if bool(recs) != (step.get("rec") is not None):
        have = "has a" if recs else "has no"
        raise NIRError(f"{name}: the graph {have} recurrent weight; use "
                       f"model={'recurrent' if recs else 'mlp'}")
    if not recs:
        return
    rec = recs[0][1]
    w = np.asarray(rec.weight, np.float64)
    _set(getattr(model, step["rec"]).kernel, w.T, (1, 0))
    if isinstance(rec, nir.Affine) and rec.bias is not None:
        fc = _module(model, step["feeds"][0])
        old = np.asarray(fc.bias[...], np.float64)
        b = np.asarray(rec.bias, np.float64)
        if b.shape not in ((), (1,), old.shape):
            raise NIRError(f"{name}: the recurrent weight's bias (NIR node {recs[0][0]}) has "
                           f"shape {b.shape}, the layer {old.shape}")
        _set(fc.bias, old + b)


def _load_conv(model: Any, step: dict, node: nir.Conv2d) -> None:
    name, k = step["name"], step["k"]
    w = np.asarray(node.weight)
    stride, dilation = np.atleast_1d(node.stride), np.atleast_1d(node.dilation)
    if np.any(stride != 1) or np.any(dilation != 1) or int(node.groups) != 1:
        raise NIRError(f"{name}: only stride 1, dilation 1, groups 1 convolutions load")
    if w.ndim == 4 and tuple(w.shape[2:]) != (k, k):  # before the padding, which follows k
        raise NIRError(f"{name}: the graph's kernel is {w.shape[2]}x{w.shape[3]}, the model's "
                       f"{k}x{k}; set model.kernel_size to the graph's")
    pad = node.padding
    pad = pad.decode() if isinstance(pad, bytes) else pad
    if isinstance(pad, str):
        same = pad.lower() == "same"
    else:
        p = np.atleast_1d(np.asarray(pad))
        same = bool(np.all(p == (k - 1) // 2)) and k % 2 == 1 and k > 1
        if not same and np.any(p != 0):
            raise NIRError(f"{name}: padding {p.tolist()} is neither SAME nor VALID")
    if same != (model.padding == "SAME") and k > 1:
        raise NIRError(f"{name}: the graph's padding is {'SAME' if same else 'VALID'}; set "
                       f"model.padding={'SAME' if same else 'VALID'}")
    conv = getattr(model, name)
    _set(conv.kernel, w.transpose(2, 3, 1, 0), (2, 3, 1, 0))
    _set(conv.bias, np.zeros(w.shape[0]) if node.bias is None else node.bias)


def _load_pool(model: Any, step: dict, node: Any) -> None:
    k = step["k"]
    size, stride = np.atleast_1d(node.kernel_size), np.atleast_1d(node.stride)
    if np.any(size != k) or np.any(stride != k) or np.any(np.atleast_1d(node.padding) != 0):
        raise NIRError(f"{step['name']}: pooling {size.tolist()} / stride {stride.tolist()} "
                       f"does not match model.pool={k} (non-overlapping, no padding)")
    if model.pool_mode != "avg":
        raise NIRError(f"{step['name']}: the graph pools by sum/average; use model.pool_mode=avg")
    if isinstance(node, nir.SumPool2d):  # sum = k^2 * average: fold into what is pooled
        if step["feeds"] is None:
            raise NIRError(f"{step['name']}: sum pooling of spikes loads only before a neuron "
                           "(model.pool_before_neuron=true)")
        conv = getattr(model, step["feeds"])
        _set(conv.kernel, np.asarray(conv.kernel[...], np.float64) * k * k)
        _set(conv.bias, np.asarray(conv.bias[...], np.float64) * k * k)


def load(path: str | Path, model: nnx.Module, *, dt: float | None = None) -> nnx.State:
    """``from_nir(nir.read(path), model)``: what ``trainer.init_from=<file>.nir`` calls."""
    return from_nir(Path(path), model, dt=dt)


def _trainer_key(trainer: Any, key: str) -> Any:
    """``trainer.<key>`` of the typed config (a dataclass) or a mapping, None if it has none."""
    if isinstance(trainer, dict) or hasattr(trainer, "keys"):
        return trainer.get(key)
    return getattr(trainer, key, None)


@contextlib.contextmanager
def _init_from_errors(path: Any) -> Iterator[None]:
    """What reading ``trainer.init_from`` raises, as one-line :class:`ConfigError` s naming
    the key."""
    try:
        yield
    except OSError as e:  # h5py: "Unable to synchronously open file (file signature not found)"
        raise ConfigError(f"trainer.init_from={path}: not a readable NIR file (NIR graphs are "
                          f"HDF5, written by nir.write or python -m snntrain.export): {e}"
                          ) from None
    except (ImportError, ValueError) as e:  # NIRError too (a ConfigError, a ValueError)
        raise ConfigError(f"trainer.init_from={path}: {e}") from None


def nir_params(exp: Any) -> Any | None:
    """An experiment's model parameters read from the NIR graph ``trainer.init_from`` (None
    without one), with ``trainer.init_from_dt`` as the graph's ``dt`` when set (default: the
    graph's metadata, else 1); a file that is not NIR, or a graph that does not fit the model,
    is a one-line :class:`ConfigError` naming the key."""
    path = _trainer_key(exp.run.trainer, "init_from")
    if not path:
        return None
    dt = _trainer_key(exp.run.trainer, "init_from_dt")
    model = exp.model()
    with _init_from_errors(path):
        require_nir()
        nnx.update(model, _from_nir(_read(path), model, dt, "trainer.init_from_dt"))
    return nnx.state(model, nnx.Param)


def _graph_io(graph: Any, conv: bool) -> tuple[tuple[int, ...], int] | None:
    """The input shape and class count of a model built for ``graph`` (``conv``: ``H x W x C``
    from the graph's ``(C, H, W)`` input; else the first dense layer's inputs), None if the
    graph does not say."""
    chain, _ = _chain(graph)
    dense = [n for _, n in chain if isinstance(n, (nir.Affine, nir.Linear))]
    if not dense:
        return None
    n_classes = int(np.asarray(dense[-1].weight).shape[0])
    if not conv:
        return (int(np.asarray(dense[0].weight).shape[-1]),), n_classes
    # the first convolution's own input: its (H, W) and its weight's input channels (the
    # Input node's shape may be in another library's layout)
    first = next((n for _, n in chain if isinstance(n, nir.Conv2d)), None)
    if first is None:  # (a dense graph for a conv model: refused by its layers, any input)
        return (28, 28, 1), n_classes
    if first.input_shape is None or np.asarray(first.weight).ndim != 4:
        return None
    h, w = (int(d) for d in np.asarray(first.input_shape).reshape(-1)[:2])
    return (h, w, int(np.asarray(first.weight).shape[1])), n_classes


def check_init_from(run: Any, in_shape: tuple[int, ...] | None = None) -> None:
    """``trainer.init_from`` at start-up, before the run directory exists: the graph read and
    loaded into the model built for the data's ``in_shape`` (where it is known before the data
    is loaded; else the graph's own input size, and the data's shape is checked against it
    when the data is loaded) and the graph's class count. Before, a graph whose layers, sizes
    or fixed beta did not fit the model was refused after the run directory existed."""
    path, dt = run.trainer.init_from, run.trainer.init_from_dt
    if not path:
        return
    with _init_from_errors(path):
        require_nir()
        graph = _read(path)
        if (io := _graph_io(graph, run.model["name"] == "conv")) is None:
            return
        try:
            model = models.from_config(run.model, in_shape or io[0], io[1], 0)
        except Exception:  # noqa: BLE001 - a graph too small for the model: said at the load
            return
        _from_nir(graph, model, dt, "trainer.init_from_dt")
