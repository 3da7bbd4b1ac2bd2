"""Figures of the NQM testbed: S(B) per optimizer, and sampled trajectories around the expectation.

``plot_steps_vs_batch`` is the NQM paper's headline plot (Zhang et al. 2019, Fig. 1 / Fig. 5):
steps to target against batch size, perfect scaling (slope -1) at small B, a plateau at large
B, momentum and preconditioning extending the linear regime. ``plot_sampled`` shows how far a
handful of seeds scatter around the exact expected loss. Both write a PNG atomically.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np

from scaling.nqm.problem import NQM, Optimizer
from scaling.nqm.recursion import expected_loss
from scaling.nqm.sampled import sampled_loss
from scaling.nqm.sweep import exact_sweep, lr_grid, schedule
from scaling.store import atomic_write_bytes

FIG_OPTIMIZERS = (Optimizer(), Optimizer(momentum=0.9), Optimizer(q=0.5))


def _save(fig, path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_steps_vs_batch(path, problem: NQM = NQM(dim=1000, p=1.0), budget: int = 2**18,
                        reference_batch: int = 4, optimizers: Sequence[Optimizer] = FIG_OPTIMIZERS,
                        batch_sizes: Sequence[int] = tuple(2**k for k in range(0, 17))) -> dict:
    """S(B) (tuned lr, Definition-1 target at ``budget``) per optimizer, with each curve's CBS marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    out = {}
    for opt in optimizers:
        r = exact_sweep(problem, opt, batch_sizes, lr_grid(problem, opt, 4, 6), budget, reference_batch,
                        refine=2, cap_factor=64)
        s = r.steps_to_target
        line, = ax.loglog(r.batch_sizes, s, "o-", ms=3, label=opt.label)
        c = r.cbs()
        s_at = np.exp(np.interp(np.log(c.cbs), np.log(r.batch_sizes[np.isfinite(s)]), np.log(s[np.isfinite(s)])))
        ax.plot([c.cbs], [s_at], "*", ms=12, color=line.get_color())
        out[opt.label] = {"cbs": c.cbs, "steps": s.tolist()}
    b = np.asarray(batch_sizes, float)
    s_ref = out[optimizers[0].label]["steps"][list(batch_sizes).index(reference_batch)]
    ax.loglog(b, s_ref * reference_batch / b, "k:", lw=1, label="perfect scaling")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("steps to target S(B)")
    ax.set_title(f"NQM (dim {problem.dim}, p={problem.p:g}), D={budget} samples; * = CBS", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return out


def plot_sampled(path, problem: NQM = NQM(dim=64, p=1.0), optimizer: Optimizer = Optimizer(),
                 lr_per_sample: float = 0.02, batch_sizes: Sequence[int] = (1, 16, 256), budget: int = 2**15,
                 seeds: int = 8) -> None:
    """Exact expected loss against ``seeds`` sampled trajectories; lr = lr_per_sample x B (capped at 1)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    for b in batch_sizes:
        lr = min(lr_per_sample * b, 1.0)
        steps = schedule(b, budget)
        exact = expected_loss(problem, optimizer, lr, b, steps)
        samples = sampled_loss(problem, optimizer, lr, b, steps, seeds=seeds, seed=0)
        line, = ax.loglog(steps[1:] * b, exact[1:], lw=2, label=f"B={b}, lr {lr:g}: exact E[L]")
        for k in range(seeds):
            ax.loglog(steps[1:] * b, samples[k, 1:], lw=0.6, alpha=0.5, color=line.get_color())
    ax.set_xlabel("samples processed")
    ax.set_ylabel("loss")
    ax.set_title(f"NQM (dim {problem.dim}) {optimizer.label}: recursion vs {seeds} sampled seeds", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def main() -> int:
    """``python -m scaling.nqm.figures [DIR]``: write the testbed's figures into DIR (default docs/)."""
    import sys

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    print(plot_steps_vs_batch(out / "nqm_steps_vs_batch.png"))
    plot_sampled(out / "nqm_sampled.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
