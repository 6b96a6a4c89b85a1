"""Synaptic operations, activation sparsity, neuron updates and an energy estimate.

What an evaluated SNN costs, per example, in NeuroBench's definitions (Yik et al. 2025), counted
from the spikes a forward pass already computes (no second pass). Every model records, per
synaptic layer of ``model.synapses()`` (``fc0``, ``rec0``, ``conv0``, ..., ``readout``), the
number of nonzero inputs per example summed over time (``aux["in_counts"]``; per input pixel
for convolutions, whose fan-out is not uniform),
how many times the layer ran (``aux["in_steps"]``: ``T``, or 1 for the ``direct`` input, whose
first layer runs once) and whether all its inputs were 0/1 (``aux["in_binary"]``). Because a
synaptic operation is linear in its inputs, the counts are exact:

* **effective ACs** (accumulates, binary inputs: spikes): ``sum_f count_f * fanout_f``, each
  nonzero input times the number of synapses leaving it;
* **effective MACs** (multiply-accumulates): the same for non-binary inputs (an analog image
  from the ``direct`` encoder, averaged spikes after ``avg`` pooling, event counts);
* **dense**: every synapse at every evaluation, zero inputs included (NeuroBench's ``Dense``:
  the SNN on hardware that does not exploit sparsity); **ann_macs**: every synapse once, the
  MACs of one forward pass of a non-spiking network of the same shape;
* **spikes** per hidden spiking layer, **activation sparsity** ``1 - spikes / (neurons * T)``
  (NeuroBench's ``ActivationSparsity``: zero activations over all activations of the spiking
  layers; the output layer is not included), and **neuron updates** ``neurons * T`` per layer,
  readout included (clock-driven: every membrane is updated at every step; NeuroBench's
  ``MembraneUpdates`` counts only the updates that change the membrane).

Fan-out: a dense layer's input reaches all ``n_out`` outputs. A stride-1 ``k x k`` convolution
input pixel ``(y, x)`` reaches ``n_out * f_H(y) * f_W(x)`` outputs, where ``f_H(y)`` counts the
output rows ``Y`` whose window ``[Y - low, Y - low + k)`` contains ``y`` (``low = (k-1)//2``
for ``SAME``, 0 for ``VALID``): fewer at the borders, where part of the window is padding. When
the pooling follows the convolution directly (``pool_before_neuron``), only the conv outputs
inside whole pooling windows are needed, and only those are counted; pooling itself, the bias
and the norm are not synaptic operations (as in NeuroBench). Weights that are exactly zero are
counted like any other synapse (NeuroBench skips them; no difference unless the network is
pruned).

Energy: ``E = ACs * ac_pj + MACs * mac_pj + updates * update_pj`` with, by default, a 32-bit
float add (0.9 pJ) per AC and a 32-bit float multiply + add (3.7 + 0.9 = 4.6 pJ) per MAC in
45 nm CMOS (Horowitz 2014), and no cost per neuron update (``update_pj = 0``, the usual
synaptic-only estimate). It counts arithmetic only: memory access, which often dominates
(a DRAM access costs 1.3-2.6 nJ in the same table), and data movement are ignored, so it is a
lower bound that compares architectures on equal terms, not a hardware measurement.

Use: ``eval_sums(aux, mask_B, model.synapses())`` inside the jitted evaluation step (masked
sums over the batch, to be summed over batches), then ``finalize(totals, n_examples, energy)``.

References:
  Yik et al., "The NeuroBench framework for benchmarking neuromorphic computing algorithms and
  systems", Nature Communications 16, 1545 (2025) (``SynapticOperations``,
  ``ActivationSparsity``, ``MembraneUpdates`` in github.com/NeuroBench/neurobench).
  Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from snntrain.errors import ConfigError, finite_float64

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Energy:
    """Energy per operation in picojoules (``metrics.energy`` in the config).

    Defaults: 45 nm, 32-bit float (Horowitz, ISSCC 2014): add 0.9 pJ, multiply 3.7 pJ.
    """

    ac_pj: float = 0.9  # one accumulate (float add)
    mac_pj: float = 4.6  # one multiply-accumulate (float multiply + add)
    update_pj: float = 0.0  # one neuron-state update (0: synaptic energy only)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not (finite_float64(v) and v >= 0):
                raise ConfigError(
                    f"metrics.energy.{f.name}={v!r} is invalid: must be a finite number >= 0"
                )


def energy_from_config(cfg: Mapping[str, Any] | Energy | None) -> Energy:
    """``metrics.energy`` (a mapping of ``ac_pj``, ``mac_pj``, ``update_pj``) as :class:`Energy`;
    ``None`` gives the defaults. An unknown key is a :class:`ConfigError`."""
    if cfg is None:
        return Energy()
    if isinstance(cfg, Energy):
        return cfg
    valid = [f.name for f in dataclasses.fields(Energy)]
    for key in cfg:
        if key not in valid:
            raise ConfigError(f"metrics.energy.{key} is not a key; valid: {', '.join(valid)}")
    return Energy(**{k: cfg[k] for k in cfg})


def _axis_fanout(n: int, k: int, same: bool, pool: int) -> np.ndarray:
    """``f(y)``: how many of the needed output positions of a stride-1 ``k``-tap correlation
    along an axis of ``n`` inputs read input ``y``."""
    n_out = n if same else n - k + 1
    n_out = n_out // pool * pool  # outputs outside whole pooling windows are not needed
    low = (k - 1) // 2 if same else 0
    d = np.arange(n)[:, None] - np.arange(n_out)[None, :] + low  # kernel tap reading y for Y
    return ((d >= 0) & (d < k)).sum(axis=1)


def fanout(syn: Mapping[str, Any]) -> np.ndarray:
    """Synapses leaving each input of the layer described by ``syn`` (shape ``in_shape``)."""
    shape, n_out = tuple(syn["in_shape"]), int(syn["n_out"])
    if syn["kind"] == "dense":
        return np.full(shape, n_out, np.int64)
    if syn["kind"] == "conv":
        c, h, w = shape
        k, same, pool = int(syn["kernel"]), syn["padding"] == "SAME", int(syn.get("pool", 1))
        f_h, f_w = _axis_fanout(h, k, same, pool), _axis_fanout(w, k, same, pool)
        return np.broadcast_to(n_out * f_h[:, None] * f_w[None, :], (c, h, w)).astype(np.int64)
    raise ValueError(f"unknown synapse kind {syn['kind']!r}; valid: dense, conv")


def connections(syn: Mapping[str, Any]) -> int:
    """Number of synapses of the layer (input-output pairs that meet): its MACs in one dense
    evaluation."""
    return int(fanout(syn).sum())


def _synapses(synapses: Any) -> Sequence[Mapping[str, Any]]:
    return synapses.synapses() if hasattr(synapses, "synapses") else synapses


def eval_sums(aux: Mapping[str, Any], mask_B: Array, synapses: Any) -> dict[str, Array]:
    """Masked sums over the batch of every count (jit-friendly; add them up over batches).

    Args:
      aux: the model's ``aux`` (``in_counts``, ``in_steps``, ``in_binary``, ``spike_counts``,
        ``updates``).
      mask_B: 1 for real examples, 0 for padding rows.
      synapses: ``model.synapses()`` (static; or the model itself).

    Returns ``synops/<layer>/{acs,macs,dense}`` per synaptic layer,
    ``synops/total/{acs,macs,dense,ann_macs}``, ``spikes/<layer>`` per spiking layer and
    ``updates/<layer>`` per neuron layer (readout included), each summed over the examples.

    Every per-example quantity is a row of one ``K x B`` matrix, summed against the mask by
    one matrix-vector product and scaled by its static factor (a dense layer's fan-out, a
    layer's synapse count), and the totals are one more product with a static 0/1 matrix:
    a handful of XLA operations instead of three per metric, which cost more than the counting
    on small networks. Rows hold input counts (operations for a conv layer's per-pixel
    fan-out), so the batch sums are exact integers below ``2**24``; above it they are rounded to
    float32 (relative error below 6e-8; numerical auditor: 8,870,165,548 came out as
    8,870,165,504), and the host adds the batches in float64.
    """
    mask_B = jnp.asarray(mask_B, jnp.float32)
    rows: list[Array] = []
    scale: list[float] = []
    keys: list[str] = []

    def row(key: str, v_B: Array, factor: float = 1.0) -> None:
        keys.append(key)
        rows.append(jnp.broadcast_to(jnp.asarray(v_B, jnp.float32), mask_B.shape))
        scale.append(float(factor))

    total = {"acs": [], "macs": [], "dense": []}
    n_conn_total = 0.0
    for syn in _synapses(synapses):
        name = syn["name"]
        counts = aux["in_counts"][name].astype(jnp.float32)
        f = fanout(syn)
        if counts.ndim == 1:  # per-example totals: the fan-out must be uniform (dense)
            if f.size and not np.all(f == f.flat[0]):
                raise ValueError(f"{name}: a non-uniform fan-out needs per-input counts")
            ops_B, factor = counts, float(f.flat[0] if f.size else 0)
        else:  # per input feature: weight each by its fan-out
            f_F = jnp.asarray(f.reshape(-1), jnp.float32)
            ops_B, factor = counts.reshape(counts.shape[0], -1) @ f_F, 1.0
        acs_B = ops_B * aux["in_binary"][name].astype(jnp.float32)
        n_conn = float(connections(syn))
        for k, v_B, fac in (("acs", acs_B, factor), ("macs", ops_B - acs_B, factor),
                            ("dense", aux["in_steps"][name], n_conn)):
            total[k].append(len(keys))
            row(f"synops/{name}/{k}", v_B, fac)
        n_conn_total += n_conn
    row("synops/total/ann_macs", jnp.ones_like(mask_B), n_conn_total)
    for name, c_B in aux["spike_counts"].items():
        row(f"spikes/{name}", c_B)
    for name, u_B in aux["updates"].items():
        row(f"updates/{name}", u_B)
    sums_K = (jnp.stack(rows) @ mask_B) * jnp.asarray(scale, jnp.float32)
    select_JxK = np.zeros((3, len(keys)), np.float32)  # the totals over the layers
    for j, k in enumerate(("acs", "macs", "dense")):
        select_JxK[j, total[k]] = 1.0
    totals_J = jnp.asarray(select_JxK) @ sums_K
    out = {k: sums_K[i] for i, k in enumerate(keys)}
    out.update({f"synops/total/{k}": totals_J[j] for j, k in enumerate(("acs", "macs", "dense"))})
    return out


def finalize(
    totals: Mapping[str, float],
    n_examples: float,
    energy: Mapping[str, Any] | Energy | None = None,
) -> dict[str, float]:
    """Per-example metrics from the summed :func:`eval_sums` over a split.

    Returns every ``synops/``, ``spikes/`` and ``updates/`` key divided by ``n_examples``
    (other keys of ``totals`` are ignored), ``spikes/total``, ``updates/total``,
    ``sparsity/<layer>`` and ``sparsity/total`` (NeuroBench's activation sparsity over the
    spiking layers), ``energy_uj`` (per example, µJ), ``energy/synaptic_uj``,
    ``energy/neuron_uj`` and ``energy/ann_uj`` (``ann_macs * mac_pj``).
    """
    e = energy_from_config(energy)
    n = max(float(n_examples), 1.0)
    mine = ("synops/", "spikes/", "updates/")
    out = {k: float(v) / n for k, v in totals.items() if k.startswith(mine)}
    for kind in ("acs", "macs", "dense"):
        # the layers' sums added in float64, not eval_sums' float32 total (346800 + 3763200 +
        # 64000 dense operations per example were 4173999.955)
        layers = [float(v) for k, v in totals.items() if k.startswith("synops/")
                  and k.endswith(f"/{kind}") and k != f"synops/total/{kind}"]
        if layers:
            out[f"synops/total/{kind}"] = sum(layers) / n
    spiking = [k.split("/", 1)[1] for k in out if k.startswith("spikes/")]
    for k in spiking:
        u = out.get(f"updates/{k}", 0.0)
        out[f"sparsity/{k}"] = 1.0 - out[f"spikes/{k}"] / u if u else 0.0
    # the hidden layers' (NeuroBench leaves the output layer out): a spike_count readout has
    # its own spikes/readout and sparsity/readout, not in the totals (it was counted there)
    hidden = [k for k in spiking if k != "readout"]
    out["spikes/total"] = sum(out[f"spikes/{k}"] for k in hidden)
    out["updates/total"] = sum(v for k, v in out.items() if k.startswith("updates/"))
    u_spiking = sum(out.get(f"updates/{k}", 0.0) for k in hidden)
    out["sparsity/total"] = 1.0 - out["spikes/total"] / u_spiking if u_spiking else 0.0
    acs, macs = out.get("synops/total/acs", 0.0), out.get("synops/total/macs", 0.0)
    synaptic = acs * e.ac_pj + macs * e.mac_pj
    neuron = out["updates/total"] * e.update_pj
    out["energy/synaptic_uj"] = synaptic * 1e-6
    out["energy/neuron_uj"] = neuron * 1e-6
    out["energy_uj"] = (synaptic + neuron) * 1e-6
    out["energy/ann_uj"] = out.get("synops/total/ann_macs", 0.0) * e.mac_pj * 1e-6
    return out


def count(
    model: Any,
    x_TxBx: Any,
    spike_fn: Any,
    mask_B: Array | None = None,
    energy: Mapping[str, Any] | Energy | None = None,
) -> dict[str, float]:
    """All metrics of :func:`finalize` for one batch (a notebook helper): runs
    ``model(x_TxBx, spike_fn)`` once."""
    _, aux = model(x_TxBx, spike_fn)
    B = x_TxBx.shape[1]
    mask_B = jnp.ones((B,), jnp.float32) if mask_B is None else mask_B
    sums = eval_sums(aux, mask_B, model.synapses())
    return finalize({k: float(v) for k, v in sums.items()}, float(jnp.sum(mask_B)), energy)


__all__ = ["Energy", "energy_from_config", "fanout", "connections", "eval_sums", "finalize",
           "count"]
