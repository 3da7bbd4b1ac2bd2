"""The gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018).

McCandlish, Kaplan, Amodei et al. 2018, "An Empirical Model of Large-Batch Training"
(arXiv:1812.06162). G is the true gradient, Sigma the per-example gradient covariance, so a
batch-B gradient estimate G_B has E|G_B|^2 = |G|^2 + tr(Sigma)/B. Measuring |G_B|^2 at two batch
sizes B_small < B_big and solving these two equations gives the unbiased estimators of App. A:

    |G|^2     = (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) = (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)

A training step already holds both: under gradient accumulation the K microbatch gradients
(B_small = b) and their mean (B_big = K b); under data parallelism the per-device gradients and
their all-reduced mean. |G_small|^2 is then the MEAN of the K small-batch squared norms (each is
an unbiased draw of E|G_b|^2; averaging only reduces variance), so the cost is K + 1 norms.

The ratio of two unbiased estimates is not unbiased and a single step's |G|^2 estimate can be
negative, so (App. A) |G|^2 and tr(Sigma) are smoothed by SEPARATE exponential moving averages and
B_simple is the ratio of the averages. Units: B_simple is in the units of B_small/B_big (this
project: sequences; multiply by seq_len for tokens).

Everything here is pure and jit-friendly (jax.numpy); the per-run summary of the logged values
(host-side NumPy, importable without JAX) is ``scaling.noise_scale``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

NORM_DTYPE = jnp.float32  # squared norms are accumulated in fp32 even for bf16 gradients
DEFAULT_DECAY = 0.99  # per-step EMA decay of |G|^2 and tr(Sigma): a half-life of ~69 steps


# --- the two-batch-size estimators (App. A) -----------------------------------------------

class GNSStats(NamedTuple):
    """One step's raw statistics: mean small-batch |G_small|^2, big-batch |G_big|^2, sizes."""

    sq_norm_small: jax.Array  # mean over the K small batches of |G_small,k|^2
    sq_norm_big: jax.Array  # |G_big|^2, G_big = mean of the K small-batch gradients
    b_small: float  # examples per small batch (microbatch or per-device batch)
    b_big: float  # examples in the big batch (B_big = K * b_small)


def unbiased_estimates(mean_sq_norm_small, sq_norm_big, b_small, b_big):
    """(|G|^2, tr(Sigma)) from |G|^2 at two batch sizes; McCandlish et al. 2018, App. A.

    Both are unbiased when the small batches are i.i.d. draws of ``b_small`` examples and
    ``sq_norm_big`` is the norm of their mean. Requires ``b_big > b_small``.
    """
    if isinstance(b_small, (int, float)) and isinstance(b_big, (int, float)) and not b_big > b_small > 0:
        raise ValueError(f"need b_big > b_small > 0, got b_small={b_small}, b_big={b_big} "
                         "(one microbatch on one device has no second batch size: use split_batch_stats)")
    b_small = jnp.asarray(b_small, NORM_DTYPE)
    b_big = jnp.asarray(b_big, NORM_DTYPE)
    g2 = (b_big * sq_norm_big - b_small * mean_sq_norm_small) / (b_big - b_small)
    trace = (mean_sq_norm_small - sq_norm_big) / (1.0 / b_small - 1.0 / b_big)
    return g2, trace


def estimates(stats: GNSStats):
    """``unbiased_estimates`` applied to a ``GNSStats``."""
    return unbiased_estimates(stats.sq_norm_small, stats.sq_norm_big, stats.b_small, stats.b_big)


# --- getting the statistics from gradients a step already computes -------------------------

def sq_norm(tree) -> jax.Array:
    """Squared global L2 norm of a pytree, accumulated in fp32."""
    leaves = jax.tree_util.tree_leaves(tree)
    return sum(jnp.sum(jnp.square(x.astype(NORM_DTYPE))) for x in leaves)


def isolate(grads):
    """An XLA optimization barrier around one (micro)batch gradient.

    Apply it in the step whether or not the noise scale is measured: it stops XLA from fusing
    the extra norm into the gradient computation, which otherwise may change the gradient's
    rounding (observed on CPU, JAX 0.10: one leaf differed in its last bits with the norm on),
    and so keeps the training trajectory bit-identical with the measurement on or off.
    """
    return jax.lax.optimization_barrier(grads)


def from_sq_norms(sum_sq_norms_small, mean_grad, k: int, b_small: int) -> GNSStats:
    """Stats from the running SUM of K small-batch squared norms and the mean gradient.

    The cheap form for a ``lax.scan`` accumulation loop: carry ``sum_sq += sq_norm(g_k)`` next to
    the gradient sum, then call this with the averaged gradient the optimizer receives.
    """
    return GNSStats(sum_sq_norms_small / k, sq_norm(mean_grad), b_small, k * b_small)


def from_microbatch_grads(grads_K, b_small: int) -> GNSStats:
    """Stats from a stacked pytree of K small-batch gradients (leading axis K on every leaf)."""
    leaves = jax.tree_util.tree_leaves(grads_K)
    k = leaves[0].shape[0]
    per_k = sum(jnp.sum(jnp.square(x.astype(NORM_DTYPE)).reshape(k, -1), axis=1) for x in leaves)
    mean_grad = jax.tree_util.tree_map(lambda x: jnp.mean(x.astype(NORM_DTYPE), axis=0), grads_K)
    return GNSStats(jnp.mean(per_k), sq_norm(mean_grad), b_small, k * b_small)


def device_varying(tree, axis_name):
    """Mark replicated values (parameters) as varying over ``axis_name`` inside ``shard_map``.

    Under shard_map's replication typing, the gradient with respect to a REPLICATED parameter is
    already summed over devices by autodiff; differentiating with respect to
    ``device_varying(params)`` instead yields each device's own gradient (what
    ``from_device_grads`` needs). A no-op on JAX versions without replication typing.
    """
    if hasattr(jax.lax, "pcast"):
        return jax.tree_util.tree_map(lambda x: jax.lax.pcast(x, axis_name, to="varying"), tree)
    if hasattr(jax.lax, "pvary"):
        return jax.tree_util.tree_map(lambda x: jax.lax.pvary(x, axis_name), tree)
    return tree


def from_device_grads(local_grad, axis_name, b_small: int, n_devices: int) -> GNSStats:
    """Stats inside ``shard_map``/``pmap``: each device's gradient is one small batch.

    ``local_grad`` is this device's mean gradient over its ``b_small`` examples before any
    all-reduce (take it with respect to ``device_varying(params, axis_name)``, see there). Costs
    a scalar ``pmean`` plus the all-reduce of the gradient, which the step does anyway. Under
    jit + sharding annotations (no shard_map) per-device gradients are not materialised; there,
    vmap the gradient over a device-sharded group axis and use ``from_microbatch_grads``.
    """
    mean_grad = jax.lax.pmean(local_grad, axis_name)
    small = jax.lax.pmean(sq_norm(local_grad), axis_name)
    return GNSStats(small, sq_norm(mean_grad), b_small, n_devices * b_small)


def split_batch_stats(grad_fn: Callable, params, batch, k: int, b_small: int, unroll=1) -> GNSStats:
    """Extra small-batch gradients for runs with neither accumulation nor several devices.

    Splits ``batch`` (a pytree whose leaves have the batch axis first, size k*b_small) into k
    groups and computes each group's gradient with ``grad_fn(params, group) -> grads`` in a
    sequential ``lax.scan`` (memory of one group). The result is discarded by the optimizer, so
    the training trajectory is untouched; the cost is about one extra forward+backward over the
    batch per measured step, i.e. ~1/cadence of a step's compute when measured every cadence steps.
    """
    groups = jax.tree_util.tree_map(lambda x: x.reshape((k, b_small) + x.shape[1:]), batch)

    def body(carry, group):
        g_sum, sq_sum = carry
        g = isolate(grad_fn(params, group))
        g_sum = jax.tree_util.tree_map(lambda a, b: a + b.astype(NORM_DTYPE), g_sum, g)
        return (g_sum, sq_sum + sq_norm(g)), None

    zeros = jax.tree_util.tree_map(lambda p: jnp.zeros(p.shape, NORM_DTYPE), params)
    (g_sum, sq_sum), _ = jax.lax.scan(body, (zeros, jnp.zeros((), NORM_DTYPE)), groups, unroll=unroll)
    mean_grad = jax.tree_util.tree_map(lambda g: g / k, g_sum)
    return from_sq_norms(sq_sum, mean_grad, k, b_small)


# --- separate EMAs of |G|^2 and tr(Sigma), ratio after averaging (App. A) -----------------

class EMAState(NamedTuple):
    """Raw (biased) EMAs; ``weight`` = 1 - prod(decay) is the bias-correction denominator."""

    g2: jax.Array
    trace: jax.Array
    weight: jax.Array
    count: jax.Array


def ema_init() -> EMAState:
    z = lambda: jnp.zeros((), NORM_DTYPE)  # distinct buffers, so the state can be donated
    return EMAState(z(), z(), z(), jnp.zeros((), jnp.int32))


def ema_update(state: EMAState, g2, trace, decay) -> EMAState:
    """One EMA step of each estimate: m <- decay m + (1 - decay) x (Adam-style, zero init)."""
    decay = jnp.asarray(decay, NORM_DTYPE)
    mix = lambda m, x: decay * m + (1.0 - decay) * jnp.asarray(x, NORM_DTYPE)
    return EMAState(mix(state.g2, g2), mix(state.trace, trace),
                    mix(state.weight, 1.0), state.count + 1)


def ema_values(state: EMAState):
    """Bias-corrected EMAs (|G|^2, tr(Sigma)): each divided by 1 - decay^t (Kingma & Ba 2015).

    Before the first update both are NaN.
    """
    w = jnp.where(state.weight > 0, state.weight, jnp.nan)
    return state.g2 / w, state.trace / w


def b_simple(state: EMAState) -> jax.Array:
    """B_simple = EMA(tr Sigma) / EMA(|G|^2) (bias corrections cancel). NaN while EMA(|G|^2) <= 0,
    which can happen early because the per-step |G|^2 estimate is unbiased but not positive."""
    return jnp.where(state.g2 > 0, state.trace / jnp.where(state.g2 > 0, state.g2, 1.0), jnp.nan)


def metrics(state: EMAState) -> dict:
    """The metrics.jsonl keys: gns_g2, gns_trace (debiased EMAs) and gns_b_simple."""
    g2, trace = ema_values(state)
    return {"gns_g2": g2, "gns_trace": trace, "gns_b_simple": b_simple(state)}
