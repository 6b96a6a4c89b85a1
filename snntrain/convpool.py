"""Convolution and max-pooling as GEMMs, with the examples as the minor axis.

The conv blocks of :class:`snntrain.models.ConvSNN` hold their activations as
``C x H x W x N`` (``N = T*B`` examples last), so every patch copy moves contiguous runs of
``W * N`` values. :func:`conv_pool` computes ``maxpool(conv(x))`` in one of three exact
formulations (a space-to-depth GEMM with :func:`pooled_kernel`, a dense block-Toeplitz GEMM
for small images, or XLA's own convolution) and :func:`max_pool` pools by strided slices.
On XLA:CPU the fused GEMMs were the fastest formulation we measured (``scripts/bench.py``,
``experiments`` section); on GPU/TPU ``auto`` uses the vendor convolution.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

Array = jax.Array

CONV_METHODS = ("auto", "rule", "s2d", "dense", "lax")
TUNED = ("s2d", "dense", "lax")  # what ``auto`` times
MAX_DENSE = 2**26  # Toeplitz matrix entries beyond which ``dense`` is not a candidate


def _shift_matrix(k: int, n_in: int, n_out: int, low: int) -> Array:
    """``S[i, y, Y] = 1`` where input row ``y`` meets kernel row ``i`` for output row ``Y``."""
    i, y, out = jnp.arange(k)[:, None, None], jnp.arange(n_in)[None, :, None], jnp.arange(n_out)
    return (y == out[None, None, :] + i - low).astype(jnp.float32)


def pooled_kernel(w_KxKxCxO: Array, p: int) -> Array:
    """The kernel of ``maxpool_p(conv_k(x))`` as one GEMM in space-to-depth coordinates.

    A pooled output cell sees an input window of ``k + p - 1`` pixels per axis, i.e.
    ``r = ceil((k + p - 1) / p)`` cells of ``p x p`` pixels. Each of the ``p^2`` pooling phases
    ``(a, b)`` (the conv output at ``(pY + a, pX + b)``) is the kernel shifted by ``(a, b)`` in
    that window, zero elsewhere. Returns ``(p^2 O) x (r^2 p^2 C)``: rows ordered
    ``(phase, o)``, columns ``(cell_i, cell_j, a', b', c)`` for the window pixel
    ``(p cell_i + a', p cell_j + b')``. For ``p = 1`` it is ``w`` itself, transposed.
    """
    return _pooled_kernel(w_KxKxCxO, p, transposed=False)


def _pooled_kernel(w_KxKxCxO: Array, p: int, transposed: bool) -> Array:
    """:func:`pooled_kernel`, or (``transposed``) its transpose built as such: columns
    ``(phase, o)``, rows ``(cell_i, cell_j, a', b', c)`` in row-major memory order."""
    k, _, c, o = w_KxKxCxO.shape
    r = -(-(k + p - 1) // p)
    pad = r * p - k  # >= p - 1 zeros, so a roll by a < p never wraps a weight around
    w = jnp.pad(w_KxKxCxO, ((0, pad), (0, pad), (0, 0), (0, 0)))
    phases = [jnp.roll(w, (a, b), axis=(0, 1)) for a in range(p) for b in range(p)]
    w_big = jnp.stack(phases).reshape(p * p, r, p, r, p, c, o)  # (phase, i, a', j, b', c, o)
    if transposed:
        w_big = w_big.transpose(1, 3, 2, 4, 5, 0, 6)  # (i, j, a', b', c, phase, o)
        return w_big.reshape(r * r * p * p * c, p * p * o)
    w_big = w_big.transpose(0, 6, 1, 3, 2, 4, 5)  # (phase, o, i, j, a', b', c)
    return w_big.reshape(p * p * o, r * r * p * p * c)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def pooled_gemm(w_KxKxCxO: Array, patches_KxM: Array, p: int) -> Array:
    """``pooled_kernel(w, p) @ patches``, whose backward pass multiplies the output gradient
    by the transposed kernel *built transposed* (:func:`_pooled_kernel`) instead of by a
    transposed view of the forward's kernel.

    The same products as autodiff's; only the operand layout differs. XLA:CPU runs a GEMM
    whose left operand is a transposed view on a slower kernel than one whose operands are
    row-major (the CONV workload's input gradient, ``(432 x 256) @ (256 x 25600)``: 64-73 vs
    46-54 ms), so autodiff's ``kernel.T @ g`` cost ~20 ms of the step.
    """
    return pooled_kernel(w_KxKxCxO, p) @ patches_KxM


def _pooled_gemm_fwd(w_KxKxCxO: Array, patches_KxM: Array, p: int):
    w_big, vjp_w = jax.vjp(lambda w: pooled_kernel(w, p), w_KxKxCxO)
    return w_big @ patches_KxM, (w_KxKxCxO, patches_KxM, vjp_w)


def _pooled_gemm_bwd(p: int, res, g_OxM: Array):
    w_KxKxCxO, patches_KxM, vjp_w = res
    g_patches = _pooled_kernel(w_KxKxCxO, p, transposed=True) @ g_OxM
    g_big = jax.lax.dot_general(g_OxM, patches_KxM, (((1,), (1,)), ((), ())))
    return (*vjp_w(g_big.astype(w_KxKxCxO.dtype)), g_patches)


pooled_gemm.defvjp(_pooled_gemm_fwd, _pooled_gemm_bwd)


def conv_pool(
    x_CxHxWxN: Array,
    w_KxKxCxO: Array,
    padding: str = "SAME",
    pool: int = 1,
    method: str = "auto",
) -> Array:
    """``maxpool_pool(conv(x))``: stride-1 2D convolution (cross-correlation, as ``lax.conv``)
    then non-overlapping max-pooling, as one GEMM, with the examples as the minor axis.

    Equal (up to float rounding) to ``lax.conv_general_dilated(x, w, (1, 1), padding,
    ('CHWN', 'HWIO', 'CHWN'))`` followed by ``lax.reduce_window(max)`` (``VALID``: trailing
    rows/columns that do not fill a window are dropped). ``SAME`` pads ``(k-1)//2`` before and
    ``k//2`` after. Three exact formulations (``method``):

    * ``s2d``: space-to-depth by ``pool``, then im2col over ``r x r`` cells and one GEMM with
      :func:`pooled_kernel`, whose ``pool^2`` column groups are the pooling phases; the max
      over them is the pooled output. The ``N = T*B`` examples are the minor axis, so every
      patch copy moves contiguous runs of ``W' * N`` values and the GEMM is
      ``(p^2 O x r^2 p^2 C) @ (r^2 p^2 C x H'W'N)`` (:func:`pooled_gemm`). It multiplies
      ``(r p / k)^2`` times the kernel's FLOPs (zeros: 1.44x for k = 5, p = 2) and is still
      the fastest on XLA:CPU.
    * ``dense``: the convolution as a dense block-Toeplitz matrix ``(O H' W') x (C H W)``
      built from ``w`` and one GEMM on the flattened images, then the pooling as a max of
      strided slices: no patches to copy, at the cost of multiplying zeros (about
      ``H W / k^2`` times the FLOPs); much faster for small images (5-6x on 8x8 digits).
    * ``lax``: ``lax.conv_general_dilated`` then :func:`max_pool`: XLA's own convolution,
      which is what cuDNN / the TPU convolution units run best.
    * ``auto`` (default): the fastest of ``s2d``, ``dense`` and ``lax`` for these shapes on
      this device, timed once when the step is first traced and cached per device kind and
      shapes (:mod:`snntrain.autotune`); with ``SNNTRAIN_AUTOTUNE=0``, ``rule``.
    * ``rule``: a fixed rule: on CPU ``dense`` when ``H*W <= 4*k*k`` and the matrix is small,
      else ``s2d``; on GPU/TPU ``lax``.

    Returns ``O x H_p x W_p x N``.

    References:
      Chellapilla, Puri & Simard, "High performance convolutional neural networks for document
      processing", IWFHR 2006 (convolution unfolded into one matrix product).
    """
    k, _, c, o = w_KxKxCxO.shape
    if method not in CONV_METHODS:
        raise ValueError(f"unknown conv method {method!r}; valid: {', '.join(CONV_METHODS)}")
    x = x_CxHxWxN
    _, h, w, n = x.shape
    same = padding == "SAME"
    ho, wo = (h, w) if same else (h - k + 1, w - k + 1)
    if method == "auto":
        method = tuned_method(x.shape, w_KxKxCxO.shape, x.dtype, padding, pool)
    if method == "rule":
        method = rule_method(x.shape, w_KxKxCxO.shape, padding)
    if method == "lax":
        dims = ("CHWN", "HWIO", "CHWN")
        y = jax.lax.conv_general_dilated(x, w_KxKxCxO, (1, 1), padding, dimension_numbers=dims)
        return max_pool(y, pool)
    if method == "dense":
        low = (k - 1) // 2 if same else 0
        sh, sw = _shift_matrix(k, h, ho, low), _shift_matrix(k, w, wo, low)
        dt = w_KxKxCxO.dtype
        m = jnp.einsum("iyY,jxX,ijco->oYXcyx", sh.astype(dt), sw.astype(dt), w_KxKxCxO)
        y = m.reshape(o * ho * wo, c * h * w) @ x.reshape(c * h * w, n)
        return max_pool(y.reshape(o, ho, wo, n), pool)
    if same:
        x = jnp.pad(x, ((0, 0), ((k - 1) // 2, k // 2), ((k - 1) // 2, k // 2), (0, 0)))
    p = pool
    r = -(-(k + p - 1) // p)
    hp, wp = ho // p, wo // p
    # crop or zero-pad to the (hp + r - 1) x (wp + r - 1) cells the pooled outputs read; the
    # pixels added or dropped only ever meet the zero rows of the pooled kernel
    hs, ws = hp + r - 1, wp + r - 1
    x = x[:, : hs * p, : ws * p]
    x = jnp.pad(x, ((0, 0), (0, hs * p - x.shape[1]), (0, ws * p - x.shape[2]), (0, 0)))
    s = x.reshape(c, hs, p, ws, p, n).transpose(2, 4, 0, 1, 3, 5).reshape(p * p * c, hs, ws, n)
    patches = jnp.stack([s[:, i : i + hp, j : j + wp] for i in range(r) for j in range(r)])
    y = pooled_gemm(w_KxKxCxO, patches.reshape(r * r * p * p * c, hp * wp * n), p)
    return phase_max(y.reshape(p * p, o, hp, wp, n))


def _chain_max(y_Px: Array) -> list[Array]:
    """``m_0 = y_0``, ``m_k = max(m_{k-1}, y_k)``: the running maxima over the leading axis."""
    ms = [y_Px[0]]
    for k in range(1, y_Px.shape[0]):
        ms.append(jnp.maximum(ms[-1], y_Px[k]))
    return ms


@jax.custom_vjp
def phase_max(y_Px: Array) -> Array:
    """``max(...max(max(y_0, y_1), y_2)..., y_{P-1})``: the max over the leading axis.

    Values and gradients equal those of the ``jnp.maximum`` chain (ties share the gradient
    as ``lax.max`` does: halved at each tied ``max``), but the backward pass writes the ``P``
    phase gradients as one stacked array. Autodiff of the chain differentiates each slice
    ``y[k]`` as a zero-padded copy of the whole ``y`` and sums the ``P`` copies, which took
    70 of the ~440 ms of the CONV step on XLA:CPU.
    """
    return _chain_max(y_Px)[-1]


def _phase_max_fwd(y_Px: Array) -> tuple[Array, Array]:
    return _chain_max(y_Px)[-1], y_Px


def _balanced_eq(a: Array, z: Array, b: Array) -> Array:
    """``lax.max``'s derivative weight for ``a`` in ``z = max(a, b)``: 1, 1/2 (tie) or 0."""
    one = jnp.ones((), z.dtype)
    return jnp.where(a == z, one, 0 * one) / jnp.where(b == z, 2 * one, one)


def _phase_max_bwd(y_Px: Array, g: Array) -> tuple[Array]:
    ms = _chain_max(y_Px)
    grads = [None] * y_Px.shape[0]
    g_m = g
    for k in range(y_Px.shape[0] - 1, 0, -1):  # m_k = max(m_{k-1}, y_k), as autodiff
        grads[k] = g_m * _balanced_eq(y_Px[k], ms[k], ms[k - 1])
        g_m = g_m * _balanced_eq(ms[k - 1], ms[k], y_Px[k])
    grads[0] = g_m
    return (jnp.stack(grads),)


phase_max.defvjp(_phase_max_fwd, _phase_max_bwd)


def time_major(z_CxHxWxN: Array, T: int, B: int) -> Array:
    """``C x H x W x (T*B) -> T x C x H x W x B``: a conv block's output as the neuron's
    time loop reads it (``jnp.moveaxis``; values and gradients are the same).

    On CPU (the default backend when traced) its backward writes the gradient back in the
    examples-minor order one time step per loop iteration, so it is stored once. As a plain
    transpose, XLA:CPU fused it into its consumer, the pooling's gradient
    (:func:`phase_max`), which then read the time-major array element by element for each
    of the ``pool^2`` phases: 23-31 of 30 ms for the bench CONV's first layer and 13-17 of
    15-19 ms for its second, against 7 and 3 ms with the loop (isolated, Zen 5,
    2026-12-06); the whole step 1.26-1.30x faster. (A ``custom_vjp``: no forward-mode
    derivative through it on CPU, as through :func:`pooled_gemm` and :func:`phase_max`.)
    """
    if jax.default_backend() != "cpu":  # (GPU/TPU: their transposes are fast)
        return _time_major(z_CxHxWxN, T, B)
    return _time_major_stored(z_CxHxWxN, T, B)


def _time_major(z_CxHxWxN: Array, T: int, B: int) -> Array:
    return jnp.moveaxis(z_CxHxWxN.reshape(*z_CxHxWxN.shape[:3], T, B), 3, 0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _time_major_stored(z_CxHxWxN: Array, T: int, B: int) -> Array:
    return _time_major(z_CxHxWxN, T, B)


def _time_major_fwd(z_CxHxWxN: Array, T: int, B: int) -> tuple[Array, None]:
    return _time_major(z_CxHxWxN, T, B), None


def _time_major_bwd(T: int, B: int, _: None, g_TxCxHxWxB: Array) -> tuple[Array]:
    c, h, w = g_TxCxHxWxB.shape[1:4]
    if T == 0:  # (a zero-length window: nothing to write)
        return (g_TxCxHxWxB.reshape(c, h, w, 0),)
    g_TxXxB = g_TxCxHxWxB.reshape(T, c * h * w, B)

    def put(t: Array, out_XxTxB: Array) -> Array:
        step_XxB = jax.lax.dynamic_index_in_dim(g_TxXxB, t, 0, keepdims=False)
        return jax.lax.dynamic_update_index_in_dim(out_XxTxB, step_XxB, t, 1)

    out_XxTxB = jax.lax.fori_loop(0, T, put, jnp.zeros((c * h * w, T, B), g_TxXxB.dtype))
    return (out_XxTxB.reshape(c, h, w, T * B),)


_time_major_stored.defvjp(_time_major_fwd, _time_major_bwd)


def max_pool(x_NxHxWxC: Array, k: int) -> Array:
    """Non-overlapping ``k x k`` max-pooling over axes 1 and 2 (``VALID``: trailing
    rows/columns are dropped); any layout with the two spatial axes there (``NHWC``,
    ``CHWN``).

    Written as a max over the ``k*k`` strided slices: the same values as
    ``lax.reduce_window(max)``, and its gradient is several times faster on XLA:CPU. Where
    several inputs of a window tie for the maximum, the gradient is shared among them.
    """
    if k == 1:
        return x_NxHxWxC
    h, w = x_NxHxWxC.shape[1] // k * k, x_NxHxWxC.shape[2] // k * k
    out = None
    for i in range(k):
        for j in range(k):
            piece = x_NxHxWxC[:, i:h:k, j:w:k]
            out = piece if out is None else jnp.maximum(out, piece)
    return out


def rule_method(x_shape: tuple, w_shape: tuple, padding: str) -> str:
    """``rule``'s formulation: on CPU ``dense`` when ``H*W <= 4*k*k`` and the matrix is small,
    else ``s2d``; on GPU/TPU ``lax``."""
    if jax.default_backend() != "cpu":
        return "lax"
    c, h, w, _ = x_shape
    k, o = w_shape[0], w_shape[3]
    ho, wo = (h, w) if padding == "SAME" else (h - k + 1, w - k + 1)
    small = h * w <= 4 * k * k and h * w * c * ho * wo * o <= 4 * 2**20
    return "dense" if small else "s2d"


def tuned_method(x_shape: tuple, w_shape: tuple, dtype, padding: str, pool: int) -> str:
    """The fastest exact formulation of :func:`conv_pool` for these shapes on this device
    (:func:`rule_method`'s when autotuning is off; a resumed run's earlier choice when it
    made one: :func:`snntrain.autotune.pin`)."""
    from snntrain import autotune

    if 0 in x_shape:  # (an empty block of time steps: no work)
        return "rule"
    shapes = [tuple(x_shape), tuple(w_shape), str(jnp.dtype(dtype)), padding, pool]
    if (earlier := autotune.pinned("conv_pool", shapes)) in TUNED:  # a resumed run's choice
        return autotune.record("conv_pool", shapes, earlier)
    if not autotune.enabled():
        return autotune.record("conv_pool", shapes, rule_method(x_shape, w_shape, padding))
    c, h, w, _ = x_shape
    o = w_shape[3]
    candidates = {
        m: (lambda x, wk, m=m: conv_pool(x, wk, padding, pool, m))
        for m in TUNED
        if m != "dense" or o * h * w * c * h * w <= MAX_DENSE
    }
    return autotune.fastest(
        "conv_pool", shapes, candidates,
        lambda: autotune.random_args((tuple(x_shape), dtype), (tuple(w_shape), dtype)))
