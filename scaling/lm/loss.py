"""Next-token cross-entropy from the final hidden states, whole or in sequence chunks.

The unembedding turns hidden states [B, L, D] into logits [B, L, V]; in float32 at B = 256,
L = 512, V = 50304 that is 26 GB, and autodiff keeps a second array of that size for its
gradient. ``chunked_cross_entropy`` computes the same mean loss and the same gradients
(``jax.custom_vjp``) one slice of ``chunk`` sequence positions at a time, so that no array
larger than [B, chunk, V] ever exists, forward or backward: each chunk's logits, softmax and
logit gradient live only inside one ``lax.scan`` iteration, which also takes the chunk's
gradients with respect to the hidden states and the unembedding (accumulated in float32).
Because the gradients are formed during the forward pass, nothing is recomputed: the FLOPs are
those of the plain loss. This is the chunked "fused linear cross-entropy" of Liger Kernel (Hsu
et al. 2024, "Liger Kernel: Efficient Triton Kernels for LLM Training", arXiv:2410.10989, Sec.
3.2), written in plain JAX; Wijmans et al. 2024 ("Cut Your Losses in Large-Vocabulary Language
Models", arXiv:2411.09009) go further with a fused kernel over vocabulary blocks.

Chunks run along the sequence axis, so the batch axis (the data-parallel one) keeps its
sharding. A chunk that does not divide L is padded with masked positions.

Precision follows ``scaling.lm.model``: the unembedding matmul runs in the hidden states' dtype
(bfloat16 under mixed precision) and the logits, the softmax and the loss are float32.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import optax

from scaling.errors import ScalingError


def logits(hidden_BxLxD: jax.Array, unembed_DxV: jax.Array) -> jax.Array:
    """Float32 logits [..., V]: the unembedding matmul in the hidden states' dtype, then float32."""
    return jnp.einsum("...d,dv->...v", hidden_BxLxD, unembed_DxV.astype(hidden_BxLxD.dtype)).astype(jnp.float32)


def cross_entropy(logits_BxLxV: jax.Array, targets_BxL: jax.Array) -> jax.Array:
    """Mean next-token cross-entropy (nats) of float32 logits against integer targets."""
    return optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, targets_BxL).mean()


def check_chunk(chunk) -> int:
    """``chunk`` as a positive int, else ScalingError."""
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ScalingError(f"the cross-entropy chunk must be a positive number of sequence positions, got {chunk!r}")
    return chunk


def _chunks(hidden_BxLxD, targets_BxL, chunk: int):
    """Hidden states [C, B, K, D], targets [C, B, K] and position mask [C, K] (K = chunk, L padded to C K)."""
    B, L, D = hidden_BxLxD.shape
    C = math.ceil(L / chunk)
    pad = C * chunk - L
    h = jnp.pad(hidden_BxLxD, ((0, 0), (0, pad), (0, 0)))
    t = jnp.pad(targets_BxL, ((0, 0), (0, pad)))
    h_CxBxKxD = h.reshape(B, C, chunk, D).swapaxes(0, 1)
    t_CxBxK = t.reshape(B, C, chunk).swapaxes(0, 1)
    mask_CxK = (jnp.arange(C * chunk) < L).reshape(C, chunk).astype(jnp.float32)
    return h_CxBxKxD, t_CxBxK, mask_CxK


def _loss_sum(hidden_BxLxD, unembed_DxV, targets_BxL, chunk: int) -> jax.Array:
    """Summed cross-entropy over all B x L positions, one chunk of positions at a time."""
    h_C, t_C, mask_C = _chunks(hidden_BxLxD, targets_BxL, chunk)

    def body(total, xs):
        h_BxKxD, t_BxK, mask_K = xs
        ce_BxK = optax.softmax_cross_entropy_with_integer_labels(logits(h_BxKxD, unembed_DxV), t_BxK)
        return total + jnp.sum(ce_BxK * mask_K[None, :]), None

    total, _ = jax.lax.scan(body, jnp.zeros((), jnp.float32), (h_C, t_C, mask_C))
    return total


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _chunked(hidden_BxLxD, unembed_DxV, targets_BxL, chunk):
    B, L, _ = hidden_BxLxD.shape
    return _loss_sum(hidden_BxLxD, unembed_DxV, targets_BxL, chunk) / (B * L)


def _chunked_fwd(hidden_BxLxD, unembed_DxV, targets_BxL, chunk):
    """The mean loss and its gradients, formed chunk by chunk in one pass (the saved residuals)."""
    B, L, D = hidden_BxLxD.shape
    V = unembed_DxV.shape[1]
    dtype = hidden_BxLxD.dtype
    w_DxV = unembed_DxV.astype(dtype)
    h_C, t_C, mask_C = _chunks(hidden_BxLxD, targets_BxL, chunk)
    scale = 1.0 / (B * L)  # d(mean)/d(per-position loss)

    def body(carry, xs):
        total, dw_DxV = carry
        h_BxKxD, t_BxK, mask_K = xs
        logits_BxKxV = logits(h_BxKxD, unembed_DxV)
        lse_BxK = jax.nn.logsumexp(logits_BxKxV, axis=-1)
        target_BxK = jnp.take_along_axis(logits_BxKxV, t_BxK[..., None], axis=-1)[..., 0]
        total = total + jnp.sum((lse_BxK - target_BxK) * mask_K[None, :])
        # d loss / d logits = (softmax - onehot(target)) / (B L) at real positions, 0 at padding
        dlogits_BxKxV = jnp.exp(logits_BxKxV - lse_BxK[..., None]) - jax.nn.one_hot(t_BxK, V, dtype=jnp.float32)
        dlogits_BxKxV = (dlogits_BxKxV * (scale * mask_K)[None, :, None]).astype(dtype)
        dh_BxKxD = jnp.einsum("bkv,dv->bkd", dlogits_BxKxV, w_DxV)
        dw_DxV = dw_DxV + jnp.einsum("bkd,bkv->dv", h_BxKxD, dlogits_BxKxV, preferred_element_type=jnp.float32)
        return (total, dw_DxV), dh_BxKxD

    init = (jnp.zeros((), jnp.float32), jnp.zeros((D, V), jnp.float32))
    (total, dw_DxV), dh_CxBxKxD = jax.lax.scan(body, init, (h_C, t_C, mask_C))
    dh_BxLxD = dh_CxBxKxD.swapaxes(0, 1).reshape(B, -1, D)[:, :L]
    return total * scale, (dh_BxLxD, dw_DxV.astype(unembed_DxV.dtype))


def _chunked_bwd(chunk, residuals, g):
    dh_BxLxD, dw_DxV = residuals
    return (g * dh_BxLxD).astype(dh_BxLxD.dtype), g * dw_DxV, None  # None: the integer targets


_chunked.defvjp(_chunked_fwd, _chunked_bwd)


def chunked_cross_entropy(hidden_BxLxD: jax.Array, unembed_DxV: jax.Array, targets_BxL: jax.Array,
                          chunk: int) -> jax.Array:
    """Mean next-token cross-entropy (nats) of ``logits(hidden, unembed)`` against ``targets``,
    without ever holding the [B, L, V] logits: ``chunk`` sequence positions at a time (L need not
    be a multiple of ``chunk``). Equals ``cross_entropy(logits(hidden, unembed), targets)`` and
    its gradients with respect to ``hidden`` and ``unembed`` up to float summation order.
    """
    return _chunked(hidden_BxLxD, unembed_DxV, targets_BxL, check_chunk(chunk))
