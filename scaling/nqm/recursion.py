"""Exact expected loss of the NQM: the per-coordinate second-moment recursion.

Zhang et al. 2019 (Sec. 3.2, eq. 5 and App. A) note that on the NQM every coordinate evolves
independently and its second moments obey a closed linear recursion. With a_i = lr h_i^(-q)
(effective step on coordinate i), s_i = c_i / B (minibatch noise variance) and the state
x = (theta_i, v_i) of preconditioned heavy-ball SGD (``scaling.nqm.problem``),

    x_{t+1} = A x_t + b eps_t,   A = [[1 - a h, beta], [-a h, beta]],   b = (-a, -a),

so the covariance M_t = E[x_t x_t^T] (three numbers: E[theta^2], E[theta v], E[v^2]) obeys

    M_{t+1} = A M_t A^T + Q,     Q = s a^2 [[1, 1], [1, 1]],

and E[L_t] = 1/2 sum_i h_i E[theta_i,t^2]. For beta = 0 this is the paper's SGD formula
E[theta_{t+1}^2] = (1 - a h)^2 E[theta_t^2] + a^2 c / B.

The map F: M -> A M A^T + Q composes with itself as F^2 = (A^2, A Q A^T + Q), so F^(2^j) comes
from j squarings and a jump of any number of steps costs one application per set bit. The
evaluation schedule ``eval_steps`` is dyadic (gaps are powers of two), so evaluating K points
of a T-step run costs about log2(T) + K map applications, exactly (no closed-form eigen-solve,
no cancellation near critical damping). Everything broadcasts over arbitrary leading axes
(learning rates x batch sizes x ...), with the coordinate axis last.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from scaling.nqm.problem import NQM, Optimizer

# A 2x2 matrix is a tuple (a11, a12, a21, a22); a symmetric one a tuple (xx, xy, yy).


def _matmul(A, B):
    a11, a12, a21, a22 = A
    b11, b12, b21, b22 = B
    return (a11 * b11 + a12 * b21, a11 * b12 + a12 * b22,
            a21 * b11 + a22 * b21, a21 * b12 + a22 * b22)


def _congruence(A, S):
    """A S A^T for symmetric S."""
    a11, a12, a21, a22 = A
    p, r, u = S
    l11, l12 = a11 * p + a12 * r, a11 * r + a12 * u
    l21, l22 = a21 * p + a22 * r, a21 * r + a22 * u
    return (l11 * a11 + l12 * a12, l11 * a21 + l12 * a22, l21 * a21 + l22 * a22)


def _apply(F, M):
    """F(M) = A M A^T + Q."""
    A, Q = F
    xx, xy, yy = _congruence(A, M)
    return (xx + Q[0], xy + Q[1], yy + Q[2])


def _square(F):
    """F o F = (A^2, A Q A^T + Q)."""
    A, Q = F
    return (_matmul(A, A), _apply(F, Q))


def one_step_map(problem: NQM, optimizer: Optimizer, lr, batch_size):
    """(A, Q) of one step, arrays of shape broadcast(lr, batch_size) + (dim,)."""
    h = problem.curvature()
    c = problem.noise()
    lr = np.asarray(lr, dtype=np.float64)[..., None]
    batch = np.asarray(batch_size, dtype=np.float64)[..., None]
    shape = np.broadcast_shapes(lr.shape, batch.shape, h.shape)
    a = np.broadcast_to(lr * h ** (-optimizer.q), shape)
    beta = np.full(shape, float(optimizer.momentum))
    ah = a * h
    A = (1.0 - ah, beta, -ah, beta)
    q = np.broadcast_to((c / batch) * a * a, shape)
    return A, (q, q, q)


def eval_steps(total_steps: int, per_octave: int = 8) -> np.ndarray:
    """Evaluation steps 0, 1, ..., then ``per_octave`` evenly spaced points per doubling, and
    ``total_steps`` itself: {0..n-1} U {m 2^e : n <= m < 2n} U {T}, n = per_octave (a power of
    two). Consecutive gaps are powers of two (except possibly the last), so the exact recursion
    jumps between them with one map application each; the relative spacing is <= 1/n.
    """
    if per_octave < 1 or per_octave & (per_octave - 1):
        raise ValueError(f"per_octave must be a power of two, got {per_octave}")
    if total_steps < 0:
        raise ValueError(f"total_steps must be >= 0, got {total_steps}")
    out = list(range(min(per_octave, total_steps + 1)))
    gap = 1
    t = per_octave
    while t <= total_steps:
        for _ in range(per_octave):
            if t > total_steps:
                break
            out.append(t)
            t += gap
        gap *= 2
    if out[-1] != total_steps:
        out.append(total_steps)
    return np.asarray(out, dtype=np.int64)


def _moments_at(problem: NQM, optimizer: Optimizer, lr, batch_size, steps: Sequence[int]):
    """Yield E[theta^2] per coordinate (shape broadcast(lr, B) + (dim,)) at each of ``steps``."""
    steps = np.asarray(steps, dtype=np.int64)
    if steps.ndim != 1 or (steps.size and (steps[0] < 0 or np.any(np.diff(steps) < 0))):
        raise ValueError("steps must be a 1-D ascending sequence of non-negative integers")
    F1 = one_step_map(problem, optimizer, lr, batch_size)
    shape = F1[0][0].shape
    m0 = np.broadcast_to(problem.initial_second_moment(), shape)
    zeros = np.zeros(shape)
    M = (m0, zeros, zeros)  # theta_0 deterministic, v_0 = 0
    levels = [F1]  # levels[j] = F^(2^j), built on demand
    for gap in np.diff(steps, prepend=0):
        gap, j = int(gap), 0
        with np.errstate(all="ignore"):
            while gap:
                if j == len(levels):
                    levels.append(_square(levels[-1]))
                if gap & 1:
                    M = _apply(levels[j], M)
                gap >>= 1
                j += 1
        yield M[0]


def second_moments(problem: NQM, optimizer: Optimizer, lr, batch_size, steps: Sequence[int]) -> np.ndarray:
    """E[theta_i^2] at each of ``steps`` (ascending, >= 0): shape broadcast(lr, B) + (len(steps), dim).

    Non-finite values mean the iteration diverged (lr beyond the stability limit).
    """
    return np.stack(list(_moments_at(problem, optimizer, lr, batch_size, steps)), axis=-2)


def expected_loss(problem: NQM, optimizer: Optimizer, lr, batch_size, steps: Sequence[int]) -> np.ndarray:
    """E[L(theta_t)] = 1/2 sum_i h_i E[theta_i,t^2] at ``steps``; shape broadcast(lr, B) + (len(steps),).

    Diverged entries (overflow or NaN) are +inf.
    """
    h = problem.curvature()
    with np.errstate(all="ignore"):
        loss = np.stack([0.5 * (m @ h) for m in _moments_at(problem, optimizer, lr, batch_size, steps)],
                        axis=-1)
    return np.where(np.isfinite(loss), loss, np.inf)
