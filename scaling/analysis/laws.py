"""Power laws of the CBS (and of S_min, B_noise) against params, tokens, or both.

Form (docs/design.md, "The science", laws): log y = log c + sum_k a_k log(x_k / x0_k), fitted in log space
by least squares (default) or Huber's M-estimator (iteratively reweighted). The pivot x0 is the
geometric mean of the fitted groups, so c is the law at the centre of the data and its interval
is not inflated by the correlation with the exponents; ``prefactor_at_unit`` gives c at x = 1.

Uncertainty (a two-level parametric bootstrap): each resample r replaces every group's value by
the fitted law plus that group's own bootstrap deviation (propagating the per-group interval),
plus Gaussian scatter of variance tau^2, the lack of fit beyond measurement noise, estimated by
moments (DerSimonian & Laird 1986): tau^2 = max(0, (sum e_g^2 - sum (1 - h_g) s_g^2) / (G - p)).
All resamples are solved at once as one multi-right-hand-side least-squares problem.

A second form, ``offset`` (the third form of Zhang et al. 2024's fitting notebook), adds a floor:
y = y0 + c * prod_k (x_k / x0_k)^a_k, y0 >= 0, fitted in log space (least squares on
log y - log(y0 + c prod ...)) within bounds by Levenberg-Marquardt from OFFSET_STARTS starting
floors (each with (log c, a) from the linear fit of log(y - y0)), keeping the best, so the answer
does not depend on one initial guess. Its intervals use the same two-level bootstrap, every
resample refitted from every start at once; leverages come from the Jacobian at the solution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from scaling.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_SEED, percentile_interval
from scaling.errors import ScalingError

VARIABLES = ("params", "tokens")
METHODS = ("lstsq", "huber")
FORMS = ("power", "offset")
COLLINEARITY_MAX_CORR = 0.99    # |corr(log N, log D)| above this: a joint fit cannot separate them
MIN_LOG_SPREAD = 1e-6           # a variable whose log range is below this does not vary
HUBER_K = 1.345
MAD_TO_SIGMA = 1.4826
HUBER_MIN_SCALE = 1e-3
IRLS_ITERATIONS = 30
LACK_OF_FIT_LEVEL = 0.95       # lack of fit counted only when significant at this level
LACK_OF_FIT_GATE = True
OFFSET_STARTS = (0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9)   # starting floors y0, as fractions of min(y)
OFFSET_Y0_MAX = 0.999         # y0 below this fraction of the smallest value (c > 0 keeps y > y0)
OFFSET_A_MAX = 5.0            # |exponent| bound of the offset form
OFFSET_ITERATIONS = 40            # bootstrap refits converge well within this; the point fit is polished by scipy
OFFSET_LAMBDA0 = 1e-3
OFFSET_LAMBDA_UP, OFFSET_LAMBDA_DOWN = 4.0, 3.0
OFFSET_STEP_TOLERANCE = 1e-10


def parse_against(against) -> tuple:
    """"params", "tokens", "params,tokens" (or a sequence) -> a tuple of variable names."""
    names = [a.strip() for a in (against.split(",") if isinstance(against, str) else against)]
    if not names or any(n not in VARIABLES for n in names) or len(set(names)) != len(names):
        raise ScalingError(f"--against must be params, tokens or params,tokens; got {against!r}")
    return tuple(v for v in VARIABLES if v in names)


def check_design(X_log: np.ndarray, names: Sequence[str], what: str = "groups") -> None:
    """Refuse fits the groups cannot support: a constant variable, or collinear N and D."""
    G, k = X_log.shape
    if G < k + 1:
        raise ScalingError(f"a law against {','.join(names)} has {k + 1} parameters and needs at "
                           f"least {k + 1} {what} with a usable CBS; got {G}")
    for j, n in enumerate(names):
        if np.ptp(X_log[:, j]) < MIN_LOG_SPREAD:
            raise ScalingError(f"all {what} have the same {n}; cannot fit a law against {n}")
    if k == 2:
        corr = np.corrcoef(X_log[:, 0], X_log[:, 1])[0, 1]
        if not np.isfinite(corr) or abs(corr) > COLLINEARITY_MAX_CORR:
            raise ScalingError(
                f"the {what} cannot separate params from tokens: log params and log tokens are "
                f"collinear (|corr| = {abs(corr):.4f} > {COLLINEARITY_MAX_CORR}); vary them "
                f"independently or fit --against params or --against tokens")


def lack_of_fit_variance(e, s2, h, df) -> float:
    """Scatter of the groups about the law beyond their own noise (method of moments).

    tau^2 = max(0, (sum e_g^2 - sum (1 - h_g) s_g^2) / df) (DerSimonian & Laird 1986, for OLS),
    taken as zero unless the lack of fit is significant: Q = sum e_g^2 / ((1 - h_g) s_g^2)
    above the chi-square(df) quantile at LACK_OF_FIT_LEVEL. The truncated moment estimator
    alone is biased upwards when the law holds, which widens intervals for no reason.
    """
    if df <= 0 or not LACK_OF_FIT_GATE:
        return 0.0 if df <= 0 else max(0.0, (float(e @ e) - float(((1 - h) * s2).sum())) / df)
    from scipy.special import chdtri

    q = float(np.sum(e * e / np.maximum((1 - h) * s2, 1e-300)))
    if q <= chdtri(df, 1.0 - LACK_OF_FIT_LEVEL):
        return 0.0
    return max(0.0, (float(e @ e) - float(((1 - h) * s2).sum())) / df)


def _design(X_log, pivot_log):
    return np.column_stack([np.ones(len(X_log)), X_log - pivot_log])


def solve(A: np.ndarray, Y: np.ndarray, method: str = "lstsq") -> np.ndarray:
    """Coefficients (R, p) for each row of Y (R, G) in log y = A beta; Huber by IRLS."""
    Y = np.atleast_2d(Y)
    beta = np.linalg.lstsq(A, Y.T, rcond=None)[0].T
    if method == "lstsq":
        return beta
    if method != "huber":
        raise ScalingError(f"unknown law fitting method {method!r}; expected one of {', '.join(METHODS)}")
    r = Y - beta @ A.T
    med = np.median(r, 1, keepdims=True)
    scale = np.maximum(MAD_TO_SIGMA * np.median(np.abs(r - med), 1), HUBER_MIN_SCALE)[:, None]
    for _ in range(IRLS_ITERATIONS):
        w = np.minimum(1.0, HUBER_K * scale / np.maximum(np.abs(r), 1e-300))
        AtWA = np.einsum("gi,rg,gj->rij", A, w, A)
        AtWy = np.einsum("gi,rg,rg->ri", A, w, Y)
        beta = np.linalg.solve(AtWA, AtWy[..., None])[..., 0]
        r = Y - beta @ A.T
    return beta


@dataclass(frozen=True)
class PowerLaw:
    """y = c * prod_k (x_k / pivot_k)^a_k, with bootstrap draws of (log c, a_1, ...)."""

    quantity: str
    variables: tuple
    pivot: dict
    log_c: float
    exponents: dict
    method: str
    tau: float                      # lack-of-fit sd in log y beyond the per-group noise
    residuals: tuple                # log y - log law, per fitted group
    fitted_range: dict              # variable -> [min, max] over the fitted groups
    draws: np.ndarray = field(repr=False, compare=False, default=None)  # (R, 1 + k)
    confidence: float = DEFAULT_CONFIDENCE
    unit: str = ""

    @property
    def c(self) -> float:
        return float(np.exp(self.log_c))

    @property
    def prefactor_at_unit(self) -> float:
        """c at x = 1: y = c1 * prod x_k^a_k (to compare with published forms)."""
        return float(np.exp(self.log_c - sum(self.exponents[v] * np.log(self.pivot[v]) for v in self.variables)))

    def intervals(self) -> dict:
        lo, hi = percentile_interval(self.draws, self.confidence)
        out = {"c": [float(np.exp(lo[0])), float(np.exp(hi[0]))]}
        for j, v in enumerate(self.variables):
            out[f"a_{v}"] = [float(lo[j + 1]), float(hi[j + 1])]
        return out

    def log_design(self, values: dict) -> np.ndarray:
        return np.array([1.0] + [np.log(values[v]) - np.log(self.pivot[v]) for v in self.variables])

    def value(self, values: dict) -> float:
        beta = np.array([self.log_c] + [self.exponents[v] for v in self.variables])
        return float(np.exp(self.log_design(values) @ beta))

    def value_draws(self, values: dict, rng: Optional[np.random.Generator] = None,
                    with_scatter: bool = True) -> np.ndarray:
        """Bootstrap draws of y at ``values``; with the lack-of-fit scatter tau by default."""
        log_y = self.draws @ self.log_design(values)
        if with_scatter and self.tau > 0:
            rng = rng or np.random.default_rng(DEFAULT_SEED)
            log_y = log_y + self.tau * rng.standard_normal(len(log_y))
        return np.exp(log_y)

    def to_dict(self) -> dict:
        expr = f"{self.quantity} = c * " + " * ".join(f"({v} / {self.pivot[v]:.6g})^a_{v}" for v in self.variables)
        return {
            "form": "power", "expression": expr, "quantity": self.quantity, "unit": self.unit,
            "variables": list(self.variables), "method": self.method, "pivot": dict(self.pivot),
            "log_c": self.log_c, "parameters": {"c": self.c, **{f"a_{v}": self.exponents[v] for v in self.variables}},
            "intervals": self.intervals(), "confidence": self.confidence,
            "prefactor_at_unit": self.prefactor_at_unit, "lack_of_fit_sd": self.tau,
            "residuals": list(self.residuals), "fitted_range": {k: list(v) for k, v in self.fitted_range.items()},
            "draws": {"log_c": self.draws[:, 0].tolist(),
                      **{f"a_{v}": self.draws[:, j + 1].tolist() for j, v in enumerate(self.variables)}},
        }

    @staticmethod
    def from_dict(d: dict) -> "PowerLaw":
        try:
            variables = tuple(d["variables"])
            draws = np.ascontiguousarray(
                np.column_stack([d["draws"]["log_c"]] + [d["draws"][f"a_{v}"] for v in variables]), float)
            return PowerLaw(quantity=d["quantity"], variables=variables,
                            pivot={v: float(d["pivot"][v]) for v in variables},
                            log_c=float(d["log_c"]),
                            exponents={v: float(d["parameters"][f"a_{v}"]) for v in variables},
                            method=d["method"], tau=float(d["lack_of_fit_sd"]), residuals=tuple(d["residuals"]),
                            fitted_range={k: tuple(v) for k, v in d["fitted_range"].items()},
                            draws=draws, confidence=float(d["confidence"]), unit=d.get("unit", ""))
        except (KeyError, TypeError, ValueError) as e:
            raise ScalingError(f"malformed law in fit file: {e!r}") from None


def fit_power_law(quantity: str, variables: tuple, X: np.ndarray, y: np.ndarray, y_draws: np.ndarray,
                  method: str = "lstsq", confidence: float = DEFAULT_CONFIDENCE,
                  rng: Optional[np.random.Generator] = None, unit: str = "") -> PowerLaw:
    """Fit log y = log c + a . log(x / x0) to groups (X: (G, k) raw values, y: (G,)), with draws.

    ``y_draws`` (R, G) are each group's bootstrap draws of y (its own uncertainty).
    """
    rng = rng or np.random.default_rng(DEFAULT_SEED)
    X_log = np.log(np.asarray(X, float))
    check_design(X_log, variables)
    pivot_log = X_log.mean(0)
    A = _design(X_log, pivot_log)
    log_y = np.log(np.asarray(y, float))
    beta = solve(A, log_y[None], method)[0]
    fitted = A @ beta
    e = log_y - fitted
    D = np.log(np.asarray(y_draws, float)) - log_y[None, :]          # per-group bootstrap deviations
    G, p = A.shape
    s2 = np.nanvar(D, axis=0)
    h = np.einsum("gi,ij,gj->g", A, np.linalg.pinv(A.T @ A), A)
    tau2 = lack_of_fit_variance(e, s2, h, G - p)
    Ystar = fitted[None, :] + D + np.sqrt(tau2) * rng.standard_normal(D.shape)
    draws = np.ascontiguousarray(solve(A, Ystar, method), float)
    return PowerLaw(quantity=quantity, variables=tuple(variables),
                    pivot={v: float(np.exp(pivot_log[j])) for j, v in enumerate(variables)},
                    log_c=float(beta[0]), exponents={v: float(beta[j + 1]) for j, v in enumerate(variables)},
                    method=method, tau=float(np.sqrt(tau2)), residuals=tuple(float(v) for v in e),
                    fitted_range={v: (float(np.exp(X_log[:, j].min())), float(np.exp(X_log[:, j].max())))
                                  for j, v in enumerate(variables)},
                    draws=draws, confidence=confidence, unit=unit)


def _offset_model(theta, Z):
    """log(y0 + exp(log c + Z a)) and its Jacobian (R, G, 2 + k) for theta (R, 2 + k) = (y0, log c, a)."""
    u = theta[:, 1:2] + np.einsum("gk,rk->rg", Z, theta[:, 2:])
    m = np.logaddexp(np.log(np.maximum(theta[:, :1], 1e-300)), u)
    share = np.exp(u - m)                                   # c x^a / (y0 + c x^a)
    J = np.concatenate([np.exp(-m)[..., None], share[..., None], share[..., None] * Z[None]], -1)
    return m, J


def _offset_lm(Z, logy, theta, hi_y0):
    """Vectorised Levenberg-Marquardt on sum (log y - log(y0 + c x^a))^2 within the bounds."""
    k = Z.shape[1]
    lo = np.concatenate([[0.0, -np.inf], np.full(k, -OFFSET_A_MAX)])[None]
    hi = np.concatenate([np.zeros((len(theta), 1)), np.full((len(theta), 1), np.inf),
                         np.full((len(theta), k), OFFSET_A_MAX)], 1)
    hi[:, 0] = hi_y0
    theta = np.clip(theta, lo, hi)
    lam = np.full(len(theta), OFFSET_LAMBDA0)
    m, J = _offset_model(theta, Z)
    r = logy - m
    rss = (r * r).sum(1)
    eye = np.eye(theta.shape[1])[None]
    for _ in range(OFFSET_ITERATIONS):
        A = np.einsum("rgi,rgj->rij", J, J)
        g = np.einsum("rgi,rg->ri", J, r)
        diag = np.einsum("rii->ri", A)
        step = np.linalg.solve(A + (lam[:, None] * (diag + 1e-12))[:, :, None] * eye, g[..., None])[..., 0]
        trial = np.clip(theta + step, lo, hi)
        m2, J2 = _offset_model(trial, Z)
        r2 = logy - m2
        rss2 = (r2 * r2).sum(1)
        ok = rss2 <= rss
        theta = np.where(ok[:, None], trial, theta)
        J = np.where(ok[:, None, None], J2, J)
        r = np.where(ok[:, None], r2, r)
        rss = np.where(ok, rss2, rss)
        lam = np.where(ok, lam / OFFSET_LAMBDA_DOWN, lam * OFFSET_LAMBDA_UP)
        if np.all(np.abs(step) < OFFSET_STEP_TOLERANCE):
            break
    return theta, rss


def _linear_starts(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """(S, R, 2 + k) starting points: floor y0 = f min(y) for f in OFFSET_STARTS, (log c, a) from the
    linear least-squares fit of log(y - y0) on log(x / x0)."""
    A = np.column_stack([np.ones(Y.shape[1]), Z])
    ymin = Y.min(1)
    out = []
    for f in OFFSET_STARTS:
        y0 = f * ymin
        lin = np.linalg.lstsq(A, np.log(Y - y0[:, None]).T, rcond=None)[0].T
        out.append(np.column_stack([y0, lin]))
    return np.stack(out)


def fit_offset_many(Z: np.ndarray, Y: np.ndarray, start: Optional[np.ndarray] = None) -> np.ndarray:
    """Best (y0, log c, a) for each row of Y (R, G).

    Without ``start``: Levenberg-Marquardt from every one of the OFFSET_STARTS starting floors,
    keeping the best per row. With ``start`` (a solution, e.g. the point fit, used for bootstrap
    rows): from that start and from the best of the linear starts by objective, keeping the better.
    """
    Y = np.atleast_2d(np.asarray(Y, float))
    R = len(Y)
    logy = np.log(Y)
    hi_y0 = OFFSET_Y0_MAX * Y.min(1)
    starts = _linear_starts(Z, Y)
    if start is not None:
        init_rss = np.stack([((logy - _offset_model(t, Z)[0]) ** 2).sum(1)
                             for t in starts])
        chosen = starts[np.nanargmin(np.where(np.isfinite(init_rss), init_rss, np.inf), 0), np.arange(R)]
        starts = np.stack([np.broadcast_to(start, chosen.shape), chosen])
    S = len(starts)
    theta, rss = _offset_lm(Z, np.tile(logy, (S, 1)), starts.reshape(S * R, -1), np.tile(hi_y0, S))
    theta, rss = theta.reshape(S, R, -1), rss.reshape(S, R)
    rss = np.where(np.isfinite(rss), rss, np.inf)
    return theta[np.argmin(rss, 0), np.arange(R)]


@dataclass(frozen=True)
class OffsetLaw:
    """y = y0 + c * prod_k (x_k / pivot_k)^a_k, with bootstrap draws of (y0, log c, a_1, ...)."""

    quantity: str
    variables: tuple
    pivot: dict
    y0: float
    log_c: float
    exponents: dict
    tau: float
    residuals: tuple
    fitted_range: dict
    draws: np.ndarray = field(repr=False, compare=False, default=None)  # (R, 2 + k)
    confidence: float = DEFAULT_CONFIDENCE
    unit: str = ""
    method: str = "lstsq"

    @property
    def c(self) -> float:
        return float(np.exp(self.log_c))

    @property
    def prefactor_at_unit(self) -> float:
        """c at x = 1: y = y0 + c1 * prod x_k^a_k."""
        return float(np.exp(self.log_c - sum(self.exponents[v] * np.log(self.pivot[v]) for v in self.variables)))

    def _z(self, values: dict) -> np.ndarray:
        return np.array([np.log(values[v]) - np.log(self.pivot[v]) for v in self.variables])

    def value(self, values: dict) -> float:
        a = np.array([self.exponents[v] for v in self.variables])
        return float(self.y0 + np.exp(self.log_c + self._z(values) @ a))

    def value_draws(self, values: dict, rng: Optional[np.random.Generator] = None,
                    with_scatter: bool = True) -> np.ndarray:
        """Bootstrap draws of y at ``values``; the lack-of-fit scatter tau acts in log y."""
        y = self.draws[:, 0] + np.exp(self.draws[:, 1] + self.draws[:, 2:] @ self._z(values))
        if with_scatter and self.tau > 0:
            rng = rng or np.random.default_rng(DEFAULT_SEED)
            y = y * np.exp(self.tau * rng.standard_normal(len(y)))
        return y

    def intervals(self) -> dict:
        lo, hi = percentile_interval(self.draws, self.confidence)
        out = {"y0": [float(lo[0]), float(hi[0])], "c": [float(np.exp(lo[1])), float(np.exp(hi[1]))]}
        for j, v in enumerate(self.variables):
            out[f"a_{v}"] = [float(lo[j + 2]), float(hi[j + 2])]
        return out

    def to_dict(self) -> dict:
        expr = f"{self.quantity} = y0 + c * " + " * ".join(f"({v} / {self.pivot[v]:.6g})^a_{v}" for v in self.variables)
        return {
            "form": "offset", "expression": expr, "quantity": self.quantity, "unit": self.unit,
            "variables": list(self.variables), "method": self.method, "pivot": dict(self.pivot),
            "log_c": self.log_c,
            "parameters": {"y0": self.y0, "c": self.c, **{f"a_{v}": self.exponents[v] for v in self.variables}},
            "intervals": self.intervals(), "confidence": self.confidence,
            "prefactor_at_unit": self.prefactor_at_unit, "lack_of_fit_sd": self.tau,
            "residuals": list(self.residuals), "fitted_range": {k: list(v) for k, v in self.fitted_range.items()},
            "draws": {"y0": self.draws[:, 0].tolist(), "log_c": self.draws[:, 1].tolist(),
                      **{f"a_{v}": self.draws[:, j + 2].tolist() for j, v in enumerate(self.variables)}},
        }

    @staticmethod
    def from_dict(d: dict) -> "OffsetLaw":
        try:
            variables = tuple(d["variables"])
            draws = np.ascontiguousarray(np.column_stack(
                [d["draws"]["y0"], d["draws"]["log_c"]] + [d["draws"][f"a_{v}"] for v in variables]), float)
            return OffsetLaw(quantity=d["quantity"], variables=variables,
                             pivot={v: float(d["pivot"][v]) for v in variables},
                             y0=float(d["parameters"]["y0"]), log_c=float(d["log_c"]),
                             exponents={v: float(d["parameters"][f"a_{v}"]) for v in variables},
                             tau=float(d["lack_of_fit_sd"]), residuals=tuple(d["residuals"]),
                             fitted_range={k: tuple(v) for k, v in d["fitted_range"].items()},
                             draws=draws, confidence=float(d["confidence"]), unit=d.get("unit", ""),
                             method=d.get("method", "lstsq"))
        except (KeyError, TypeError, ValueError) as e:
            raise ScalingError(f"malformed law in fit file: {e!r}") from None


def fit_offset_law(quantity: str, variables: tuple, X: np.ndarray, y: np.ndarray, y_draws: np.ndarray,
                   method: str = "lstsq", confidence: float = DEFAULT_CONFIDENCE,
                   rng: Optional[np.random.Generator] = None, unit: str = "") -> OffsetLaw:
    """Fit log y = log(y0 + c prod (x / x0)^a) to groups (X: (G, k), y: (G,)), with bootstrap draws.

    ``y_draws`` (R, G) are each group's bootstrap draws of y. Least squares only (the multi-start
    Levenberg-Marquardt fit has no robust variant here).
    """
    if method != "lstsq":
        raise ScalingError(f"the offset form is fitted by least squares only, not {method!r}")
    rng = rng or np.random.default_rng(DEFAULT_SEED)
    X_log = np.log(np.asarray(X, float))
    check_design(X_log, variables)
    G, k = X_log.shape
    p = k + 2
    if G < p + 1:
        raise ScalingError(f"an offset law against {','.join(variables)} has {p} parameters and needs at least "
                           f"{p + 1} groups; got {G}")
    pivot_log = X_log.mean(0)
    Z = X_log - pivot_log
    y = np.asarray(y, float)
    theta = fit_offset_many(Z, y[None])
    from scipy.optimize import least_squares

    hi = np.concatenate([[OFFSET_Y0_MAX * y.min(), np.inf], np.full(k, OFFSET_A_MAX)])
    lo = np.concatenate([[0.0, -np.inf], np.full(k, -OFFSET_A_MAX)])
    sol = least_squares(lambda t: _offset_model(t[None], Z)[0][0] - np.log(y),
                        np.clip(theta[0], lo, np.nextafter(hi, -np.inf)), bounds=(lo, hi),
                        xtol=1e-12, ftol=1e-12, gtol=1e-12)
    point = sol.x if np.sum(sol.fun ** 2) <= np.sum((_offset_model(theta, Z)[0][0] - np.log(y)) ** 2) else theta[0]
    m, J = _offset_model(point[None], Z)
    e = np.log(y) - m[0]
    D = np.log(np.asarray(y_draws, float)) - np.log(y)[None, :]
    s2 = np.nanvar(D, axis=0)
    h = np.einsum("gi,ij,gj->g", J[0], np.linalg.pinv(J[0].T @ J[0]), J[0])
    tau2 = lack_of_fit_variance(e, s2, h, G - p)
    Ystar = np.exp(m[0][None, :] + D + np.sqrt(tau2) * rng.standard_normal(D.shape))
    draws = np.ascontiguousarray(fit_offset_many(Z, Ystar, start=point), float)
    return OffsetLaw(quantity=quantity, variables=tuple(variables),
                     pivot={v: float(np.exp(pivot_log[j])) for j, v in enumerate(variables)},
                     y0=float(point[0]), log_c=float(point[1]),
                     exponents={v: float(point[j + 2]) for j, v in enumerate(variables)},
                     tau=float(np.sqrt(tau2)), residuals=tuple(float(v) for v in e),
                     fitted_range={v: (float(np.exp(X_log[:, j].min())), float(np.exp(X_log[:, j].max())))
                                   for j, v in enumerate(variables)},
                     draws=draws, confidence=confidence, unit=unit, method=method)


def fit_form(form: str, quantity: str, variables: tuple, X, y, y_draws, method: str = "lstsq",
             confidence: float = DEFAULT_CONFIDENCE, rng: Optional[np.random.Generator] = None, unit: str = ""):
    """A law of the given form: ``power`` (fit_power_law) or ``offset`` (fit_offset_law)."""
    if form == "power":
        return fit_power_law(quantity, variables, X, y, y_draws, method, confidence, rng, unit)
    if form == "offset":
        return fit_offset_law(quantity, variables, X, y, y_draws, method, confidence, rng, unit)
    raise ScalingError(f"unknown law form {form!r}; expected one of {', '.join(FORMS)}")


def law_from_dict(d: dict):
    """A PowerLaw or OffsetLaw from its fit-file entry (by its ``form``)."""
    form = d.get("form", "power") if isinstance(d, dict) else None
    if form == "power":
        return PowerLaw.from_dict(d)
    if form == "offset":
        return OffsetLaw.from_dict(d)
    raise ScalingError(f"malformed law in fit file: unknown form {form!r}")
