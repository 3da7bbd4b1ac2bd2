"""Synthetic loss grids drawn from a known bowl (for tests, the benchmark and the example).

Each group (N, D) has a true optimum B*(N, D) = b_c (N / N0)^b_a_params (D / D0)^b_a_tokens
(sequences) and lr*(N, D) = lr_c (N / N0)^lr_a_params (D / D0)^lr_a_tokens, and final losses

    L(B, lr) = L0(N, D) + k_b u^2 + k_bl u v + k_lr v^2,  u = log(B / B*), v = log(lr / lr*),

times (1 + noise * standard normal), L0 = 1.8 + 1.5 (N / N0)^-0.1 (D / D0)^-0.1 (a Chinchilla-like
floor; its value does not matter). Clearly synthetic: nothing here is a measurement.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from scaling.analysis.lossgrid import LossGrid, LossRun, grid_from_runs

REFERENCE_PARAMS = 1e6
REFERENCE_TOKENS = 2e7


@dataclass(frozen=True)
class TrueBowl:
    b_c: float = 128.0
    b_a_params: float = 0.0
    b_a_tokens: float = 0.5
    lr_c: float = 3e-3
    lr_a_params: float = -0.5
    lr_a_tokens: float = 0.2
    k_b: float = 0.05           # loss curvature along log B (nats per log^2)
    k_bl: float = -0.03         # coupling: larger batches prefer larger lrs
    k_lr: float = 0.08          # curvature along log lr

    def b_opt(self, n, d):
        return self.b_c * (n / REFERENCE_PARAMS) ** self.b_a_params * (d / REFERENCE_TOKENS) ** self.b_a_tokens

    def lr_opt(self, n, d):
        return self.lr_c * (n / REFERENCE_PARAMS) ** self.lr_a_params * (d / REFERENCE_TOKENS) ** self.lr_a_tokens

    def floor(self, n, d):
        return 1.8 + 1.5 * (n / REFERENCE_PARAMS) ** -0.1 * (d / REFERENCE_TOKENS) ** -0.1

    def loss(self, n, d, b, lr):
        u, v = np.log(b / self.b_opt(n, d)), np.log(lr / self.lr_opt(n, d))
        return self.floor(n, d) + self.k_b * u * u + self.k_bl * u * v + self.k_lr * v * v


def synthetic_loss_runs(groups, batch_factors, lr_factors, bowl: TrueBowl = TrueBowl(), noise: float = 5e-4,
                        seeds: int = 1, seq_len: int = 128, rng=None) -> list:
    """Runs of a loss grid: per group, batch sizes B*(N, D) x ``batch_factors`` rounded to integers and
    lrs lr*(N, D) x ``lr_factors`` (so the optimum sits inside the grid wherever the factors bracket 1)."""
    rng = rng or np.random.default_rng(0)
    runs = []
    for n, d in groups:
        bs = sorted({float(max(1, round(bowl.b_opt(n, d) * f))) for f in batch_factors})
        lrs = [float(bowl.lr_opt(n, d) * f) for f in lr_factors]
        for b in bs:
            for lr in lrs:
                true = bowl.loss(n, d, b, lr)
                for s in range(seeds):
                    runs.append(LossRun(params=float(n), tokens=float(d), batch_size=b, lr=lr,
                                        loss=float(true * (1.0 + noise * rng.standard_normal())),
                                        seq_len=float(seq_len), seed=str(s) if seeds > 1 else None))
    return runs


def synthetic_loss_grid(groups, batch_factors, lr_factors, bowl: TrueBowl = TrueBowl(), noise: float = 5e-4,
                        seeds: int = 1, seq_len: int = 128, rng=None) -> LossGrid:
    return grid_from_runs(synthetic_loss_runs(groups, batch_factors, lr_factors, bowl, noise, seeds, seq_len, rng))


def to_csv(runs) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["params", "tokens", "batch_size", "lr", "loss", "seq_len", "seed"])
    for r in runs:
        w.writerow([f"{r.params:.10g}", f"{r.tokens:.10g}", f"{r.batch_size:g}", f"{r.lr:.6g}", f"{r.loss:.6f}",
                    f"{r.seq_len:g}" if r.seq_len else "", r.seed or ""])
    return out.getvalue()


@dataclass(frozen=True)
class TrueSteps:
    """A loss grid across D whose tokens to the target L* = e + a follow a known step model:
    L(D, B, lr) = e + a (D / D*(B))^-alpha + k_lr log(lr / lr*)^2 with
    D*(B) = T S_min (B + B_noise) (1 + (b_low / B)^2): the hyperbola of McCandlish et al. 2018 in
    tokens, times an inefficiency below ~b_low that makes tokens to target rise again at small B."""

    s_min: float = 200.0
    b_noise: float = 256.0
    b_low: float = 0.0
    e: float = 2.0
    a: float = 1.0
    alpha: float = 0.3
    lr: float = 3e-3
    k_lr: float = 0.05

    @property
    def target(self) -> float:
        return self.e + self.a

    def tokens_to_target(self, b, seq_len):
        return seq_len * self.s_min * (b + self.b_noise) * (1.0 + (self.b_low / b) ** 2)

    def loss(self, d, b, lr, seq_len):
        return (self.e + self.a * (d / self.tokens_to_target(b, seq_len)) ** -self.alpha
                + self.k_lr * np.log(lr / self.lr) ** 2)


def iso_loss_runs(params: float, tokens, batch_sizes, lr_factors, truth: TrueSteps = TrueSteps(),
                  noise: float = 0.0, seq_len: int = 128, rng=None) -> list:
    """Runs at every (D, B, lr) of ``truth`` for one model size (loss times 1 + noise N(0, 1))."""
    rng = rng or np.random.default_rng(0)
    return [LossRun(params=float(params), tokens=float(d), batch_size=float(b), lr=float(truth.lr * f),
                    loss=float(truth.loss(d, b, truth.lr * f, seq_len) * (1.0 + noise * rng.standard_normal())),
                    seq_len=float(seq_len))
            for d in tokens for b in batch_sizes for f in lr_factors]
