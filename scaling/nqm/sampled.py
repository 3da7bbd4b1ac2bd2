"""Sampled NQM trajectories: the same optimizer driven by real Gaussian gradient noise.

The exact recursion (``scaling.nqm.recursion``) gives the expected loss; a finite number of
seeds scatters around it. Each trajectory draws eps_t ~ N(0, diag(c) / B) per step (the NQM's
noise model, Zhang et al. 2019, Sec. 3.1) and runs v <- beta v - lr P (H theta + eps),
theta <- theta + v, with P = H^(-q). Seeds are vectorised; steps loop on the host (the runs are
small: this is for checking the recursion and showing seed-to-seed spread, not for sweeps).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from scaling.nqm.problem import NQM, Optimizer


def sampled_loss(problem: NQM, optimizer: Optimizer, lr: float, batch_size: int, steps: Sequence[int],
                 *, seeds: int = 1, seed: int = 0) -> np.ndarray:
    """Loss 1/2 sum_i h_i theta_i^2 of ``seeds`` independent trajectories at ``steps``.

    Returns shape (seeds, len(steps)); +inf once a trajectory overflows.
    """
    steps = np.asarray(steps, dtype=np.int64)
    if steps.ndim != 1 or (steps.size and (steps[0] < 0 or np.any(np.diff(steps) < 0))):
        raise ValueError("steps must be a 1-D ascending sequence of non-negative integers")
    rng = np.random.default_rng(seed)
    h = problem.curvature()
    a = lr * h ** (-optimizer.q)
    noise_std = np.sqrt(problem.noise() / batch_size)
    theta = np.tile(np.sqrt(problem.initial_second_moment()), (seeds, 1))
    v = np.zeros_like(theta)
    out = np.empty((seeds, len(steps)))
    t = 0
    with np.errstate(all="ignore"):
        for k, target in enumerate(steps):
            while t < target:
                g = h * theta + noise_std * rng.standard_normal(theta.shape)
                v = optimizer.momentum * v - a * g
                theta = theta + v
                t += 1
            out[:, k] = 0.5 * (theta * theta) @ h
    return np.where(np.isfinite(out), out, np.inf)
