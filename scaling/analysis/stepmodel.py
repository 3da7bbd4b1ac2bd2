"""Step model S(B) fitted per group in log space: hyperbola, free exponent, Huber.

McCandlish et al. 2018 ("An Empirical Model of Large-Batch Training", eq. 2.11):
S(B) = S_min (1 + B_noise / B); Zhang et al. 2024 fit it by least squares on log S. The
free-exponent variant is S(B) = S_min (1 + (B_noise / B)^alpha).

With y = log S and x = log B both forms read y = c + softplus(alpha (u - x)) with c = log S_min,
u = log B_noise (alpha = 1 for the hyperbola). Given (u, alpha), c has a closed form (the
weighted mean of y - softplus), so the fit is a profile ("variable projection") over u (and
alpha): a log-spaced grid finds the global basin, then damped Gauss-Newton (Levenberg-Marquardt)
converges inside it to the exact minimiser, so the answer does not depend on the grid. The
objective is a sum of squared log residuals (never a mean). All of it is vectorised over many
data vectors at once, which is what makes a 1000-resample bootstrap cheap. The Huber option is
iteratively reweighted least squares with Huber weights (same minimiser as Huber's M-estimator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

MODELS = ("hyperbola", "free", "huber")
U_PAD = np.log(1e4)          # B_noise searched from min(B)/1e4 to max(B)*1e4
U_GRID_POINTS = 81           # profile grid over log B_noise (bracketing only; refined after)
ALPHA_BOUNDS = (0.2, 5.0)    # free exponent searched in this range
ALPHA_GRID_POINTS = 17
LM_ITERATIONS = 60
LM_LAMBDA0 = 1e-3
LM_STEP_TOLERANCE = 1e-10    # stop once every proposed step is below this (log B, alpha)
LM_LAMBDA_UP, LM_LAMBDA_DOWN = 4.0, 3.0
HUBER_K = 1.345              # Huber tuning constant (95% efficiency under normal errors)
MAD_TO_SIGMA = 1.4826        # MAD -> standard deviation under normal errors
HUBER_MIN_SCALE = 1e-3       # floor of the robust scale in log S (0.1%)
IRLS_ITERATIONS = 12
BOUND_TOLERANCE = 1e-6       # |u - bound| below this (in log B) counts as "at the bound"
GRID_CHUNK = 256             # resamples evaluated on the grid at once (memory bound)


def _softplus(z):
    return np.logaddexp(0.0, z)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def model_curve(x, u, alpha):
    """softplus(alpha (u - x)) = log(1 + (B_noise / B)^alpha), broadcasting."""
    return _softplus(alpha * (u - x))


def _profile(y, w, f):
    """Concentrated intercept and weighted RSS: c = sum w (y - f) / sum w."""
    d = y - f
    c = (w * d).sum(-1) / w.sum(-1)
    r = d - c[..., None]
    return c, r, (w * r * r).sum(-1)


@dataclass(frozen=True)
class Bounds:
    u_lo: float
    u_hi: float

    @staticmethod
    def for_batches(batch_sizes) -> "Bounds":
        x = np.log(np.asarray(batch_sizes, float))
        return Bounds(float(x.min() - U_PAD), float(x.max() + U_PAD))


def _grid_start(x, Y, W, bounds: Bounds, free: bool):
    """Global basin from a log grid: best (u, alpha) per row of Y."""
    us = np.linspace(bounds.u_lo, bounds.u_hi, U_GRID_POINTS)
    alphas = np.geomspace(*ALPHA_BOUNDS, ALPHA_GRID_POINTS) if free else np.ones(1)
    uu, aa = [a.ravel() for a in np.meshgrid(us, alphas, indexing="ij")]
    F = model_curve(x[None, :], uu[:, None], aa[:, None])  # (G, n)
    best_u = np.empty(len(Y))
    best_a = np.empty(len(Y))
    for s in range(0, len(Y), GRID_CHUNK):
        y, w = Y[s:s + GRID_CHUNK, None, :], W[s:s + GRID_CHUNK, None, :]
        _, _, rss = _profile(y, w, F[None])  # (R, G)
        k = rss.argmin(1)
        best_u[s:s + GRID_CHUNK], best_a[s:s + GRID_CHUNK] = uu[k], aa[k]
    return best_u, best_a


def _lm(x, Y, W, u, a, bounds: Bounds, free: bool, iterations: int = LM_ITERATIONS):
    """Vectorised Levenberg-Marquardt on the profiled objective, within the bounds."""
    lam = np.full(len(Y), LM_LAMBDA0)
    theta = np.stack([u, a], 1) if free else u[:, None]
    lo = np.array([bounds.u_lo, ALPHA_BOUNDS[0]])[: theta.shape[1]]
    hi = np.array([bounds.u_hi, ALPHA_BOUNDS[1]])[: theta.shape[1]]

    def evaluate(th):
        al = th[:, 1:2] if free else np.ones((len(th), 1))
        z = al * (th[:, :1] - x[None, :])
        f = _softplus(z)
        c, r, rss = _profile(Y, W, f)
        return f, z, al, c, r, rss

    f, z, al, c, r, rss = evaluate(theta)
    for _ in range(iterations):
        sig = _sigmoid(z)
        J = [al * sig]  # d f / d u
        if free:
            J.append((theta[:, :1] - x[None, :]) * sig)  # d f / d alpha
        J = np.stack(J, -1)  # (R, n, k)
        wsum = W.sum(-1)[:, None, None]
        Jc = J - (W[..., None] * J).sum(1, keepdims=True) / wsum
        A = np.einsum("rn,rnk,rnl->rkl", W, Jc, Jc)
        g = np.einsum("rn,rnk,rn->rk", W, Jc, r)
        diag = np.einsum("rkk->rk", A)
        A = A + (lam[:, None] * (diag + 1e-12))[:, :, None] * np.eye(theta.shape[1])[None]
        step = np.linalg.solve(A, g[..., None])[..., 0]
        trial = np.clip(theta + step, lo, hi)
        f2, z2, al2, c2, r2, rss2 = evaluate(trial)
        ok = rss2 <= rss
        theta = np.where(ok[:, None], trial, theta)
        z = np.where(ok[:, None], z2, z)
        al = np.where(ok[:, None], al2, al)
        c = np.where(ok, c2, c)
        r = np.where(ok[:, None], r2, r)
        rss = np.where(ok, rss2, rss)
        lam = np.where(ok, lam / LM_LAMBDA_DOWN, lam * LM_LAMBDA_UP)
        if np.all(np.abs(step) < LM_STEP_TOLERANCE):
            break
    a_out = theta[:, 1] if free else np.ones(len(theta))
    return c, theta[:, 0], a_out, r, rss


def _huber_weights(r, scale):
    delta = HUBER_K * scale[:, None]
    absr = np.abs(r)
    return np.where(absr <= delta, 1.0, delta / np.maximum(absr, 1e-300))


def robust_scale(r):
    """MAD-based scale of residuals (rows), floored at HUBER_MIN_SCALE."""
    med = np.median(r, axis=-1, keepdims=True)
    mad = np.median(np.abs(r - med), axis=-1)
    return np.maximum(MAD_TO_SIGMA * mad, HUBER_MIN_SCALE)


@dataclass(frozen=True)
class BatchFit:
    """Fitted parameters for each row of Y: log S_min, log B_noise, alpha, residuals, RSS."""

    log_s_min: np.ndarray
    log_b_noise: np.ndarray
    alpha: np.ndarray
    residuals: np.ndarray
    rss: np.ndarray
    at_lower: np.ndarray
    at_upper: np.ndarray


def fit_many(batch_sizes, Y, model: str = "hyperbola", bounds: Optional[Bounds] = None,
             huber_scale: Optional[np.ndarray] = None) -> BatchFit:
    """Fit the step model to each row of ``Y`` (log steps at ``batch_sizes``), vectorised.

    ``model``: "hyperbola" (alpha = 1, least squares), "free" (alpha fitted), "huber"
    (hyperbola, Huber loss via IRLS; ``huber_scale`` per row fixes the robust scale, default the
    MAD of the least-squares residuals).
    """
    if model not in MODELS:
        raise ValueError(f"unknown step model {model!r}; expected one of {MODELS}")
    x = np.log(np.asarray(batch_sizes, float))
    Y = np.atleast_2d(np.asarray(Y, float))
    bounds = bounds or Bounds.for_batches(batch_sizes)
    free = model == "free"
    W = np.ones_like(Y)
    u0, a0 = _grid_start(x, Y, W, bounds, free)
    c, u, a, r, rss = _lm(x, Y, W, u0, a0, bounds, free)
    if model == "huber":
        scale = robust_scale(r) if huber_scale is None else np.broadcast_to(huber_scale, (len(Y),))
        for _ in range(IRLS_ITERATIONS):
            W = _huber_weights(r, scale)
            c, u, a, r, _ = _lm(x, Y, W, u, a, bounds, False, iterations=LM_ITERATIONS // 4)
        rss = (r * r).sum(-1)
    return BatchFit(log_s_min=c, log_b_noise=u, alpha=a, residuals=r, rss=rss,
                    at_lower=u <= bounds.u_lo + BOUND_TOLERANCE,
                    at_upper=u >= bounds.u_hi - BOUND_TOLERANCE)


def n_parameters(model: str) -> int:
    return 3 if model == "free" else 2


def polish(batch_sizes, y, fit: BatchFit, model: str, bounds: Optional[Bounds] = None,
           huber_scale: Optional[float] = None) -> BatchFit:
    """Refine one fit with scipy.optimize.least_squares over all parameters (c, u[, alpha]).

    Started from the profiled solution, so it only tightens convergence; for "huber" it solves
    Huber's M-estimator directly (loss="huber", f_scale = HUBER_K * scale).
    """
    from scipy.optimize import least_squares

    x = np.log(np.asarray(batch_sizes, float))
    y = np.asarray(y, float)
    bounds = bounds or Bounds.for_batches(batch_sizes)
    free = model == "free"
    p0 = [fit.log_s_min[0], fit.log_b_noise[0]] + ([fit.alpha[0]] if free else [])
    lo = [-np.inf, bounds.u_lo] + ([ALPHA_BOUNDS[0]] if free else [])
    hi = [np.inf, bounds.u_hi] + ([ALPHA_BOUNDS[1]] if free else [])
    p0 = np.clip(p0, np.array(lo) + 1e-12, np.array(hi) - 1e-12)

    def resid(p):
        return p[0] + model_curve(x, p[1], p[2] if free else 1.0) - y

    kw = {}
    if model == "huber":
        scale = huber_scale if huber_scale is not None else float(robust_scale(fit.residuals)[0])
        kw = dict(loss="huber", f_scale=HUBER_K * scale)
    sol = least_squares(resid, p0, bounds=(lo, hi), x_scale="jac", xtol=1e-12, ftol=1e-12,
                        gtol=1e-12, **kw)
    base = float(0.5 * np.sum(resid(p0) ** 2)) if model != "huber" else np.inf
    p = sol.x if (model == "huber" or 0.5 * np.sum(sol.fun ** 2) <= base) else p0
    r = y - p[0] - model_curve(x, p[1], p[2] if free else 1.0)
    u = float(p[1])
    return BatchFit(log_s_min=np.array([p[0]]), log_b_noise=np.array([u]),
                    alpha=np.array([p[2] if free else 1.0]), residuals=r[None], rss=np.array([r @ r]),
                    at_lower=np.array([u <= bounds.u_lo + BOUND_TOLERANCE]),
                    at_upper=np.array([u >= bounds.u_hi - BOUND_TOLERANCE]))


def steps_at(batch, log_s_min, log_b_noise, alpha):
    """S(B) = S_min (1 + (B_noise / B)^alpha), broadcasting (McCandlish et al. 2018)."""
    return np.exp(log_s_min + model_curve(np.log(batch), log_b_noise, alpha))
