"""The exact NQM recursion against sampled trajectories and against its own definition."""

import numpy as np
import pytest

from scaling.nqm import NQM, Optimizer, eval_steps, expected_loss, sampled_loss, second_moments

PROBLEM = NQM(dim=40, p=1.0, noise_scale=1.0, init_scale=1.0)
SEEDS = 1500
Z_MAX = 4.5  # |mean - exact| / SE bound at each of ~10 checkpoints


@pytest.mark.parametrize("optimizer, lr", [(Optimizer(), 0.6), (Optimizer(momentum=0.9), 0.08),
                                           (Optimizer(q=0.5), 0.4), (Optimizer(momentum=0.5, q=0.5), 0.3)])
def test_recursion_matches_mean_of_sampled_trajectories(optimizer, lr):
    steps = np.arange(0, 241, 24)
    exact = expected_loss(PROBLEM, optimizer, lr, 4, steps)
    samples = sampled_loss(PROBLEM, optimizer, lr, 4, steps, seeds=SEEDS, seed=1)
    assert samples[:, 0] == pytest.approx(exact[0])  # deterministic start
    mean = samples[:, 1:].mean(axis=0)
    se = samples[:, 1:].std(axis=0, ddof=1) / np.sqrt(SEEDS)
    z = (mean - exact[1:]) / se
    assert np.all(np.abs(z) < Z_MAX), z
    # sharper: each seed's average over the checkpoints is one independent draw
    per_seed = samples[:, 1:].mean(axis=1)
    z_avg = (per_seed.mean() - exact[1:].mean()) / (per_seed.std(ddof=1) / np.sqrt(SEEDS))
    assert abs(z_avg) < Z_MAX, z_avg
    assert exact[-1] < 0.5 * exact[0]  # it actually trained


def test_dyadic_jumps_equal_step_by_step_recursion():
    """F^(2^j) by squaring equals applying M -> A M A^T + Q one step at a time."""
    opt = Optimizer(momentum=0.7, q=0.25)
    lrs = np.array([0.01, 0.3, 1.0])[:, None]
    batches = np.array([1, 16])
    steps = eval_steps(300, 4)
    jumped = second_moments(PROBLEM, opt, lrs, batches, steps)
    # direct 3-state recursion on (E theta^2, E theta v, E v^2), written out independently
    h, c = PROBLEM.curvature(), PROBLEM.noise()
    a = lrs[..., None] * h ** (-opt.q)
    s = c / batches[:, None]
    beta = opt.momentum
    tt, tv, vv = np.ones(jumped.shape[:2] + (PROBLEM.dim,)), np.zeros(1), np.zeros(1)
    direct = []
    for t in range(301):
        if t in steps:
            direct.append(tt)
        a11, a12, a21, a22 = 1 - a * h, beta, -a * h, beta
        noise = s * a * a
        tt, tv, vv = (a11**2 * tt + 2 * a11 * a12 * tv + a12**2 * vv + noise,
                      a11 * a21 * tt + (a11 * a22 + a12 * a21) * tv + a12 * a22 * vv + noise,
                      a21**2 * tt + 2 * a21 * a22 * tv + a22**2 * vv + noise)
    np.testing.assert_allclose(jumped, np.stack(direct, axis=-2), rtol=1e-9)


def test_sgd_matches_closed_form():
    """beta = 0: E[theta_t^2] = r^t m0 + a^2 s (1 - r^t) / (1 - r), r = (1 - a h)^2 (NQM paper, Sec. 3.2)."""
    lr, batch, t = 0.3, 8, np.array([0, 5, 50, 500])
    h, c = PROBLEM.curvature(), PROBLEM.noise()
    r = (1 - lr * h) ** 2
    closed = r ** t[:, None] + lr**2 * c / batch * (1 - r ** t[:, None]) / (1 - r)
    np.testing.assert_allclose(second_moments(PROBLEM, Optimizer(), lr, batch, t), closed, rtol=1e-10)


def test_unstable_lr_diverges_to_inf():
    lr = 1.01 * Optimizer().max_stable_lr(PROBLEM)
    loss = expected_loss(PROBLEM, Optimizer(), lr, 1, [0, 10, 100_000])
    assert np.isfinite(loss[0]) and loss[1] > loss[0] and loss[2] == np.inf
    stable = expected_loss(PROBLEM, Optimizer(momentum=0.9), 0.99 * Optimizer(momentum=0.9).max_stable_lr(PROBLEM),
                           1, [0, 100_000])
    assert np.all(np.isfinite(stable))


def test_eval_steps_are_dyadic():
    steps = eval_steps(1000, 8)
    assert steps[0] == 0 and steps[-1] == 1000 and np.all(np.diff(steps) > 0)
    gaps = np.diff(steps[:-1])
    assert np.all(gaps & (gaps - 1) == 0)  # powers of two
    assert np.all(np.diff(steps[8:]) / steps[8:-1] <= 1 / 8 + 1e-12)
    with pytest.raises(ValueError):
        eval_steps(10, 3)
