"""AdamW, LR schedules and EWA bias correction against hand computations."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import pytest  # noqa: E402

from scaling.lm import ewa, optim  # noqa: E402
from scaling.lm.config import TrainConfig  # noqa: E402

SEQ = 8  # tokens per step = batch 1 x seq 8


def config(schedule="constant", total=101, warmup_steps=10, **optim_kw):
    return TrainConfig.from_dict({
        "model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "seq_len": SEQ},
        "data": {"tokens": total * SEQ},
        "optim": {"lr": 0.01, "schedule": schedule, "warmup_tokens": warmup_steps * SEQ,
                  "warmup_init_fraction": 0.1, "final_lr_fraction": 0.1, "decay_fraction": 0.2, **optim_kw},
        "batch_size": 1})


def test_constant_with_linear_warmup():
    lr = optim.schedule_values(config("constant"), [0, 5, 9, 10, 50, 100])
    np.testing.assert_allclose(lr, [0.001, 0.01 * (0.1 + 0.9 * 0.5), 0.01 * (0.1 + 0.9 * 0.9), 0.01, 0.01, 0.01],
                               rtol=1e-6)


def test_cosine_to_floor():
    # warmup 10, last step 100: p = (t - 10) / 90
    lr = optim.schedule_values(config("cosine"), [10, 55, 100])
    np.testing.assert_allclose(lr, [0.01, 0.01 * (0.1 + 0.9 * 0.5), 0.001], rtol=1e-5)


def test_warmup_stable_decay():
    # 101 steps, decay over round(0.2 * 101) = 20 steps: stable to step 81, linear to 0.1 lr at 100
    lr = optim.schedule_values(config("wsd"), [0, 50, 81, 91, 100])
    np.testing.assert_allclose(lr, [0.001, 0.01, 0.01, 0.01 * (1 - 0.9 * 10 / 19), 0.001], rtol=1e-5)


def test_a_horizon_shorter_than_the_run_decays_by_it_and_stays_at_the_floor():
    # a run of 301 steps whose schedule is planned for 101 (horizon 101 x SEQ tokens): the same
    # cosine as a 101-step run up to step 100, then 0.1 x lr until the run's last step
    long = config("cosine", total=301, horizon_tokens=101 * SEQ)
    assert (long.total_steps, long.schedule_steps) == (301, 101)
    np.testing.assert_allclose(optim.schedule_values(long, [10, 55, 100, 200, 300]),
                               [0.01, 0.01 * (0.1 + 0.9 * 0.5), 0.001, 0.001, 0.001], rtol=1e-5)
    wsd = optim.schedule_values(config("wsd", total=301, horizon_tokens=101 * SEQ), [81, 91, 100, 300])
    np.testing.assert_allclose(wsd, [0.01, 0.01 * (1 - 0.9 * 10 / 19), 0.001, 0.001], rtol=1e-5)


def test_a_horizon_longer_than_the_run_is_cut_by_the_run():
    c = config("cosine", total=101, horizon_tokens=201 * SEQ)
    # p = (t - 10) / 190: at the run's last step (100) the lr has not reached its floor
    np.testing.assert_allclose(optim.schedule_values(c, [100]),
                               [0.01 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 90 / 190)))], rtol=1e-5)


def test_no_horizon_is_the_run_and_keeps_the_run_id():
    from scaling.identity import run_id
    plain, explicit = config("cosine"), config("cosine", horizon_tokens=None)
    assert plain.schedule_steps == plain.total_steps == 101
    assert run_id("lm", plain) == run_id("lm", explicit)
    with pytest.raises(Exception, match="horizon_tokens must be positive"):
        config("cosine", horizon_tokens=0)


def test_no_warmup_starts_at_full_lr():
    np.testing.assert_allclose(optim.schedule_values(config(warmup_steps=0), [0, 1]), [0.01, 0.01], rtol=1e-6)


def test_beta2_from_half_life_in_tokens():
    c = config(beta2_half_life_tokens=SEQ * 10)  # halves after 10 steps
    assert c.beta2 == pytest.approx(0.5 ** 0.1)
    assert float(optim.hparams(c)["beta2"]) == pytest.approx(0.5 ** 0.1, rel=1e-6)


def test_adamw_matches_optax_reference():
    """Our traced-hparams AdamW + clipping equals optax.adamw with the same numbers."""
    c = config(warmup_steps=0, weight_decay=0.1, clip_norm=0.5, beta1=0.9, beta2=0.99)
    hp = optim.hparams(c)
    params = {"w": jnp.ones((3, 4)), "scale": jnp.ones((4,))}
    ref_tx = optax.chain(optax.clip_by_global_norm(0.5),
                         optax.adamw(0.01, b1=0.9, b2=0.99, eps=1e-8, weight_decay=0.1,
                                     mask=lambda p: jax.tree_util.tree_map(lambda x: x.ndim >= 2, p)))
    ref_state, state = ref_tx.init(params), optim.init_state(params)
    ours, ref = params, params
    ours_update = jax.jit(lambda g, s, p, t: optim.update(g, s, p, t, hp, "constant"))
    ref_update = jax.jit(lambda g, s, p: ref_tx.update(g, s, p))
    rng = np.random.default_rng(0)
    for t in range(4):
        g = {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32), "scale": jnp.asarray(rng.normal(size=4), jnp.float32)}
        ours, state, lr, gnorm = ours_update(g, state, ours, jnp.int32(t))
        upd, ref_state = ref_update(g, ref_state, ref)
        ref = optax.apply_updates(ref, upd)
        assert float(gnorm) == pytest.approx(float(optax.tree.norm(g)), rel=1e-6)
    for k in params:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-6, atol=1e-7)


def test_clip_norm_zero_disables_clipping():
    hp = optim.hparams(config(clip_norm=0.0))
    g = {"w": jnp.full((2, 2), 100.0)}
    clipped, norm = optim.clip_by_global_norm(g, hp["clip_norm"])
    np.testing.assert_array_equal(clipped["w"], g["w"])
    assert float(norm) == pytest.approx(200.0)


def test_ewa_bias_correction_by_hand():
    decays = jnp.asarray([0.9, 0.5], jnp.float32)
    ws = [1.0, 2.0, 4.0]
    state = ewa.init({"w": jnp.zeros(())}, 2)
    for w in ws:
        state = ewa.update(state, {"w": jnp.asarray(w)}, decays)
    out = ewa.corrected(state, decays, jnp.int32(3))["w"]
    for i, tau in enumerate([0.9, 0.5]):
        a = 0.0
        for w in ws:
            a = tau * a + (1 - tau) * w
        expected = a / (1 - tau ** 3)
        # equivalently the normalised weighted mean of the iterates
        weights = np.array([tau ** 2, tau, 1.0])
        assert expected == pytest.approx(float(np.dot(weights, ws) / weights.sum()))
        assert float(out[i]) == pytest.approx(expected, rel=1e-6)


def test_ewa_after_one_step_equals_the_weights():
    decays = jnp.asarray([0.999], jnp.float32)
    state = ewa.update(ewa.init({"w": jnp.zeros(3)}, 1), {"w": jnp.asarray([1.0, -2.0, 3.0])}, decays)
    np.testing.assert_allclose(ewa.corrected(state, decays, jnp.int32(1))["w"][0], [1.0, -2.0, 3.0], rtol=1e-5)
