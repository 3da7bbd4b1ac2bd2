"""When to evaluate, and the validation loss on raw and EWA weights.

Schedule: linear spacing (every ``eval.every_tokens`` tokens, else ~``eval.points`` evals over
the run) plus ``eval.geometric_points`` geometrically spaced evals before the first linear one,
plus the last step. Early evals resolve the fast initial drop, the linear ones pin the step at
which a target is crossed (interpolated by ``scaling.target.crossing_step``). Steps count
completed optimizer updates (the eval at step s sees the weights after s updates).

Loss: mean next-token cross-entropy (nats) over the fixed validation windows
(``scaling.data.loader.validation_batch``), on the raw weights and on each bias-corrected EWA.
With ``eval.raw_weights: last`` and an EWA (whose loss is then the target metric,
``scaling.lm.record``), the raw weights are evaluated only at a run's last evaluation
(``scaling.lm.loop``); the other evaluations cost one forward pass per EWA instead of 1 + n_ewa.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from scaling.lm import ewa as ewa_lib
from scaling.lm.config import EvalConfig


def eval_steps(total_steps: int, tokens_per_step: int, config: EvalConfig) -> list[int]:
    """Sorted unique steps in [1, total_steps] at which to evaluate."""
    if total_steps <= 0:
        return []
    if config.every_tokens is not None:
        every = max(1, int(round(config.every_tokens / tokens_per_step)))
    else:
        every = max(1, math.ceil(total_steps / config.points))
    steps = set(range(every, total_steps + 1, every))
    if config.geometric_points > 0:
        first = min(every, total_steps)
        steps.update(int(round(s)) for s in np.geomspace(1, first, config.geometric_points))
    steps.add(total_steps)
    return sorted(s for s in steps if 1 <= s <= total_steps)


def chunk_validation(val_NxL1: np.ndarray, eval_batch: int, n_devices: int) -> tuple[np.ndarray, np.ndarray]:
    """[n_chunks, E, L+1] windows and [n_chunks, E] weights (0 on padding rows).

    E = eval batch rounded up to a multiple of the device count; the last chunk is padded so
    every chunk has one shape (one compilation).
    """
    E = int(math.ceil(min(eval_batch, val_NxL1.shape[0]) / n_devices) * n_devices)
    n = val_NxL1.shape[0]
    n_chunks = int(math.ceil(n / E))
    padded = np.zeros((n_chunks * E, val_NxL1.shape[1]), np.int32)
    padded[:n] = val_NxL1
    weights = np.zeros(n_chunks * E, np.float32)
    weights[:n] = 1.0
    return padded.reshape(n_chunks, E, -1), weights.reshape(n_chunks, E)


class EvalWeights(NamedTuple):
    """What an evaluation reads of a train state: the raw parameters, the EWA and the step (for
    the EWA's bias correction). Small enough to copy and evaluate later (``scaling.lm.loop``)."""
    step: Any
    params: Any
    ewa: Any


def eval_weights(state) -> EvalWeights:
    return EvalWeights(step=state.step, params=state.params, ewa=state.ewa)


def param_sets(weights: EvalWeights, hp) -> tuple:
    """(raw params, bias-corrected EWA params stacked [n_ewa, ...] or ())."""
    return weights.params, ewa_lib.corrected(weights.ewa, hp["ewa_decays"], weights.step)


EVAL_PARTS = ("all", "raw", "averaged")


def make_eval(model, part: str = "all"):
    """losses(EvalWeights, hp, val [C, E, L+1], weights [C, E]) -> mean losses: [1 + n_ewa] (raw
    first) for ``part="all"``, [1] for ``"raw"``, [n_ewa] for ``"averaged"``."""
    if part not in EVAL_PARTS:
        raise ValueError(f"part must be one of {EVAL_PARTS}, got {part!r}")

    def mean_loss(params, val_CxExL1, w_CxE):
        def chunk(carry, xs):
            batch, w = xs
            logits = model.apply({"params": params}, batch[:, :-1])
            tok = optax.softmax_cross_entropy_with_integer_labels(logits, batch[:, 1:])  # [E, L]
            return carry + jnp.sum(tok.mean(axis=1) * w), None

        total, _ = jax.lax.scan(chunk, jnp.zeros((), jnp.float32), (val_CxExL1, w_CxE))
        return total / jnp.sum(w_CxE)

    def losses(weights: EvalWeights, hp, val_CxExL1, w_CxE):
        raw, averaged = param_sets(weights, hp)
        out = []
        if part != "averaged":
            out.append(mean_loss(raw, val_CxExL1, w_CxE)[None])
        if part != "raw" and averaged != ():
            out.append(jax.lax.map(lambda p: mean_loss(p, val_CxExL1, w_CxE), averaged))
        return jnp.concatenate(out)

    return losses


def eval_row(losses: np.ndarray, raw: bool = True) -> dict:
    """Metrics row fields: eval_loss, eval_loss_ewa (best decay) and eval_loss_ewa_<i>, from
    [1 + n_ewa] losses (raw first), or from [n_ewa] EWA losses without eval_loss (``raw=False``)."""
    row = {"eval_loss": float(losses[0])} if raw else {}
    ewa = [float(x) for x in (losses[1:] if raw else losses)]
    if ewa:
        finite = [x for x in ewa if math.isfinite(x)]
        row["eval_loss_ewa"] = min(finite) if finite else float("nan")
        if len(ewa) > 1:
            row.update({f"eval_loss_ewa_{i}": x for i, x in enumerate(ewa)})
    return row
