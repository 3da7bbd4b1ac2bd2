"""The OLMo-style decoder-only transformer that the CBS paper trains (Zhang et al. 2024, Sec. 3).

Pre-norm blocks (LayerNorm without bias), rotary position embeddings (Su et al. 2021),
QK-normalisation per head (Dehghani et al. 2023; Wortsman et al. 2023), a GELU MLP of
``mlp_ratio`` x width, no biases anywhere, and untied input/output embeddings. Tensor names
carry their shapes (nanodo's habit): B batch, L sequence, D d_model, N heads, H head dim,
F MLP width, V vocabulary.

Parameters are float32; ``ModelConfig.dtype = "bfloat16"`` computes the matmuls in bf16
(mixed precision) while the logits, the loss and the optimizer state stay float32.

Counts: N = 12 * n_layers * d_model^2 non-embedding parameters (4 D^2 attention + 8 D^2 MLP
per layer; Kaplan et al. 2020, Table 1) -- the norms' scales are counted in the total only.
Training FLOPs per token: 6 * (N + D * V) for the matmuls (forward + backward, the unembedding
included, the embedding lookup free) plus 12 * n_layers * D * L for attention scores and
values (PaLM, Chowdhery et al. 2022, App. B; causal masking not discounted).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import flax.linen as nn

from scaling.lm.config import ModelConfig
from scaling.lm.loss import logits

ROPE_THETA = 10_000.0  # rotary base frequency (Su et al. 2021)
NORM_EPS = 1e-6
VOCAB_PAD_MULTIPLE = 64  # vocabulary rows padded to a multiple of this (matmul-friendly)
EMBEDDING_NAMES = ("embed", "unembed")


def padded_vocab(vocab_size: int, multiple: int = VOCAB_PAD_MULTIPLE) -> int:
    """The tokenizer's vocabulary rounded up to a multiple of ``multiple``."""
    return int(math.ceil(vocab_size / multiple) * multiple)


def compute_dtype(config: ModelConfig):
    return jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32


CUDNN_MAX_HEAD_DIM = 128  # cuDNN's fused attention kernels (jax.nn.dot_product_attention docs)


def attention_implementation(config: ModelConfig):
    """``jax.nn.dot_product_attention``'s implementation: the config's, or for ``auto`` cuDNN's
    fused kernel on a GPU with bf16 compute and head dim <= 128 (JAX's own default is XLA for
    now), else None (XLA)."""
    if config.attention != "auto":
        return config.attention
    head_dim = config.d_model // config.n_heads
    if jax.default_backend() == "gpu" and config.dtype == "bfloat16" and head_dim <= CUDNN_MAX_HEAD_DIM:
        return "cudnn"
    return None


def rotary_tables(seq_len: int, head_dim: int) -> tuple[jax.Array, jax.Array]:
    """cos/sin tables [L, H/2] of RoPE: angle(pos, i) = pos * theta^(-2i/H)."""
    inv_freq = ROPE_THETA ** (-jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)
    angles_LxK = jnp.arange(seq_len, dtype=jnp.float32)[:, None] * inv_freq[None, :]
    return jnp.cos(angles_LxK), jnp.sin(angles_LxK)


def apply_rotary(x_BxLxNxH: jax.Array, cos_LxK: jax.Array, sin_LxK: jax.Array) -> jax.Array:
    """Rotate pairs (x_i, x_{i+H/2}) by the position angle ("rotate half" convention)."""
    x1, x2 = jnp.split(x_BxLxNxH.astype(jnp.float32), 2, axis=-1)
    cos, sin = cos_LxK[None, :, None, :], sin_LxK[None, :, None, :]
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x_BxLxNxH.dtype)


def _dense(features, name, config: ModelConfig):
    return nn.DenseGeneral(features, use_bias=False, name=name, dtype=compute_dtype(config),
                           param_dtype=jnp.float32, kernel_init=nn.initializers.normal(config.init_std))


def _norm(name, dtype=jnp.float32):
    return nn.LayerNorm(epsilon=NORM_EPS, use_bias=False, name=name, dtype=dtype, param_dtype=jnp.float32)


class Attention(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
        c = self.config
        N, H = c.n_heads, c.d_model // c.n_heads
        L = x_BxLxD.shape[1]
        qkv = _dense((3, N, H), "qkv", c)(x_BxLxD)  # [B, L, 3, N, H]
        q_BxLxNxH, k_BxLxNxH, v_BxLxNxH = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        q_BxLxNxH = _norm("q_norm", compute_dtype(c))(q_BxLxNxH)  # QK-norm, per head
        k_BxLxNxH = _norm("k_norm", compute_dtype(c))(k_BxLxNxH)
        cos, sin = rotary_tables(L, H)
        q_BxLxNxH = apply_rotary(q_BxLxNxH, cos, sin)
        k_BxLxNxH = apply_rotary(k_BxLxNxH, cos, sin)
        impl = attention_implementation(c)
        out_BxLxNxH = jax.nn.dot_product_attention(q_BxLxNxH, k_BxLxNxH, v_BxLxNxH, is_causal=True,
                                                   implementation=impl)
        return nn.DenseGeneral(c.d_model, axis=(-2, -1), use_bias=False, name="out", dtype=compute_dtype(c),
                               param_dtype=jnp.float32,
                               kernel_init=nn.initializers.normal(c.init_std))(out_BxLxNxH)


class Mlp(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
        c = self.config
        h_BxLxF = nn.gelu(_dense(c.mlp_ratio * c.d_model, "up", c)(x_BxLxD))
        return _dense(c.d_model, "down", c)(h_BxLxF)


class Block(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
        dtype = compute_dtype(self.config)
        x_BxLxD = x_BxLxD + Attention(self.config, name="attn")(_norm("attn_norm", dtype)(x_BxLxD))
        return x_BxLxD + Mlp(self.config, name="mlp")(_norm("mlp_norm", dtype)(x_BxLxD))


class Transformer(nn.Module):
    """tokens [B, L] (int) -> logits [B, L, V] (float32). ``vocab_size`` is the padded V.

    ``hidden`` stops before the unembedding: (final hidden states [B, L, D] in the compute
    dtype, unembedding [D, V] float32), for a loss that never holds the whole logits
    (``scaling.lm.loss.chunked_cross_entropy``):
    ``model.apply({"params": p}, tokens, method=Transformer.hidden)``.
    """

    config: ModelConfig
    vocab_size: int

    @nn.compact
    def hidden(self, tokens_BxL: jax.Array) -> tuple[jax.Array, jax.Array]:
        c = self.config
        dtype = compute_dtype(c)
        embed_VxD = self.param("embed", nn.initializers.normal(c.init_std), (self.vocab_size, c.d_model),
                               jnp.float32)
        x_BxLxD = jnp.take(embed_VxD, tokens_BxL, axis=0).astype(dtype)
        for i in range(c.n_layers):
            x_BxLxD = Block(c, name=f"block_{i}")(x_BxLxD)
        x_BxLxD = _norm("final_norm", dtype)(x_BxLxD)
        unembed_DxV = self.param("unembed", nn.initializers.normal(c.init_std), (c.d_model, self.vocab_size),
                                 jnp.float32)
        return x_BxLxD, unembed_DxV

    def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
        return logits(*self.hidden(tokens_BxL))


def build(config: ModelConfig, tokenizer_vocab: int) -> Transformer:
    """The model for ``config``; V = config.vocab_size or the tokenizer's vocabulary, padded."""
    vocab = config.vocab_size or padded_vocab(tokenizer_vocab)
    if vocab < tokenizer_vocab:
        from scaling.errors import ScalingError
        raise ScalingError(f"model.vocab_size {vocab} is smaller than the tokenizer's {tokenizer_vocab}")
    return Transformer(config, vocab)


def init_params(model: Transformer, rng: jax.Array) -> Any:
    tokens = jnp.zeros((1, model.config.seq_len), jnp.int32)
    return model.init(rng, tokens)["params"]


def _path_names(path) -> list[str]:
    return [str(getattr(p, "key", getattr(p, "name", p))) for p in path]


def count_params(params: Any) -> dict[str, int]:
    """{"total", "embedding", "non_embedding" (block matrices), "norm"} parameter counts."""
    counts = {"total": 0, "embedding": 0, "non_embedding": 0, "norm": 0}
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        names = _path_names(path)
        size = int(math.prod(leaf.shape))
        counts["total"] += size
        if names[-1] in EMBEDDING_NAMES:
            counts["embedding"] += size
        elif any(n.endswith("norm") for n in names):
            counts["norm"] += size
        else:
            counts["non_embedding"] += size
    return counts


def non_embedding_params(config: ModelConfig) -> int:
    """N = 12 * L * d^2 (Kaplan et al. 2020) -- equals count_params()["non_embedding"] here."""
    return config.non_embedding_params


def total_params(config: ModelConfig, vocab: int) -> int:
    """Every parameter: N + 2 V D (untied embeddings) + norm scales (2 per block + 2 QK + final)."""
    head_dim = config.d_model // config.n_heads
    norms = config.n_layers * (2 * config.d_model + 2 * head_dim) + config.d_model
    return non_embedding_params(config) + 2 * vocab * config.d_model + norms


def flops_per_token(config: ModelConfig, vocab: int, seq_len: int) -> int:
    """Training FLOPs per token: 6 (N + D V) + 12 L_layers D L_seq (PaLM App. B)."""
    matmul = 6 * (non_embedding_params(config) + config.d_model * vocab)
    attention = 12 * config.n_layers * config.d_model * seq_len
    return int(matmul + attention)
