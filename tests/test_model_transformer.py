"""The OLMo-style transformer: causality, parameter counts, FLOPs, mixed precision."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from scaling.lm.config import ModelConfig  # noqa: E402
from scaling.lm.model import (build, count_params, flops_per_token, init_params, padded_vocab,  # noqa: E402
                           total_params)

BYTE_VOCAB = 257


@pytest.fixture(scope="module")
def tiny():
    config = ModelConfig(d_model=32, n_layers=2, n_heads=4, seq_len=16)
    model = build(config, BYTE_VOCAB)
    params = jax.jit(lambda k: init_params(model, k))(jax.random.key(0))
    apply = jax.jit(lambda p, x: model.apply({"params": p}, x))
    return config, model, params, apply


def test_causality_future_tokens_never_change_earlier_logits(tiny):
    config, model, params, apply = tiny
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, BYTE_VOCAB, size=(2, config.seq_len)).astype(np.int32)
    base = np.asarray(apply(params, tokens))
    for k in (0, 5, config.seq_len - 1):
        changed = tokens.copy()
        changed[:, k] = (changed[:, k] + 1) % BYTE_VOCAB
        out = np.asarray(apply(params, changed))
        np.testing.assert_array_equal(out[:, :k], base[:, :k])  # strictly earlier: bit-identical
        assert np.abs(out[:, k:] - base[:, k:]).max() > 1e-6  # the changed position and later do move


@pytest.mark.parametrize("d_model,n_layers,n_heads", [(32, 1, 2), (64, 3, 4), (48, 2, 6)])
def test_parameter_counts_match_formulas(d_model, n_layers, n_heads):
    config = ModelConfig(d_model=d_model, n_layers=n_layers, n_heads=n_heads, seq_len=8)
    model = build(config, BYTE_VOCAB)
    shapes = jax.eval_shape(lambda: init_params(model, jax.random.key(0)))
    counts = count_params(shapes)
    assert counts["non_embedding"] == 12 * n_layers * d_model ** 2 == config.non_embedding_params
    assert counts["embedding"] == 2 * model.vocab_size * d_model  # untied input and output
    assert counts["total"] == total_params(config, model.vocab_size)
    assert model.vocab_size == padded_vocab(BYTE_VOCAB) and model.vocab_size % 64 == 0
    assert model.vocab_size >= BYTE_VOCAB


def test_no_biases_anywhere(tiny):
    _, _, params, _ = tiny
    names = ["/".join(str(getattr(k, "key", k)) for k in path)
             for path, _ in jax.tree_util.tree_leaves_with_path(params)]
    assert names and not [n for n in names if "bias" in n]


def test_flops_per_token_formula():
    config = ModelConfig(d_model=64, n_layers=2, n_heads=4, seq_len=32)
    V, L = 320, 32
    expected = 6 * (12 * 2 * 64 ** 2 + 64 * V) + 12 * 2 * 64 * L
    assert flops_per_token(config, V, L) == expected


def test_bfloat16_compute_keeps_float32_params_and_logits(tiny):
    config, _, params, apply = tiny
    bf = build(ModelConfig(d_model=32, n_layers=2, n_heads=4, seq_len=16, dtype="bfloat16"), BYTE_VOCAB)
    tokens = jnp.arange(32, dtype=jnp.int32).reshape(2, 16) % BYTE_VOCAB
    logits = jax.jit(lambda p, x: bf.apply({"params": p}, x))(params, tokens)
    assert logits.dtype == jnp.float32
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params))
    ref = np.asarray(apply(params, tokens))
    assert np.abs(np.asarray(logits) - ref).max() < 0.05 * np.abs(ref).max() + 1e-2  # bf16 ~ fp32


def test_vocab_smaller_than_tokenizer_rejected():
    from scaling.errors import ScalingError

    with pytest.raises(ScalingError, match="smaller than the tokenizer"):
        build(ModelConfig(d_model=32, n_layers=1, n_heads=2, seq_len=8, vocab_size=100), BYTE_VOCAB)
