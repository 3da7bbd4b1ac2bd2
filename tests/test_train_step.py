"""The pure train step: gradient accumulation, data parallelism over 4 simulated devices, GNS hook."""

import json
import os
import subprocess
import sys
import textwrap

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from scaling.lm import mesh as parallel, optim, step as step_lib, train as train_lib  # noqa: E402
from scaling.lm.config import TrainConfig  # noqa: E402
from scaling.lm.model import build  # noqa: E402
from scaling.lm.step import StepShape  # noqa: E402
from train_helpers import tiny_spec  # noqa: E402

BYTE_VOCAB = 257
B, L = 16, 32


def tiny_config(**kw):
    spec = tiny_spec(steps=100)
    spec["ewa"] = {"decays": [0.9]}
    spec.update(kw)
    return TrainConfig.from_dict(spec)


@pytest.fixture(scope="module")
def setup():
    config = tiny_config()
    model = build(config.model, BYTE_VOCAB)
    batch = np.random.default_rng(0).integers(0, BYTE_VOCAB, size=(B, L + 1)).astype(np.int32)
    return config, model, batch


@pytest.fixture(scope="module")
def steps(setup):
    """The trainer's own cached functions: whole batch, and 4 microbatches with the GNS statistics."""
    config, model, _ = setup
    mesh = parallel.data_mesh()
    common = dict(batch_size=B, seq_len=L, n_ewa=1, schedule="constant",
                  gns_every=TrainConfig.gns_every, gns_split=TrainConfig.gns_split)
    return {1: step_lib.compiled(model, StepShape(microbatch_size=B, gns=False, **common), mesh),
            4: step_lib.compiled(model, StepShape(microbatch_size=B // 4, gns=True, **common), mesh)}


def fresh_state(fns):
    return fns.init(np.int32(0))  # steps donate their input state: one fresh state per call


def test_gradient_accumulation_gives_the_big_batch_update(setup, steps):
    config, model, batch = setup
    # eps of the order of the gradients keeps Adam's first step g / (|g| + eps) Lipschitz, so equal
    # gradients up to float rounding give equal updates (at eps 1e-8 it is ~lr * sign(g))
    hp = optim.hparams(tiny_config(optim={"lr": 1e-2, "eps": 1e-3, "warmup_tokens": 0}))
    state = fresh_state(steps[1])
    big, m_big = steps[1].step(fresh_state(steps[1]), batch, hp)
    acc, m_acc = steps[4].step(fresh_state(steps[4]), batch, hp)
    assert int(big.step) == int(acc.step) == 1
    np.testing.assert_allclose(m_acc["train_loss"], m_big["train_loss"], rtol=1e-6)
    np.testing.assert_allclose(m_acc["grad_norm"], m_big["grad_norm"], rtol=1e-5)
    # Adam's first moment is (1 - beta1) * gradient: the accumulated gradient equals the big one
    for a, b in zip(jax.tree_util.tree_leaves(acc.opt_state), jax.tree_util.tree_leaves(big.opt_state)):
        scale = float(jnp.abs(b).max()) if b.size else 0.0
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale + 1e-12)
    lr = float(m_big["lr"])
    for a, b in zip(jax.tree_util.tree_leaves(acc.params), jax.tree_util.tree_leaves(big.params)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-3 * lr)
    moved = max(float(jnp.abs(b - p0).max()) for b, p0 in
                zip(jax.tree_util.tree_leaves(big.params), jax.tree_util.tree_leaves(state.params)))
    assert moved > 0.1 * lr  # the update is real


def test_gns_statistics_from_microbatches(setup, steps):
    config, model, batch = setup
    _, m = steps[4].step(fresh_state(steps[4]), batch, optim.hparams(config))
    # |G_big|^2 of the mean gradient is below the mean |G_small|^2 of its microbatches
    assert 0 < float(m["grad_sq"]) < float(m["grad_sq_micro"])
    np.testing.assert_allclose(m["grad_sq"], m["grad_norm"] ** 2, rtol=1e-6)


def test_hyperparameters_are_traced_not_recompiled(setup, steps):
    config, model, batch = setup
    step = steps[1].step
    hp1 = optim.hparams(config)
    hp2 = optim.hparams(tiny_config(optim={"lr": 3e-2, "beta2": 0.99, "warmup_tokens": 4 * B * L},
                                    ewa={"decays": [0.5]}, seed=3))
    s1, m1 = step(fresh_state(steps[1]), batch, hp1)
    compiled_before = step._cache_size()
    s2, m2 = step(fresh_state(steps[1]), batch, hp2)
    assert step._cache_size() == compiled_before  # new lr, beta2, warmup, EWA decay, seed: no recompile
    assert float(m1["lr"]) != float(m2["lr"])


FOUR_DEVICE_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax
    from scaling.lm.config import TrainConfig
    from scaling.lm.train import train
    assert jax.device_count() == 4, jax.devices()
    config = TrainConfig.from_dict(json.loads(sys.argv[1]))
    summary = train(config, sys.argv[2])
    print(json.dumps({"n_devices": summary["n_devices"]}))
""")


def test_four_simulated_devices_match_one_device(tmp_path):
    """Same global batch on 4 CPU devices (with accumulation) vs 1 device: the same losses."""

    spec = tiny_spec(steps=16, log_every=1)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", FOUR_DEVICE_SCRIPT,
                          json.dumps({**spec, "microbatch_size": 8}), str(tmp_path / "four")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["n_devices"] == 4

    from scaling import rundir
    train_lib.train(TrainConfig.from_dict(spec), tmp_path / "one")
    four, one = rundir.read_metrics(tmp_path / "four"), rundir.read_metrics(tmp_path / "one")
    assert [r["step"] for r in four] == [r["step"] for r in one] and len(one) >= 16
    for key in ("train_loss", "eval_loss", "eval_loss_ewa"):
        a = [r[key] for r in four if key in r]
        b = [r[key] for r in one if key in r]
        assert len(a) == len(b) > 0
        # equal up to float reduction order, which Adam's sign-like steps amplify over time
        np.testing.assert_allclose(a[:3], b[:3], rtol=2e-5)
        np.testing.assert_allclose(a, b, rtol=2e-3)


def test_microbatch_from_memory_budget():
    from scaling.errors import ScalingError

    config = tiny_config()
    per_seq = parallel.activation_bytes_per_sequence(32, 2, 2, L, 320)
    assert per_seq > 320 * L * 8  # logits at least
    pick = lambda gb, n=1: train_lib.microbatch_size(tiny_config(microbatch_memory_gb=gb), n, 320)  # noqa: E731
    assert pick(100.0) == B  # everything fits: no accumulation
    assert pick(4.5 * per_seq / 1e9) == 4  # largest divisor of 16 with <= 4.5 sequences
    assert pick(4.5 * per_seq / 1e9, n=2) == 8  # per device: 4 sequences on each of 2 devices
    with pytest.raises(ScalingError, match="too small"):
        pick(0.5 * per_seq / 1e9)
    with pytest.raises(ScalingError, match="not both"):
        tiny_config(microbatch_size=4, microbatch_memory_gb=1.0)
    assert train_lib.microbatch_size(config, 1, 320) == B


# One optimizer step of tiny_spec() at seed 0 on the first batch of the default corpus. These are
# golden values: they change only when the model, its init, the loss, the optimizer, the schedule
# or the data order change. If such a change is intended, rerun this test, check that the new
# values are plausible (loss near ln(vocab) at init, lr = 0.1 x lr at the first warmup step) and
# paste them here, saying why in the commit message.
GOLDEN_STEP = {"train_loss": 5.785077095031738, "grad_norm": 1.260286569595337, "lr": 0.0010000000474974513}


def test_golden_single_step():
    from scaling.data.dataset import open_dataset
    from scaling.data.loader import BatchLoader
    from scaling.lm.step import compiled, step_shape

    config = TrainConfig.from_dict(tiny_spec())
    dataset = open_dataset(config.data.source, config.data.tokenizer)
    model = build(config.model, dataset.vocab_size)
    mesh = parallel.data_mesh()
    fns = compiled(model, step_shape(config, B), mesh)
    batch = BatchLoader(dataset.train, seq_len=config.seq_len, batch_size=B, seed=config.data.seed,
                        token_budget=config.token_cap).next_batch()
    state, metrics = fns.step(fns.init(np.int32(config.seed)), parallel.shard_batch(batch, parallel.batch_sharding(mesh)),
                              parallel.put_replicated(optim.hparams(config), mesh))
    got = {k: float(metrics[k]) for k in GOLDEN_STEP}
    assert int(state.step) == 1
    assert got == pytest.approx(GOLDEN_STEP, rel=1e-5), (
        f"one step of the tiny config moved: {got} (golden {GOLDEN_STEP}); if the change is intended, "
        "update GOLDEN_STEP in tests/test_train_step.py as its comment says")
