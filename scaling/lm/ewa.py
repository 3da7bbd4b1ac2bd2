"""Exponential weight averaging (EWA) of parameters, several decays at once.

With decay tau the average starts at zero and follows a_t = tau * a_{t-1} + (1 - tau) * w_t
(w_t: parameters after update t). It is evaluated with the bias correction a_t / (1 - tau^t)
(Adam's correction, Kingma & Ba 2015; used for EWA by Zhang et al. 2024), which equals the
normalised weighted mean sum_s tau^(t-s) (1-tau) w_s / sum_s tau^(t-s) (1-tau).

The state stacks all decays on a leading axis [n_ewa, ...]; decays are a traced [n_ewa] vector
(hparams["ewa_decays"]), so changing them never recompiles.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def init(params: Any, n_ewa: int) -> Any:
    """Zero averages [n_ewa, *shape] for every parameter (an empty tuple when n_ewa = 0)."""
    if n_ewa == 0:
        return ()
    return jax.tree_util.tree_map(lambda p: jnp.zeros((n_ewa,) + p.shape, jnp.float32), params)


def _bcast(decays: jax.Array, leaf: jax.Array) -> jax.Array:
    return decays.reshape((-1,) + (1,) * (leaf.ndim - 1)).astype(leaf.dtype)


def update(ewa: Any, params: Any, decays: jax.Array) -> Any:
    """a <- tau * a + (1 - tau) * w, for each decay tau."""
    if ewa == ():
        return ()
    return jax.tree_util.tree_map(lambda a, p: _bcast(decays, a) * a + (1.0 - _bcast(decays, a)) * p[None],
                                  ewa, params)


def corrected(ewa: Any, decays: jax.Array, step: jax.Array) -> Any:
    """Bias-corrected averages a_t / (1 - tau^t) after ``step`` = t >= 1 updates."""
    if ewa == ():
        return ()
    t = jnp.asarray(step, jnp.float32)
    correction = 1.0 - jnp.power(decays.astype(jnp.float32), jnp.maximum(t, 1.0))
    return jax.tree_util.tree_map(lambda a: a / _bcast(correction, a), ewa)
