"""AdamW, global-norm clipping and learning-rate schedules as pure functions of traced hparams.

Every number a sweep varies (lr, betas, eps, weight decay, clip norm, warmup, schedule lengths)
lives in ``hparams``, a dict of float32 scalars that is an *argument* of the jitted step, never
a Python constant closed over: runs that differ only in these numbers (or the seed) share one
compiled step, and K runs can later be vectorised with ``vmap`` over ``hparams``. Only the
schedule's *shape* ("constant" | "cosine" | "wsd") is static.

AdamW: Loshchilov & Hutter 2019 (decoupled weight decay, scaled by the learning rate, applied
to matrices only), Adam's moments from ``optax.scale_by_adam`` (Kingma & Ba 2015, with bias
correction). Clipping: the global gradient norm is capped at ``clip_norm`` (Pascanu et al. 2013);
0 in the config disables it (stored as +inf).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from scaling.lm.config import TrainConfig

SCHEDULES = ("constant", "cosine", "wsd")


def hparams(config: TrainConfig) -> dict[str, np.ndarray]:
    """The traced hyperparameters of one run (float32 scalars, EWA decays a [n_ewa] vector)."""
    o = config.optim
    total = config.schedule_steps
    decay_steps = int(round(o.decay_fraction * total))
    f32 = lambda v: np.asarray(v, np.float32)  # noqa: E731
    return {
        "lr": f32(o.lr),
        "beta1": f32(o.beta1),
        "beta2": f32(config.beta2),
        "eps": f32(o.eps),
        "weight_decay": f32(o.weight_decay),
        "clip_norm": f32(o.clip_norm if o.clip_norm > 0 else np.inf),
        "warmup_steps": f32(config.warmup_steps),
        "warmup_init_fraction": f32(o.warmup_init_fraction),
        "final_lr_fraction": f32(o.final_lr_fraction),
        "total_steps": f32(total),
        "decay_start_step": f32(total - decay_steps),
        "ewa_decays": np.asarray(config.ewa_decays, np.float32).reshape(-1),
    }


def learning_rate(step: jax.Array, hp: dict, schedule: str) -> jax.Array:
    """LR for update number ``step`` (0 = the first update).

    Warmup (all schedules): linear from ``warmup_init_fraction * lr`` at step 0 to ``lr`` at
    ``warmup_steps`` (the CBS paper starts at 0.1 x LR). Then
    - constant: ``lr``;
    - cosine: ``lr * (f + (1 - f) * (1 + cos(pi p)) / 2)``, p from 0 after warmup to 1 at the
      last step, f = ``final_lr_fraction`` (Loshchilov & Hutter 2017);
    - wsd (warmup-stable-decay; Hu et al. 2024, MiniCPM): ``lr`` until ``decay_start_step``,
      then linear to ``f * lr`` at the last step.
    The "last step" is ``total_steps`` of ``hp``, the schedule's horizon
    (``TrainConfig.schedule_steps``); past it both stay at ``f * lr``.
    """
    t = jnp.asarray(step, jnp.float32)
    lr, warm, f0, f = hp["lr"], hp["warmup_steps"], hp["warmup_init_fraction"], hp["final_lr_fraction"]
    last = jnp.maximum(hp["total_steps"] - 1.0, 1.0)
    warm_lr = lr * (f0 + (1.0 - f0) * t / jnp.maximum(warm, 1.0))
    if schedule == "constant":
        main = lr
    elif schedule == "cosine":
        p = jnp.clip((t - warm) / jnp.maximum(last - warm, 1.0), 0.0, 1.0)
        main = lr * (f + (1.0 - f) * 0.5 * (1.0 + jnp.cos(jnp.pi * p)))
    elif schedule == "wsd":
        start = jnp.maximum(hp["decay_start_step"], warm)
        p = jnp.clip((t - start) / jnp.maximum(last - start, 1.0), 0.0, 1.0)
        main = lr * (1.0 - (1.0 - f) * p)
    else:
        raise ValueError(f"unknown schedule {schedule!r} (known: {', '.join(SCHEDULES)})")
    return jnp.where(t < warm, warm_lr, main)


def _decay_mask(params: Any) -> Any:
    """Weight decay on matrices (ndim >= 2), not on norm scales."""
    return jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)


def adam_transform(hp: dict) -> optax.GradientTransformation:
    """Adam direction plus decoupled weight decay (without the -lr scaling and the clipping).

    Built inside the jitted step from traced ``hp``; its state does not depend on the values,
    so ``init_state`` can use any.
    """
    return optax.chain(
        optax.scale_by_adam(b1=hp["beta1"], b2=hp["beta2"], eps=hp["eps"]),
        optax.add_decayed_weights(hp["weight_decay"], mask=_decay_mask),
    )


def init_state(params: Any) -> Any:
    dummy = {"beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.0}
    return adam_transform(dummy).init(params)


def clip_by_global_norm(grads: Any, clip_norm: jax.Array) -> tuple[Any, jax.Array]:
    """(clipped grads, pre-clip global norm); clip_norm = +inf leaves grads unchanged."""
    norm = optax.tree.norm(grads)
    scale = jnp.minimum(1.0, clip_norm / jnp.maximum(norm, 1e-30))
    return jax.tree_util.tree_map(lambda g: g * scale.astype(g.dtype), grads), norm


def update(grads: Any, opt_state: Any, params: Any, step: jax.Array, hp: dict, schedule: str):
    """One AdamW update: returns (new params, new opt state, lr, pre-clip grad norm)."""
    grads, grad_norm = clip_by_global_norm(grads, hp["clip_norm"])
    direction, opt_state = adam_transform(hp).update(grads, opt_state, params)
    lr = learning_rate(step, hp, schedule)
    params = jax.tree_util.tree_map(lambda p, d: p - lr * d, params, direction)
    return params, opt_state, lr, grad_norm


def schedule_values(config: TrainConfig, steps) -> np.ndarray:
    """Host-side LR at the given update numbers (for tests and plots)."""
    hp = hparams(config)
    return np.asarray(jax.vmap(lambda s: learning_rate(s, hp, config.optim.schedule))(jnp.asarray(steps)))

