"""scaling.lm.loss: the chunked cross-entropy equals the plain one (loss and gradients) and never
holds the [B, L, V] logits, forward or backward."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling.errors import ScalingError
from scaling.lm.config import ModelConfig
from scaling.lm.loss import chunked_cross_entropy, cross_entropy, logits
from scaling.lm.model import Transformer, build, init_params

B, L, D, V = 3, 12, 16, 100  # chunk 5 divides neither L nor V
RTOL = 1e-5  # float32: only the summation order differs


def plain(hidden, unembed, targets):
    return cross_entropy(logits(hidden, unembed), targets)


def value_and_grads(loss, *chunk):
    """Jitted (loss, (d/d hidden, d/d unembed)) of ``loss(hidden, unembed, targets[, chunk])``."""
    return jax.jit(jax.value_and_grad(lambda h, w, t: loss(h, w, t, *chunk), argnums=(0, 1)))


def inputs(seed=0, dtype=jnp.float32):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    hidden = jax.random.normal(k1, (B, L, D), jnp.float32).astype(dtype)
    unembed = 0.3 * jax.random.normal(k2, (D, V), jnp.float32)
    targets = jax.random.randint(k3, (B, L), 0, V)
    return hidden, unembed, targets


@pytest.mark.parametrize("chunk", [5, L, L + 3])
def test_chunked_equals_plain_loss_and_gradients(chunk):
    hidden, unembed, targets = inputs()
    loss_p, (dh_p, dw_p) = value_and_grads(plain)(hidden, unembed, targets)
    loss_c, (dh_c, dw_c) = value_and_grads(chunked_cross_entropy, chunk)(hidden, unembed, targets)
    assert float(loss_c) == pytest.approx(float(loss_p), rel=RTOL)
    assert float(loss_p) > math.log(V) * 0.5  # a real loss, not a degenerate one
    np.testing.assert_allclose(dh_c, dh_p, rtol=RTOL, atol=1e-7)
    np.testing.assert_allclose(dw_c, dw_p, rtol=RTOL, atol=1e-7)
    forward_only = jax.jit(chunked_cross_entropy, static_argnums=3)(hidden, unembed, targets, chunk)
    assert float(forward_only) == pytest.approx(float(loss_p), rel=RTOL)


def test_gradient_scales_with_the_cotangent():
    hidden, unembed, targets = inputs(1)
    f = jax.jit(jax.grad(lambda h, w: 3.0 * chunked_cross_entropy(h, w, targets, 5), argnums=(0, 1)))
    g = jax.jit(jax.grad(lambda h, w: 3.0 * plain(h, w, targets), argnums=(0, 1)))
    for a, b in zip(f(hidden, unembed), g(hidden, unembed)):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-7)


def test_bfloat16_hidden_states_match_the_plain_mixed_precision_loss():
    """bf16 matmuls, fp32 logits: same loss; gradients within bf16 rounding (the chunked unembedding
    gradient accumulates in fp32, the plain one in bf16)."""
    hidden, unembed, targets = inputs(2, jnp.bfloat16)
    loss_p, (dh_p, dw_p) = value_and_grads(plain)(hidden, unembed, targets)
    loss_c, (dh_c, dw_c) = value_and_grads(chunked_cross_entropy, 5)(hidden, unembed, targets)
    assert dh_c.dtype == dh_p.dtype == jnp.bfloat16 and dw_c.dtype == dw_p.dtype == jnp.float32
    assert float(loss_c) == pytest.approx(float(loss_p), rel=1e-5)
    rel = lambda a, b: float(jnp.linalg.norm((a - b).astype(jnp.float32)) / jnp.linalg.norm(b.astype(jnp.float32)))  # noqa: E731
    assert rel(dh_c, dh_p) < 1e-2 and rel(dw_c, dw_p) < 1e-2


def test_vmapped_runs_match_each_run_alone():
    """scaling.lm.many vmaps the step over K runs: the custom gradient must batch."""
    hidden, unembed, targets = inputs(3)
    stacked = jnp.stack([unembed, 2.0 * unembed])
    grad = jax.grad(lambda w: chunked_cross_entropy(hidden, w, targets, 5))
    together = jax.jit(jax.vmap(grad))(stacked)
    alone = jax.jit(grad)
    for k in range(2):
        np.testing.assert_allclose(together[k], alone(stacked[k]), rtol=RTOL, atol=1e-7)


def tiny_model(**overrides):
    config = ModelConfig(d_model=16, n_layers=1, n_heads=2, seq_len=L, **overrides)
    model = build(config, 250)  # padded to 256
    return model, jax.jit(lambda key: init_params(model, key))(jax.random.key(0))


def test_the_model_loss_through_hidden_states_equals_the_logits_loss():
    model, params = tiny_model(loss_chunk=5)
    batch = jax.random.randint(jax.random.key(4), (B, L + 1), 0, 250)

    def plain_loss(p):
        return cross_entropy(model.apply({"params": p}, batch[:, :-1]), batch[:, 1:])

    def chunked_loss(p):
        hidden, unembed = model.apply({"params": p}, batch[:, :-1], method=Transformer.hidden)
        return chunked_cross_entropy(hidden, unembed, batch[:, 1:], model.config.loss_chunk)

    loss_p, g_p = jax.jit(jax.value_and_grad(plain_loss))(params)
    loss_c, g_c = jax.jit(jax.value_and_grad(chunked_loss))(params)
    assert float(loss_c) == pytest.approx(float(loss_p), rel=RTOL)
    flat_p, flat_c = jax.tree_util.tree_leaves_with_path(g_p), jax.tree_util.tree_leaves(g_c)
    assert len(flat_p) == len(flat_c) > 5
    for (path, a), b in zip(flat_p, flat_c):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-7, err_msg=jax.tree_util.keystr(path))


def shapes_in(jaxpr) -> set:
    """Every array shape in a jaxpr, its sub-jaxprs (scan bodies, custom rules) included."""
    found = set()
    for eqn in jaxpr.eqns:
        for var in list(eqn.invars) + list(eqn.outvars):
            aval = getattr(var, "aval", None)
            if hasattr(aval, "shape"):
                found.add(tuple(aval.shape))
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else [param]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    found |= shapes_in(inner)
    return found


def test_no_array_holds_the_whole_logits_forward_or_backward():
    hidden, unembed, targets = inputs()
    grad_plain = jax.make_jaxpr(jax.value_and_grad(plain, argnums=(0, 1)))(hidden, unembed, targets)
    grad_chunked = jax.make_jaxpr(jax.value_and_grad(chunked_cross_entropy, argnums=(0, 1)),
                                  static_argnums=(3,))(hidden, unembed, targets, 5)
    whole = (B, L, V)
    assert whole in shapes_in(grad_plain.jaxpr)  # the check sees the logits where they are
    chunked_shapes = shapes_in(grad_chunked.jaxpr)
    assert (B, 5, V) in chunked_shapes
    assert not [s for s in chunked_shapes if math.prod(s) >= B * L * V]


def test_compiled_temporaries_stay_below_one_logits_array():
    """XLA's buffer assignment of loss + gradients: the plain version needs at least the fp32
    logits; the chunked one needs less than half of that."""
    b, l, d, v = 4, 64, 32, 4096
    hidden = jnp.ones((b, l, d), jnp.float32)
    unembed = jnp.ones((d, v), jnp.float32)
    targets = jnp.zeros((b, l), jnp.int32)
    logits_bytes = b * l * v * 4

    def temp_bytes(fn):
        exe = jax.jit(jax.value_and_grad(fn, argnums=(0, 1))).lower(hidden, unembed, targets).compile()
        return exe.memory_analysis().temp_size_in_bytes

    plain_temp = temp_bytes(plain)
    chunked_temp = temp_bytes(lambda h, w, t: chunked_cross_entropy(h, w, t, 8))
    assert plain_temp >= logits_bytes
    assert chunked_temp < logits_bytes / 2


@pytest.mark.parametrize("chunk", [0, -3, 2.5, True])
def test_a_bad_chunk_is_refused_in_one_line(chunk):
    hidden, unembed, targets = inputs()
    with pytest.raises(ScalingError, match="positive number of sequence positions"):
        chunked_cross_entropy(hidden, unembed, targets, chunk)


def test_config_field_defaults_to_the_plain_loss_and_is_checked():
    assert ModelConfig().loss_chunk is None
    with pytest.raises(ScalingError, match="model.loss_chunk"):
        ModelConfig(loss_chunk=0)


def test_a_run_with_loss_chunk_trains_like_the_plain_loss(tmp_path):
    """The trainer's step (scaling.lm.step.loss_fn) uses the chunked loss when model.loss_chunk is
    set (7 does not divide seq_len 32): the records match a plain run up to float rounding."""
    from scaling import rundir
    from scaling.lm.config import TrainConfig
    from scaling.lm.train import train
    from train_helpers import tiny_spec

    plain = train(TrainConfig.from_dict(tiny_spec(steps=30)), tmp_path / "plain")
    chunked = train(TrainConfig.from_dict(tiny_spec(steps=30, **{"model.loss_chunk": 7})), tmp_path / "chunked")
    assert chunked["final_eval_loss"] == pytest.approx(plain["final_eval_loss"], rel=1e-4)
    a, b = rundir.read_metrics(tmp_path / "plain"), rundir.read_metrics(tmp_path / "chunked")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    np.testing.assert_allclose([r["train_loss"] for r in a if "train_loss" in r],
                               [r["train_loss"] for r in b if "train_loss" in r], rtol=1e-4)
