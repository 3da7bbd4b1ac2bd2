"""The noisy quadratic model (NQM): one problem instance and one optimizer.

Zhang, Li, Nado, Martens, Sachdeva, Dahl, Shallue, Grosse (NeurIPS 2019), "Which Algorithmic
Choices Matter at Which Batch Sizes? Insights From a Noisy Quadratic Model", Sec. 3:

- loss L(theta) = 1/2 sum_i h_i theta_i^2 (diagonal Hessian H; any quadratic is one after a
  rotation),
- stochastic gradient g = H theta + eps with Cov(eps) = C / B, C = H (the gradient covariance
  equals the Hessian near a minimum of a log-likelihood; Sec. 3.1), so c_i = h_i,
- a power-law spectrum h_i = i^(-p) (the paper uses p = 1, i.e. h_i = 1/i).

The optimizer is preconditioned heavy-ball SGD (Sec. 3.2 and 3.3): with P = H^(-q)
(q = 0: SGD; q = 1/2 is the paper's Adam-like diagonal preconditioner; q = 1 is Newton-like),

    v_{t+1} = beta v_t - lr P g_t,        theta_{t+1} = theta_t + v_{t+1}.

The problem dimension ``dim`` plays the role of model size N in the steps table (a bigger NQM
resolves more of the spectrum's tail), the number of samples the role of the token budget D.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.config_io import require


@dataclass(frozen=True)
class NQM:
    """One NQM instance: spectrum h_i = i^(-p), noise c_i = noise_scale * h_i, theta_0,i = init_scale."""

    dim: int = 1000
    p: float = 1.0
    noise_scale: float = 1.0
    init_scale: float = 1.0

    def __post_init__(self):
        require(self.dim > 0, f"dim must be positive, got {self.dim}")
        require(self.p >= 0, f"p (spectrum exponent) must be >= 0, got {self.p}")
        require(self.noise_scale >= 0, f"noise_scale must be >= 0, got {self.noise_scale}")
        require(self.init_scale > 0, f"init_scale must be positive, got {self.init_scale}")

    def curvature(self) -> np.ndarray:
        """h_i = i^(-p), i = 1..dim (Zhang et al. 2019, Sec. 3.1), largest first (h_1 = 1)."""
        return np.arange(1, self.dim + 1, dtype=np.float64) ** (-self.p)

    def noise(self) -> np.ndarray:
        """Per-sample gradient-noise variances c_i = noise_scale * h_i (C proportional to H)."""
        return self.noise_scale * self.curvature()

    def initial_second_moment(self) -> np.ndarray:
        """E[theta_0,i^2]: the start is deterministic, theta_0,i = init_scale."""
        return np.full(self.dim, self.init_scale**2)


@dataclass(frozen=True)
class Optimizer:
    """Preconditioned heavy-ball SGD: momentum beta, preconditioner H^(-q)."""

    momentum: float = 0.0
    q: float = 0.0

    def __post_init__(self):
        require(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        require(0 <= self.q <= 1, f"q (preconditioning power) must be in [0, 1], got {self.q}")

    @property
    def label(self) -> str:
        parts = ["SGD" if self.q == 0 else f"precond q={self.q:g}"]
        if self.momentum:
            parts.append(f"momentum {self.momentum:g}")
        return ", ".join(parts)

    def max_stable_lr(self, problem: NQM) -> float:
        """Largest stable lr on the stiffest coordinate: lr h^(1-q) < 2 (1 + beta) (Polyak 1964)."""
        h_max = float(problem.curvature().max())
        return 2.0 * (1.0 + self.momentum) / h_max ** (1.0 - self.q)
