"""Write two synthetic loss grids for `scaling optimum` and `scaling cbs --from-losses` (clearly synthetic).

    python examples/loss_grid.py                 # -> examples/loss_grid.csv, examples/loss_grid_iso.csv
    scaling optimum examples/loss_grid.csv --against params,tokens -o fits/loss_grid.json
    scaling predict fits/loss_grid.json --params 1e9 --tokens 2e10
    scaling plan fits/loss_grid.json --params 1e9 --tokens 2e10 --chip-flops 989e12 --mfu 0.4 \\
        --chips-max 256 --per-chip-batch 8
    scaling cbs --from-losses examples/loss_grid_iso.csv --target-loss 3.0

loss_grid.csv: 9 groups (N = 1M, 4M, 16M x D = 20M, 80M, 320M tokens), each 7 batch sizes x 7
learning rates around a known optimum, one seed, final losses from the bowl of
``scaling.analysis.synthetic_losses.TrueBowl`` (quadratic in log B and log lr) with 0.1% noise. The
true laws: B_opt = 128 (N / 1e6)^0.1 (D / 2e7)^0.5 sequences of 128 tokens and
lr_opt = 3e-3 (N / 1e6)^-0.5 (D / 2e7)^0.2.

loss_grid_iso.csv: two model sizes, 16 data sizes from 1M to 1B tokens x 8 batch sizes (16 ... 2048)
x 3 lrs, whose tokens to the target loss 3.0 follow D*(B) = T S_min (B + B_noise) (1 + (64 / B)^2)
(``TrueSteps``): S_min = 200 steps, B_noise = 256 and 512 sequences; below ~B = 150 more tokens
are needed again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from scaling.analysis.synthetic_losses import TrueBowl, TrueSteps, iso_loss_runs, synthetic_loss_runs, to_csv

GROUPS = [(n, d) for n in (1e6, 4e6, 1.6e7) for d in (2e7, 8e7, 3.2e8)]
FACTORS = 2.0 ** np.arange(-3, 4)       # batch sizes and lrs from 1/8 to 8 x the optimum
NOISE = 1e-3
ISO_TOKENS = np.geomspace(1e6, 1e9, 16)
ISO_BATCHES = 2.0 ** np.arange(4, 12)
ISO_LRS = (0.5, 1.0, 2.0)
ISO_MODELS = ((1e6, TrueSteps(b_low=64, b_noise=256)), (4e6, TrueSteps(b_low=64, b_noise=512)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=str(Path(__file__).parent), help="where to write the two CSVs")
    ap.add_argument("--seed", type=int, default=0, help="noise seed")
    args = ap.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    runs = synthetic_loss_runs(GROUPS, FACTORS, FACTORS, TrueBowl(b_a_params=0.1), noise=NOISE, rng=rng)
    (out / "loss_grid.csv").write_text(to_csv(runs))
    iso = [r for n, truth in ISO_MODELS for r in iso_loss_runs(n, ISO_TOKENS, ISO_BATCHES, ISO_LRS, truth,
                                                                noise=NOISE / 10, rng=rng)]
    (out / "loss_grid_iso.csv").write_text(to_csv(iso))
    print(f"wrote {out / 'loss_grid.csv'} ({len(runs)} runs) and {out / 'loss_grid_iso.csv'} ({len(iso)} runs)")


if __name__ == "__main__":
    main()
