"""Hand-written plain-JAX training steps for the benchmark's networks: the speed to beat.

Each reference is the fastest formulation we know for its network (every synaptic layer on all
``T*B`` rows at once, only the LIF recurrence scanned), with snntrain's default constants
(:data:`T_STEPS`, :data:`BETA`, ...), rate coding at 8-bit resolution and Adam. The conv
references come in three formulations of ``maxpool2(conv)`` (:data:`CONV_FORMULATIONS`);
:func:`check_conv_formulations` checks them against ``lax.conv`` + ``reduce_window``.
"""

from __future__ import annotations

import numpy as np

# The network constants every reference shares with snntrain's defaults (conf/).
T_STEPS, BETA, THRESHOLD, ALPHA, LR = 25, 0.9, 1.0, 25.0, 2e-3


def _spike_fn():
    """Heaviside forward, fast-sigmoid derivative ``1 / (ALPHA |v| + 1)^2`` backward."""
    import jax
    import jax.numpy as jnp

    @jax.custom_jvp
    def spike(v):
        return (v >= 0).astype(v.dtype)

    @spike.defjvp
    def _(primals, tangents):
        (v,), (dv,) = primals, tangents
        return spike(v), dv / (ALPHA * jnp.abs(v) + 1.0) ** 2

    return spike


def _lif(spike, i_TxN):
    """LIF over the leading time axis (charge, fire, subtract reset): one ``lax.scan``."""
    import jax
    import jax.numpy as jnp

    def body(v, i):
        v = BETA * v + i
        s = spike(v - THRESHOLD)
        return v - s * THRESHOLD, s

    return jax.lax.scan(body, jnp.zeros(i_TxN.shape[1:], i_TxN.dtype), i_TxN)[1]


def _time_weights(T: int):
    """``c_T`` with ``mean_t v_t = sum_k c_k o_k`` for the leaky membrane
    ``v_t = BETA v_{t-1} + o_t``: ``c_k = (1/T) sum_{t>=k} BETA**(t-k)``."""
    lag = np.arange(T)[:, None] - np.arange(T)[None, :]
    return np.where(lag >= 0, BETA ** np.maximum(lag, 0), 0.0).mean(0).astype(np.float32)


def _readout_mean(h_TxBxN, w, b):
    """Logits: the mean over time of the readout membrane driven by ``h_t @ w + b``, as the
    time-weighted spike sum times ``w`` (``snntrain.models.Readout.logits``' formulation: the
    output matmul on ``B`` rows, not ``T*B``)."""
    import jax.numpy as jnp

    c_T = _time_weights(h_TxBxN.shape[0])
    return jnp.einsum("t,tbn->bn", c_T, h_TxBxN) @ w + c_T.sum() * b


def _rate_levels(x, key, shape):
    """Bernoulli spikes ``u < round(256 x)`` from 8-bit uniforms (four per 32-bit word).

    ``x`` broadcasts against ``shape`` (whose last axis must divide by 4); as snntrain's
    default ``encoder.resolution=8``, with one key for the whole batch.
    """
    import jax
    import jax.numpy as jnp

    words = jax.random.bits(key, (*shape[:-1], shape[-1] // 4), jnp.uint32)
    u = jax.lax.bitcast_convert_type(words, jnp.uint8).reshape(shape)
    level = jnp.round(x * 256).astype(jnp.int32)
    return (u.astype(jnp.int32) < level).astype(jnp.float32)


def make_step(loss_fn, params):
    """``(jitted step, state, step)``: an Adam step ``(state, batch, key) -> (state, loss)``,
    jitted with the state donated, and the plain function (to scan it)."""
    import jax
    import jax.numpy as jnp
    import optax

    tx = optax.adam(LR)

    def step(state, batch, key):
        params, opt, n = state
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, jax.random.fold_in(key, n))
        updates, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, updates), opt, n + 1), loss

    state = (params, tx.init(params), jnp.zeros((), jnp.int32))
    return jax.jit(step, donate_argnums=0), state, step


def reference_mlp(sizes: list[int], T: int = T_STEPS, epoch: bool = False):
    """The fastest MLP step we know: each layer's matmul on all T*B rows, scan only the LIF.

    Returns ``(loss_fn, params)``; ``loss_fn(params, batch, key)``.
    """
    import jax
    import jax.numpy as jnp
    import optax

    spike = _spike_fn()
    keys = jax.random.split(jax.random.PRNGKey(0), len(sizes) - 1)
    params = [
        (jax.random.normal(k, (a, b)) / np.sqrt(a), jnp.zeros(b))
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]

    def loss_fn(params, batch, key):
        x_BxD = batch["x"].reshape(batch["x"].shape[0], -1)
        B, D = x_BxD.shape
        h = _rate_levels(x_BxD, key, (T, B, D)).reshape(T * B, D)
        for w, b in params[:-1]:
            h = _lif(spike, (h @ w + b).reshape(T, B, -1)).reshape(T * B, -1)
        w, b = params[-1]
        logits_BxC = _readout_mean(h.reshape(T, B, -1), w, b)
        return optax.softmax_cross_entropy_with_integer_labels(logits_BxC, batch["y"]).mean()

    return loss_fn, params


def pooled_conv_kernel(w_KxKxCxO):
    """Weights of ``maxpool2(conv_kxk(x))`` as one GEMM in space-to-depth coordinates.

    The 4 pooling phases ``(a, b)`` of a pooled output see a ``(k+1) x (k+1)`` input window
    (``(k+1)/2`` squared cells of 2x2 pixels, k odd); column ``(a, b, o)`` holds ``w`` shifted
    by ``(a, b)`` in that window, zeros elsewhere. Returns ``((k+1)/2)^2 * 4C x 4O``, rows
    ordered ``(cell_i, cell_j, p, q, c)`` with pixel ``(2 cell_i + p, 2 cell_j + q)``.
    """
    import jax.numpy as jnp

    k, _, c, o = w_KxKxCxO.shape
    r = (k + 1) // 2
    padded = jnp.pad(w_KxKxCxO, ((0, 2 * r - k), (0, 2 * r - k), (0, 0), (0, 0)))
    phases = [jnp.roll(padded, (a, b), axis=(0, 1)) for a in range(2) for b in range(2)]
    w_big = jnp.stack(phases, -2).reshape(r, 2, r, 2, c, 4, o).transpose(0, 2, 1, 3, 4, 5, 6)
    return w_big.reshape(r * r * 4 * c, 4 * o)


def conv_pool_im2col(x_NxHxWxC, w_KxKxCxO):
    """snntrain's formulation: VALID conv as im2col + one GEMM, then a max of 4 slices."""
    import jax.numpy as jnp

    k, _, c, o = w_KxKxCxO.shape
    n, h, w, _ = x_NxHxWxC.shape
    ho, wo = h - k + 1, w - k + 1
    rows = jnp.concatenate([x_NxHxWxC[:, :, j : j + wo] for j in range(k)], -1)
    patches = jnp.concatenate([rows[:, i : i + ho] for i in range(k)], -1)
    y = patches @ w_KxKxCxO.reshape(k * k * c, o)
    hp, wp = ho // 2 * 2, wo // 2 * 2
    return jnp.maximum(
        jnp.maximum(y[:, 0:hp:2, 0:wp:2], y[:, 0:hp:2, 1:wp:2]),
        jnp.maximum(y[:, 1:hp:2, 0:wp:2], y[:, 1:hp:2, 1:wp:2]),
    )


def conv_pool_s2d_nhwc(x_NxHxWxC, w_KxKxCxO):
    """``maxpool2(conv)`` fused, channels-last: space-to-depth, (k+1)/2-square im2col, one GEMM
    with :func:`pooled_conv_kernel`, max over the 4 phase column groups. Needs even conv
    output sizes (true for the CONV workload)."""
    import jax.numpy as jnp

    k, _, c, o = w_KxKxCxO.shape
    n, h, w, _ = x_NxHxWxC.shape
    r, ho, wo = (k + 1) // 2, (h - k + 1) // 2, (w - k + 1) // 2
    s = x_NxHxWxC.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    s = s.reshape(n, h // 2, w // 2, 4 * c)
    rows = jnp.concatenate([s[:, :, j : j + wo] for j in range(r)], -1)
    patches = jnp.concatenate([rows[:, i : i + ho] for i in range(r)], -1)
    y = patches @ pooled_conv_kernel(w_KxKxCxO)
    return jnp.maximum(
        jnp.maximum(y[..., :o], y[..., o : 2 * o]),
        jnp.maximum(y[..., 2 * o : 3 * o], y[..., 3 * o :]),
    )


def conv_pool_s2d_chwn(x_CxHxWxN, w_KxKxCxO):
    """As :func:`conv_pool_s2d_nhwc` with the examples (T*B) as the minor axis: every patch
    slice copies runs of ``wo * N`` floats, and the GEMM is ``W_big^T (4O x K) @ P (K x M)``."""
    import jax.numpy as jnp

    k, _, c, o = w_KxKxCxO.shape
    _, h, w, n = x_CxHxWxN.shape
    r, ho, wo = (k + 1) // 2, (h - k + 1) // 2, (w - k + 1) // 2
    s = x_CxHxWxN.reshape(c, h // 2, 2, w // 2, 2, n).transpose(2, 4, 0, 1, 3, 5)
    s = s.reshape(4 * c, h // 2, w // 2, n)
    patches = jnp.stack([s[:, i : i + ho, j : j + wo] for i in range(r) for j in range(r)], 0)
    y = pooled_conv_kernel(w_KxKxCxO).T @ patches.reshape(r * r * 4 * c, ho * wo * n)
    return _max4(y.reshape(4, o, ho, wo, n))


def _max4(y_4xR):
    """``max(max(y0, y1), max(y2, y3))`` whose backward writes the four phase gradients as one
    stacked array (autodiff sums four zero-padded copies of ``y``: 2x slower on XLA:CPU)."""
    import jax
    import jax.numpy as jnp

    def weight(a, z, b):  # lax.max's derivative weight of a in z = max(a, b)
        return jnp.where(a == z, 1.0, 0.0) / jnp.where(b == z, 2.0, 1.0)

    @jax.custom_vjp
    def max4(y):
        return jnp.maximum(jnp.maximum(y[0], y[1]), jnp.maximum(y[2], y[3]))

    def bwd(y, g):
        a, b = jnp.maximum(y[0], y[1]), jnp.maximum(y[2], y[3])
        z = jnp.maximum(a, b)
        ga, gb = g * weight(a, z, b), g * weight(b, z, a)
        return (jnp.stack([ga * weight(y[0], a, y[1]), ga * weight(y[1], a, y[0]),
                           gb * weight(y[2], b, y[3]), gb * weight(y[3], b, y[2])]),)

    max4.defvjp(lambda y: (max4(y), y), bwd)
    return max4(y_4xR)


CONV_FORMULATIONS = ("chwn_s2d", "nhwc_s2d", "nhwc_im2col")


def _time_major_fn(T: int):
    """``C x H x W x (T*B) -> T x C x H x W x B`` whose backward is a loop over ``t`` (as
    ``snntrain.convpool.time_major``: a plain transpose is fused into the pooling's gradient
    by XLA:CPU, which then reads it element by element)."""
    import jax
    import jax.numpy as jnp

    @jax.custom_vjp
    def time_major(z):
        return jnp.moveaxis(z.reshape(*z.shape[:3], T, -1), 3, 0)

    def bwd(_, g):
        g_TxXxB = g.reshape(T, -1, g.shape[-1])

        def put(t, out):
            return jax.lax.dynamic_update_index_in_dim(out, g_TxXxB[t], t, 1)

        out = jax.lax.fori_loop(0, T, put, jnp.zeros((g_TxXxB.shape[1], T, g.shape[-1]),
                                                         g.dtype))
        return (out.reshape(*g.shape[1:4], -1),)

    time_major.defvjp(lambda z: (time_major(z), None), bwd)
    return time_major


def reference_conv(
    formulation: str = "chwn_s2d",
    channels=(12, 64),
    k: int = 5,
    hw: int = 28,
    n_classes: int = 10,
    T: int = T_STEPS,
):
    """The CONV workload by hand: both convolutions on all T*B images at once, scan only LIF.

    ``formulation``: ``chwn_s2d`` (fastest: pooled conv fused, examples minor),
    ``nhwc_s2d`` (same fused conv+pool, channels-last as snntrain) or ``nhwc_im2col``
    (snntrain's current formulation). The bias is added after the pool (the same values:
    max(a_i + b) = max(a_i) + b, rounding is monotone).
    """
    import jax
    import jax.numpy as jnp
    import optax

    if formulation not in CONV_FORMULATIONS:
        raise ValueError(f"unknown conv formulation {formulation!r}; valid: {CONV_FORMULATIONS}")
    spike = _spike_fn()
    keys = jax.random.split(jax.random.PRNGKey(0), len(channels) + 1)
    params, c, size = [], 1, hw
    for key, c_out in zip(keys, channels, strict=False):
        params.append(
            (jax.random.normal(key, (k, k, c, c_out)) / np.sqrt(k * k * c), jnp.zeros(c_out))
        )
        c, size = c_out, (size - k + 1) // 2
    n_flat = size * size * c
    params.append(
        (jax.random.normal(keys[-1], (n_flat, n_classes)) / np.sqrt(n_flat), jnp.zeros(n_classes))
    )

    def loss_nhwc(params, batch, key):
        B = batch["x"].shape[0]
        x_BxD = batch["x"].reshape(B, hw * hw)
        h = _rate_levels(x_BxD, key, (T, B, hw * hw)).reshape(T * B, hw, hw, 1)
        conv_pool = conv_pool_s2d_nhwc if formulation == "nhwc_s2d" else conv_pool_im2col
        for w, b in params[:-1]:
            i = conv_pool(h, w) + b
            h = _lif(spike, i.reshape(T, B, *i.shape[1:])).reshape(i.shape)
        w, b = params[-1]
        logits_BxC = _readout_mean(h.reshape(T, B, -1), w, b)
        return optax.softmax_cross_entropy_with_integer_labels(logits_BxC, batch["y"]).mean()

    time_major = _time_major_fn(T)

    def loss_chwn(params, batch, key):
        B = batch["x"].shape[0]
        x_HxWxB = batch["x"].reshape(B, hw, hw).transpose(1, 2, 0)
        h = _rate_levels(x_HxWxB[:, :, None], key, (hw, hw, T, B)).reshape(1, hw, hw, T * B)
        for w, b in params[:-1]:
            i = conv_pool_s2d_chwn(h, w) + b[:, None, None, None]  # C x H x W x (T*B)
            i_TxCxHxWxB = time_major(i)
            h = jnp.moveaxis(_lif(spike, i_TxCxHxWxB), 0, 3).reshape(i.shape)
        w, b = params[-1]  # rows in (c, h, w) order: the same network up to a permutation
        c_T = _time_weights(T)
        h_NxB = jnp.einsum("ntb,t->nb", h.reshape(-1, T, B), c_T)
        logits_BxC = (w.T @ h_NxB + c_T.sum() * b[:, None]).T
        return optax.softmax_cross_entropy_with_integer_labels(logits_BxC, batch["y"]).mean()

    return (loss_chwn if formulation == "chwn_s2d" else loss_nhwc), params


def check_conv_formulations() -> dict[str, float]:
    """Max |difference| of each fused formulation from ``lax.conv`` + ``reduce_window`` max."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    rng = np.random.default_rng(0)
    out = {}
    for shape, wshape in (((64, 28, 28, 1), (5, 5, 1, 12)), ((64, 12, 12, 12), (5, 5, 12, 64))):
        x = jnp.asarray((rng.random(shape) < 0.3).astype(np.float32))
        w = jnp.asarray(rng.standard_normal(wshape).astype(np.float32) / 5)
        y = lax.conv_general_dilated(
            x,
            w,
            (1, 1),
            "VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=lax.Precision.HIGHEST,
        )
        want = np.asarray(
            lax.reduce_window(y, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        )
        got = {
            "nhwc_im2col": jax.jit(conv_pool_im2col)(x, w),
            "nhwc_s2d": jax.jit(conv_pool_s2d_nhwc)(x, w),
            "chwn_s2d": jnp.transpose(
                jax.jit(conv_pool_s2d_chwn)(jnp.transpose(x, (3, 1, 2, 0)), w), (3, 1, 2, 0)
            ),
        }
        for name, v in got.items():
            err = float(np.abs(np.asarray(v) - want).max() / np.abs(want).max())
            out[name] = max(out.get(name, 0.0), err)
    return out
