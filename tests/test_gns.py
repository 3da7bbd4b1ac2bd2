"""Gradient noise scale: the App. A estimators against a closed form, and their three sources.

Problem: linear regression y = x.w* + n, x ~ N(0, I_d), n ~ N(0, s^2), loss 0.5 (x.w - y)^2.
The per-example gradient at w is g = x (x.e - n), e = w - w*. Then
  G = E[g] = E[x x^T] e = e,
  E|g|^2 = E[|x|^2 (x.e)^2] + s^2 E|x|^2 = (d + 2)|e|^2 + d s^2   (E x_j^4 = 3 for a unit Gaussian),
  tr(Sigma) = E|g|^2 - |G|^2 = (d + 1)|e|^2 + d s^2,
so B_simple = tr(Sigma) / |G|^2 = (d + 1) + d s^2 / |e|^2.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling.lm import gns
from scaling.noise_scale import summarize

D = 8
NOISE = 0.7
E_NORM = 1.3
TOLERANCE = 0.05  # stated tolerance of the converged EMA estimate of B_simple (5%)
MC_SAMPLES = 200_000
MC_Z = 5.0


def true_values(d=D, s=NOISE, e_norm=E_NORM):
    g2 = e_norm**2
    trace = (d + 1) * e_norm**2 + d * s**2
    return g2, trace, trace / g2


def problem(seed=0):
    k = jax.random.PRNGKey(seed)
    w_star = jax.random.normal(k, (D,))
    e = jax.random.normal(jax.random.fold_in(k, 1), (D,))
    w = w_star + E_NORM * e / jnp.linalg.norm(e)
    return w, w_star


def sample(key, n, w_star):
    kx, kn = jax.random.split(key)
    x = jax.random.normal(kx, (n, D))
    y = x @ w_star + NOISE * jax.random.normal(kn, (n,))
    return x, y


def loss(w, batch):
    x, y = batch
    return 0.5 * jnp.mean((x @ w - y) ** 2)


grad = jax.grad(loss)


def test_closed_form_matches_monte_carlo():
    """The derivation above, checked once against per-example gradients."""
    w, w_star = problem()
    x, y = sample(jax.random.PRNGKey(7), MC_SAMPLES, w_star)
    per_example = np.asarray(x * (x @ w - y)[:, None], dtype=np.float64)
    g2, trace, _ = true_values()
    mean = per_example.mean(axis=0)
    se_mean = per_example.std(axis=0, ddof=1) / np.sqrt(MC_SAMPLES)
    assert np.all(np.abs(mean - np.asarray(w - w_star)) < MC_Z * se_mean)
    centred_sq = ((per_example - mean) ** 2).sum(axis=1)
    se_trace = centred_sq.std(ddof=1) / np.sqrt(MC_SAMPLES)
    assert abs(centred_sq.mean() - trace) < MC_Z * se_trace


@pytest.fixture(scope="module")
def ema_run():
    """T steps at fixed w: K microbatches of b per step, stats -> separate EMAs (jitted scan)."""
    k, b, steps, decay = 8, 4, 6000, 0.999
    w, w_star = problem()

    def step(state, key):
        x, y = sample(key, k * b, w_star)
        grads_K = jax.vmap(grad, in_axes=(None, 0))(w, (x.reshape(k, b, D), y.reshape(k, b)))
        g2, trace = gns.estimates(gns.from_microbatch_grads(grads_K, b))
        return gns.ema_update(state, g2, trace, decay), (g2, trace)

    keys = jax.random.split(jax.random.PRNGKey(1), steps)
    state, (g2s, traces) = jax.jit(lambda s, ks: jax.lax.scan(step, s, ks))(gns.ema_init(), keys)
    return state, np.asarray(g2s), np.asarray(traces)


def test_per_step_estimates_are_unbiased(ema_run):
    _, g2s, traces = ema_run
    g2, trace, _ = true_values()
    for est, truth in ((g2s, g2), (traces, trace)):
        se = est.std(ddof=1) / np.sqrt(len(est))
        assert abs(est.mean() - truth) < MC_Z * se, (est.mean(), truth, se)


def test_ema_b_simple_converges_to_truth(ema_run):
    state, g2s, _ = ema_run
    g2, trace, b_true = true_values()
    assert (g2s < 0).any()  # single-step |G|^2 estimates do go negative: why the EMAs are separate
    est = float(gns.b_simple(state))
    assert abs(est / b_true - 1) < TOLERANCE, (est, b_true)
    g2_hat, trace_hat = (float(v) for v in gns.ema_values(state))
    assert abs(g2_hat / g2 - 1) < TOLERANCE and abs(trace_hat / trace - 1) < TOLERANCE
    m = gns.metrics(state)
    assert set(m) == {"gns_g2", "gns_trace", "gns_b_simple"}
    assert float(m["gns_b_simple"]) == pytest.approx(float(m["gns_trace"]) / float(m["gns_g2"]), rel=1e-6)


def test_ema_bias_correction():
    state = gns.ema_init()
    assert np.isnan(float(gns.b_simple(state))) and np.isnan(float(gns.ema_values(state)[0]))
    state = gns.ema_update(state, 2.0, 6.0, 0.99)
    assert [float(v) for v in gns.ema_values(state)] == pytest.approx([2.0, 6.0])  # not 0.02, 0.06
    for _ in range(5):
        state = gns.ema_update(state, 2.0, 6.0, 0.99)
    assert [float(v) for v in gns.ema_values(state)] == pytest.approx([2.0, 6.0], rel=1e-5)
    assert float(gns.b_simple(state)) == pytest.approx(3.0, rel=1e-5)
    assert int(state.count) == 6
    negative = gns.ema_update(gns.ema_init(), -1.0, 5.0, 0.9)
    assert np.isnan(float(gns.b_simple(negative)))


def test_unbiased_estimates_invert_expected_norms():
    """E|G_B|^2 = |G|^2 + tr/B at two sizes -> the estimators return (|G|^2, tr) exactly."""
    g2, trace = 0.3, 12.0
    for b_small, b_big in ((1, 2), (4, 32), (16, 4096)):
        est = gns.unbiased_estimates(g2 + trace / b_small, g2 + trace / b_big, b_small, b_big)
        assert [float(v) for v in est] == pytest.approx([g2, trace], rel=1e-5)
    with pytest.raises(ValueError):
        gns.unbiased_estimates(1.0, 1.0, 32, 32)  # K = 1: a single batch size


# --- the three sources agree on the same data ------------------------------------------------

K, B_SMALL = 4, 8


def fixed_batch():
    w, w_star = problem()
    return w, sample(jax.random.PRNGKey(3), K * B_SMALL, w_star)


def accumulation_stats(w, batch):
    """What a trainer's lax.scan accumulation loop does: carry grad sum and sq-norm sum."""
    x, y = batch
    micro = (x.reshape(K, B_SMALL, D), y.reshape(K, B_SMALL))

    def body(carry, mb):
        g_sum, sq_sum = carry
        g = grad(w, mb)
        return (g_sum + g, sq_sum + gns.sq_norm(g)), None

    (g_sum, sq_sum), _ = jax.lax.scan(body, (jnp.zeros(D), jnp.zeros(())), micro)
    return gns.from_sq_norms(sq_sum, g_sum / K, K, B_SMALL)


DATA_PARALLEL_SCRIPT = textwrap.dedent(f"""
    import json, os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count={K}"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, PartitionSpec as P
    from scaling.lm import gns
    data = json.loads(input())
    w, x, y = (jnp.asarray(data[k], jnp.float32) for k in ("w", "x", "y"))
    grad = jax.grad(lambda w, x, y: 0.5 * jnp.mean((x @ w - y) ** 2))
    mesh = Mesh(np.array(jax.devices()), ("data",))
    def per_device(w, x, y):  # each device holds B_small examples
        local = grad(gns.device_varying(w, "data"), x, y)  # this device's own gradient
        s = gns.from_device_grads(local, "data", x.shape[0], {K})
        return jnp.stack([s.sq_norm_small, s.sq_norm_big])
    out = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P("data"), P("data")),
                                out_specs=P()))(w, x, y)
    print(json.dumps({{"devices": jax.device_count(), "stats": np.asarray(out).tolist()}}))
""")


def test_accumulation_data_parallel_and_split_agree():
    w, batch = fixed_batch()
    x, y = batch
    acc = accumulation_stats(w, batch)
    stacked = gns.from_microbatch_grads(
        jax.vmap(grad, in_axes=(None, 0))(w, (x.reshape(K, B_SMALL, D), y.reshape(K, B_SMALL))), B_SMALL)
    split = gns.split_batch_stats(grad, w, batch, K, B_SMALL)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    payload = json.dumps({"w": np.asarray(w).tolist(), "x": np.asarray(x).tolist(), "y": np.asarray(y).tolist()})
    proc = subprocess.run([sys.executable, "-c", DATA_PARALLEL_SCRIPT], input=payload, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dp = json.loads(proc.stdout.strip().splitlines()[-1])
    assert dp["devices"] == K
    reference = np.array([float(acc.sq_norm_small), float(acc.sq_norm_big)])
    for other in (stacked, split):
        assert (other.b_small, other.b_big) == (B_SMALL, K * B_SMALL)
        np.testing.assert_allclose([float(other.sq_norm_small), float(other.sq_norm_big)], reference, rtol=1e-5)
    np.testing.assert_allclose(dp["stats"], reference, rtol=1e-5)
    # and the estimates built from them agree (the big-batch norm is the full-batch gradient's)
    assert float(acc.sq_norm_big) == pytest.approx(float(gns.sq_norm(grad(w, batch))), rel=1e-5)
    np.testing.assert_allclose(gns.estimates(acc), gns.unbiased_estimates(*dp["stats"], B_SMALL, K * B_SMALL),
                               rtol=1e-4)


def test_sq_norm_is_fp32_over_a_pytree():
    tree = {"a": jnp.full((3, 2), 2.0, jnp.bfloat16), "b": [jnp.ones(4)]}
    out = gns.sq_norm(tree)
    assert out.dtype == jnp.float32 and float(out) == 28.0


# --- summary --------------------------------------------------------------------------------

def test_summarize_interpolates_and_time_averages():
    steps = [0, 10, 20, 40, 80, 160]  # uneven, like the eval schedule
    values = [None, float("nan"), 10.0, 20.0, 20.0, 60.0]  # warm-up values are dropped
    out = summarize(steps, values, crossing_step=30.0)
    assert out["b_simple_at_target"] == pytest.approx(15.0)
    assert out["b_simple_mean"] == pytest.approx((10 + 15) / 2)  # trapezoid on [20, 30]
    assert out["gns_points"] == 4 and out["b_simple_final"] == 60.0
    no_cross = summarize(steps, values, crossing_step=None)
    assert no_cross["b_simple_at_target"] is None
    # area: [20,40] 300, [40,80] 800, [80,160] 3200 -> 4300 / 140
    assert no_cross["b_simple_mean"] == pytest.approx(4300 / 140)


def test_summarize_run_critical_batch_weights_by_s_min():
    """App. D: B_crit(run) = sum B_noise dS_min / sum dS_min, dS_min = dS / (1 + B_noise / B)."""
    steps = np.arange(0, 101)
    constant = summarize(steps, np.full(101, 50.0), crossing_step=None, batch_size=200)
    assert constant["b_simple_crit"] == pytest.approx(50.0)
    values = np.where(steps < 50, 10.0, 1000.0)  # a step change, so piecewise-linear pieces matter
    out = summarize(steps, values, crossing_step=None, batch_size=100)
    s, v = steps.astype(float), values.astype(float)
    w = 1 / (1 + v / 100)
    expected = np.trapezoid(w * v, s) / np.trapezoid(w, s)
    assert out["b_simple_crit"] == pytest.approx(expected)
    assert out["b_simple_crit"] < out["b_simple_mean"]  # high-noise stretches cost fewer S_min


def test_summarize_empty_and_mismatched():
    assert summarize([0, 1], [None, -3.0], crossing_step=1.0)["b_simple_mean"] is None
    with pytest.raises(ValueError):
        summarize([0, 1, 2], [1.0, 2.0], crossing_step=None)
