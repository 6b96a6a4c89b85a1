"""Synaptic operations, sparsity, neuron updates and energy: tiny networks with hand-set weights
and known inputs whose every count is worked out by hand below, and the conv fan-out against a
brute-force count."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from snntrain import encoding, models, neurons, surrogates, synops
from snntrain.config import ConfigError

spike = surrogates.FastSigmoid(alpha=5.0)


def neuron_cfg(kind: str = "lif", **params) -> dict:
    """A neuron config dict (the key naming the neuron is ``name`` or, before, ``kind``)."""
    key = "name" if hasattr(neurons, "from_config") else "kind"
    return {key: kind, **params}


def _set(param, value) -> None:
    param[...] = jnp.asarray(value, jnp.float32)


def _metrics(model, x, mask_B, energy=None, remat=False):
    _, aux = model(x, spike, remat)
    sums = synops.eval_sums(aux, mask_B, model.synapses())
    totals = {k: float(v) for k, v in sums.items()}
    return totals, synops.finalize(totals, float(np.sum(mask_B)), energy)


# ---- dense: MLP with 3 inputs -> 2 LIF (beta 0.5, threshold 1) -> 2 readout, T = 3 ------------
#
# W_in = [[1, 0.65], [0, 0.65], [0, 0]] (input x hidden), no bias. Example 0 gets spikes
#   t0: [1, 1, 0], t1: [0, 1, 1], t2: [1, 0, 0]
# so neuron a gets currents 1, 0, 1 and fires at t0 and t2 (both resets);
# neuron b gets 1.3, 0.65, 0.65:
#   subtract: v = 1.3 (spike, v -> 0.3), 0.15 + 0.65 = 0.8, 0.4 + 0.65 = 1.05 (spike): 2 spikes
#   zero:     v = 1.3 (spike, v -> 0),   0.65,             0.325 + 0.65 = 0.975:    1 spike
# Example 1 is silent; example 2 (all ones) is padding (mask 0) and must not count.
#   fc0 ACs (example 0): 5 input spikes x fan-out 2 = 10; dense 3 steps x 6 synapses = 18
#   readout ACs: hidden spikes x 2 classes = 4 x 2 = 8 (subtract) or 3 x 2 = 6 (zero); dense 12
#   ann_macs: 6 + 4 = 10 per example; updates: 2 x 3 hidden + 2 x 3 readout = 12 per example
X_DENSE = np.zeros((3, 3, 3), np.float32)  # T x B x F
X_DENSE[:, 0] = [[1, 1, 0], [0, 1, 1], [1, 0, 0]]
X_DENSE[:, 2] = 1.0
MASK = np.array([1.0, 1.0, 0.0], np.float32)


def _mlp(reset: str, recurrent: bool = False, **kw) -> models.MLP:
    cls = models.RecurrentMLP if recurrent else models.MLP
    m = cls((3,), 2, hidden=[2], neuron=neuron_cfg(beta=0.5, threshold=1.0, reset=reset),
            rngs=nnx.Rngs(0), **kw)
    _set(m.fc0.kernel, [[1.0, 0.65], [0.0, 0.65], [0.0, 0.0]])
    _set(m.fc0.bias, [0.0, 0.0])
    if recurrent:
        _set(m.rec0.kernel, np.zeros((2, 2)))  # same spikes; the counts are structural
    return m


@pytest.mark.parametrize(("reset", "hidden_spikes"), [("subtract", 4), ("zero", 3)])
def test_dense_counts_by_hand(reset, hidden_spikes):
    totals, m = _metrics(_mlp(reset), jnp.asarray(X_DENSE), MASK)
    assert totals["synops/fc0/acs"] == 10
    assert totals["synops/fc0/macs"] == 0
    assert totals["synops/fc0/dense"] == 2 * 18  # two real examples
    assert totals["synops/readout/acs"] == hidden_spikes * 2
    assert totals["synops/readout/dense"] == 2 * 12
    assert totals["synops/total/acs"] == 10 + hidden_spikes * 2
    assert totals["synops/total/ann_macs"] == 2 * 10
    assert totals["spikes/lif0"] == hidden_spikes
    assert totals["updates/lif0"] == 2 * 6 and totals["updates/readout"] == 2 * 6
    # per example (n = 2)
    assert m["synops/total/acs"] == pytest.approx((10 + hidden_spikes * 2) / 2)
    assert m["synops/total/dense"] == pytest.approx(30.0)
    assert m["synops/total/ann_macs"] == pytest.approx(10.0)
    assert m["spikes/lif0"] == pytest.approx(hidden_spikes / 2)
    assert m["sparsity/lif0"] == pytest.approx(1 - hidden_spikes / 12)
    assert m["sparsity/total"] == pytest.approx(1 - hidden_spikes / 12)
    assert m["updates/total"] == pytest.approx(12.0)
    e_pj = (10 + hidden_spikes * 2) / 2 * 0.9  # default 0.9 pJ per AC, nothing else
    assert m["energy_uj"] == pytest.approx(e_pj * 1e-6)
    assert m["energy/ann_uj"] == pytest.approx(10 * 4.6e-6)


def test_a_spiking_readout_is_not_in_the_hidden_totals():
    """model.readout=spike_count records the output layer's spikes (spikes/readout); the
    totals are the hidden layers' as documented (NeuroBench), and they counted it."""
    m = synops.finalize({"spikes/lif0": 40.0, "spikes/readout": 10.0, "updates/lif0": 200.0,
                         "updates/readout": 50.0}, 2)
    assert m["spikes/total"] == m["spikes/lif0"] == 20.0 and m["spikes/readout"] == 5.0
    assert m["sparsity/total"] == m["sparsity/lif0"] == pytest.approx(1 - 40 / 200)
    assert m["sparsity/readout"] == pytest.approx(1 - 10 / 50)
    assert m["updates/total"] == 125.0  # every neuron update, the readout's included


@pytest.mark.slow
def test_recurrent_counts_and_chunked_remat_agree():
    """rec0 sees s_{t-1}: the hidden spikes of steps 0..T-2 (subtract: a and b fire at t0 and
    t2, so 2 spikes) x fan-out 2 = 4 ACs; dense 3 steps x 4 synapses. Running time in blocks
    of 2 steps (remat) gives the same sums, the feedback across the block boundary included."""
    model = _mlp("subtract", recurrent=True, remat_chunk=2)
    totals, _ = _metrics(model, jnp.asarray(X_DENSE), MASK)
    assert totals["synops/rec0/acs"] == 4
    assert totals["synops/rec0/dense"] == 2 * 12
    assert totals["synops/fc0/acs"] == 10 and totals["synops/readout/acs"] == 8
    chunked, _ = _metrics(model, jnp.asarray(X_DENSE), MASK, remat=True)
    assert chunked == totals
    # a spike at the last step of the first block feeds back in the second
    x = np.zeros((3, 1, 3), np.float32)
    x[1, 0] = [1, 1, 0]  # a and b fire at t1 only: rec0 inputs at t2 = 2 spikes
    one, _ = _metrics(model, jnp.asarray(x), np.ones(1, np.float32), remat=True)
    assert one["synops/rec0/acs"] == 2 * 2


def test_direct_input_is_macs_once():
    """The direct encoder's analog image [1, 0, 0.5] enters fc0 once: 2 nonzero inputs x fan-out
    2 = 4 MACs, dense 6. Currents a = 1 (fires every step, reset zero: 3 spikes) and
    b = 0.65 (0.65, 0.975, 1.1375: fires at t2), so the readout does 4 x 2 = 8 ACs."""
    model = _mlp("zero")
    x = encoding.Direct()(jnp.array([[1.0, 0.0, 0.5]]), None, 3)
    totals, m = _metrics(model, x, np.ones(1, np.float32))
    assert totals["synops/fc0/macs"] == 4 and totals["synops/fc0/acs"] == 0
    assert totals["synops/fc0/dense"] == 6
    assert totals["synops/readout/acs"] == 8
    assert m["energy_uj"] == pytest.approx((8 * 0.9 + 4 * 4.6) * 1e-6)
    e = synops.Energy(ac_pj=1.0, mac_pj=10.0, update_pj=0.5)  # 12 updates per example
    assert synops.finalize(totals, 1, e)["energy_uj"] == pytest.approx((8 + 40 + 6) * 1e-6)
    # a binary direct image is spikes: accumulates
    binary, _ = _metrics(model, encoding.Direct()(jnp.array([[1.0, 0.0, 1.0]]), None, 3),
                         np.ones(1, np.float32))
    assert binary["synops/fc0/acs"] == 4 and binary["synops/fc0/macs"] == 0
    # in time blocks (trainer.remat): still once, not once per block (was 2x with 2 blocks,
    # the dense count too); remat is a memory setting, not another network
    for chunk in (1, 2):
        chunked, _ = _metrics(_mlp("zero", remat_chunk=chunk), x, np.ones(1, np.float32),
                              remat=True)
        assert chunked == totals, chunk


def test_bfloat16_counts_are_exact():
    """Counts were summed in the compute dtype: 5,303 spikes of a bfloat16 layer were recorded
    as 5,312 (bfloat16 keeps 8 significant bits). They add up in float32 now."""
    s_TxBxN = jnp.zeros((25, 2, 300), jnp.bfloat16).at[:, 0, :].set(
        (jnp.arange(25 * 300).reshape(25, 300) % 7 < 5).astype(jnp.bfloat16))
    aux = {k: {} for k in models.AUX_KEYS}
    models._record(aux, "lif0", s_TxBxN)
    models._record_input(aux, "fc1", s_TxBxN, spikes=True)
    exact = int(np.sum(np.arange(25 * 300) % 7 < 5))  # 5,358: not a bfloat16 number
    assert exact == 5358 and float(jnp.bfloat16(exact)) != exact
    np.testing.assert_array_equal(aux["spike_counts"]["lif0"], [exact, 0])
    np.testing.assert_array_equal(aux["in_counts"]["fc1"], [exact, 0])
    assert aux["rates"]["lif0"].dtype == jnp.float32
    assert float(aux["rates"]["lif0"][0]) == pytest.approx(exact / (25 * 300), rel=1e-6)


# ---- conv fan-out ------------------------------------------------------------------------------


def test_conv_fanout_by_hand():
    syn = {"kind": "conv", "in_shape": (1, 3, 3), "n_out": 1, "kernel": 3, "padding": "SAME"}
    # SAME 3x3 on 3x3: a corner reaches 2 x 2 outputs, an edge 2 x 3, the centre 3 x 3
    np.testing.assert_array_equal(synops.fanout(syn)[0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]])
    assert synops.connections({**syn, "n_out": 2}) == 2 * 7 * 7
    valid = {**syn, "padding": "VALID", "n_out": 2}  # one output position per channel
    np.testing.assert_array_equal(synops.fanout(valid), np.full((1, 3, 3), 2))
    # 4 wide, SAME, pool 3: only output rows 0..2 are pooled; row y is read by rows y-1..y+1
    pooled = {**syn, "in_shape": (1, 4, 4), "pool": 3}
    f = synops.fanout(pooled)[0]
    np.testing.assert_array_equal(f, np.outer([2, 3, 2, 1], [2, 3, 2, 1]))


def _out_hw(h, w, k, padding):
    return (h, w) if padding == "SAME" else (h - k + 1, w - k + 1)


@pytest.mark.parametrize(
    ("h", "w", "k", "padding", "pool"),
    [(h, w, k, padding, pool) for h, w, k, padding, pool in itertools.product(
        [5, 6], [4, 7], [1, 2, 3, 4], ["SAME", "VALID"], [1, 2, 3])
     if min(_out_hw(h, w, k, padding)) // pool >= 1],  # a layer with an output
)
def test_conv_fanout_equals_brute_force(h, w, k, padding, pool):
    """sum(counts * fanout) == the number of (output, tap) pairs that meet a spike: a
    convolution of the count map with a ones kernel, on the outputs the pooling reads."""
    ho, wo = _out_hw(h, w, k, padding)
    c, n_out = 2, 3
    counts = jax.random.randint(jax.random.PRNGKey(h * w + k), (c, h, w), 0, 4).astype(float)
    ones = jnp.ones((k, k, c, 1))
    hits = lax.conv_general_dilated(counts[None].transpose(0, 2, 3, 1), ones, (1, 1), padding,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))[0, ..., 0]
    brute = n_out * float(hits[: ho // pool * pool, : wo // pool * pool].sum())
    syn = {"kind": "conv", "in_shape": (c, h, w), "n_out": n_out, "kernel": k,
           "padding": padding, "pool": pool}
    assert float((counts * synops.fanout(syn)).sum()) == brute
    assert synops.connections(syn) == n_out * c * float(
        lax.conv_general_dilated(jnp.ones((1, h, w, 1)), jnp.ones((k, k, 1, 1)), (1, 1),
                                 padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))[
            0, : ho // pool * pool, : wo // pool * pool].sum())


# ---- conv models ------------------------------------------------------------------------------


def _conv(in_hw, k, padding, pool, pool_before, pool_mode="max"):
    m = models.ConvSNN((*in_hw, 1), 2, channels=[1], kernel_size=k, padding=padding, pool=pool,
                       pool_before_neuron=pool_before, pool_mode=pool_mode, norm="none",
                       neuron=neuron_cfg(beta=0.5, threshold=1.0, reset="zero"),
                       rngs=nnx.Rngs(0))
    w = np.zeros((k, k, 1, 1), np.float32)
    w[k // 2, k // 2] = 1.0  # identity (SAME): each neuron gets its own input pixel's spike
    _set(m.conv0.kernel, w)
    return m


def test_conv_same_padding_model_by_hand():
    """3x3 image, 3x3 SAME identity conv, no pooling, T = 2: a corner spike at t0 (fan-out 4)
    and a centre spike at t1 (fan-out 9) give 13 conv ACs; the LIF copy the input (2 spikes,
    9 neurons x 2 steps = 18 updates) and the readout does 2 x 2 = 4 ACs."""
    x = np.zeros((2, 1, 3, 3, 1), np.float32)
    x[0, 0, 0, 0], x[1, 0, 1, 1] = 1, 1
    totals, m = _metrics(_conv((3, 3), 3, "SAME", 1, True), jnp.asarray(x), np.ones(1))
    assert totals["synops/conv0/acs"] == 13
    assert totals["synops/conv0/dense"] == 2 * 49
    assert totals["spikes/lif0"] == 2 and totals["updates/lif0"] == 18
    assert totals["synops/readout/acs"] == 4
    assert m["sparsity/lif0"] == pytest.approx(1 - 2 / 18)


@pytest.mark.slow
def test_conv_valid_pool_before_neuron_by_hand():
    """4x4 image, 3x3 VALID conv (2x2 outputs), max pool 2 before the neuron: input rows and
    columns have fan-out [1, 2, 2, 1]. Spikes at (0, 0), (1, 2) and (3, 3) give 1 + 4 + 1 = 6
    ACs; one pooled neuron updated 3 times (T = 3)."""
    x = np.zeros((3, 1, 4, 4, 1), np.float32)
    x[0, 0, 0, 0], x[1, 0, 1, 2], x[2, 0, 3, 3] = 1, 1, 1
    totals, _ = _metrics(_conv((4, 4), 3, "VALID", 2, True), jnp.asarray(x), np.ones(1))
    assert totals["synops/conv0/acs"] == 6
    assert totals["synops/conv0/dense"] == 3 * 36
    assert totals["updates/lif0"] == 3


def test_avg_pool_after_neuron_makes_readout_macs():
    """4x4 image, SAME identity conv, LIF, then 2x2 average pooling of the spikes: spikes at
    (0, 0) (t0) and (3, 3) (t1) become 0.25 in two pooled cells, analog inputs to the readout:
    2 x 2 classes = 4 MACs, no ACs."""
    x = np.zeros((2, 1, 4, 4, 1), np.float32)
    x[0, 0, 0, 0], x[1, 0, 3, 3] = 1, 1
    totals, _ = _metrics(_conv((4, 4), 3, "SAME", 2, False, "avg"), jnp.asarray(x), np.ones(1))
    assert totals["synops/conv0/acs"] == 4 + 4  # corners: 2 x 2 outputs each
    assert totals["synops/readout/macs"] == 4 and totals["synops/readout/acs"] == 0


def test_jit_and_config_errors():
    model = _mlp("zero")
    _, aux = model(jnp.asarray(X_DENSE), spike)
    jitted = jax.jit(lambda a, m: synops.eval_sums(a, m, model.synapses()))(aux, MASK)
    assert float(jitted["synops/total/acs"]) == 16
    with pytest.raises(ConfigError, match=r"metrics.energy.ac_pj=-1.0 is invalid"):
        synops.energy_from_config({"ac_pj": -1.0})
    with pytest.raises(ConfigError, match=r"metrics.energy.add_pj is not a key; valid: ac_pj"):
        synops.energy_from_config({"add_pj": 1.0})



@pytest.mark.slow  # (default run kept under ~10 minutes; CI runs it)
def test_the_total_dense_count_is_the_exact_sum_of_the_layers():
    """model=conv on digits (8x8), T = 25, a test batch of 103: the layers' dense counts are
    13872, 150528 and 2560 synapses x 25 steps per example (346800 + 3763200 + 64000), but
    synops/total/dense was 4173999.84 (their float32 sum inside the evaluation step)."""
    T, B = 25, 103
    model = models.ConvSNN((8, 8, 1), 10, channels=[12, 64], kernel_size=5, norm="none",
                           neuron=neuron_cfg(), conv_method="lax", rngs=nnx.Rngs(0))
    assert [synops.connections(s) for s in model.synapses()] == [13872, 150528, 2560]
    x = (jax.random.uniform(jax.random.PRNGKey(0), (T, B, 8, 8, 1)) < 0.3).astype(jnp.float32)
    _, m = _metrics(model, x, np.ones(B, np.float32))
    assert [m[f"synops/{k}/dense"] for k in ("conv0", "conv1", "readout")] == [
        346800.0, 3763200.0, 64000.0]
    assert m["synops/total/dense"] == 4174000.0
    assert m["synops/total/acs"] == pytest.approx(
        sum(m[f"synops/{k}/acs"] for k in ("conv0", "conv1", "readout")), rel=1e-12)


@pytest.mark.slow
def test_a_conv_nets_dense_layer_counts_every_block_under_remat_with_direct_input():
    """encoder=direct, trainer.remat with T over model.remat_chunk: a conv net's fc0 (which
    reads spikes at every step; only conv0 reads the direct input once) was counted for the
    first time block only (952 ACs against 3323). Its counts equal those without remat, and
    fc0's dense count is T x fan-in x fan-out."""
    T, B = 10, 3
    model = models.ConvSNN((8, 8, 1), 10, channels=[4], kernel_size=3, norm="none", dense=[8],
                           neuron={"name": "lif", "threshold": 0.3}, remat_chunk=3,
                           rngs=nnx.Rngs(1))
    x = encoding.Direct()(jax.random.uniform(jax.random.PRNGKey(0), (B, 8, 8, 1)), None, T)
    mask = np.ones(B, np.float32)
    plain, m = _metrics(model, x, mask)
    chunked, _ = _metrics(model, x, mask, remat=True)
    for key in ("synops/fc0/acs", "synops/fc0/dense", "synops/conv0/macs", "synops/conv0/dense",
                "synops/readout/acs"):
        assert chunked[key] == pytest.approx(plain[key], rel=1e-6), key
    fan_in = model.synapses()[1]["in_shape"]
    assert plain["synops/fc0/dense"] == T * int(np.prod(fan_in)) * 8 * B
    assert plain["synops/fc0/acs"] == pytest.approx(8 * m["spikes/lif0"] * B, rel=1e-6)
