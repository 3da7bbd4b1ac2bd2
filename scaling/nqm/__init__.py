"""The noisy quadratic model (NQM) testbed for critical-batch-size measurements.

Zhang et al. 2019 ("Which Algorithmic Choices Matter at Which Batch Sizes?") show that a
quadratic with a power-law spectrum and curvature-shaped gradient noise reproduces the
batch-size behaviour of real networks: perfect scaling, diminishing returns, a plateau, and a
critical batch size that momentum and preconditioning push up. Its expected loss evolves in
closed form, so a whole batch-size x learning-rate sweep costs seconds.

- ``problem``:   the NQM instance (spectrum, noise, init) and the optimizer (momentum, H^-q)
- ``recursion``: exact expected loss (second-moment recursion, dyadic eval schedule)
- ``sampled``:   trajectories with real Gaussian noise (seed-to-seed spread)
- ``sweep``:     exact batch-size x lr sweep, Definition-1 target, S(B), and its CBS read off the
                 curve (``scaling.analysis.definitions.cbs_from_curve``: the one CBS definition)
- ``study``:     CBS against data size D for several spectra and optimizers; figures
"""

from scaling.nqm.problem import NQM, Optimizer
from scaling.nqm.recursion import eval_steps, expected_loss, second_moments
from scaling.nqm.sampled import sampled_loss
from scaling.nqm.sweep import ExactSweep, exact_sweep, lr_grid, reference_target, schedule

__all__ = ["NQM", "Optimizer", "expected_loss", "second_moments", "eval_steps", "sampled_loss",
           "ExactSweep", "exact_sweep", "lr_grid", "reference_target", "schedule"]
