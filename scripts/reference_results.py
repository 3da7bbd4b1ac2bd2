"""Turn a finished reference sweep into the shipped results: steps table, per-group CBS, laws.

    python scripts/reference_results.py runs/cpu_reference            # -> runs/, fits/
    python scripts/reference_results.py runs/gpu_reference --model-params 13824

Writes (atomically, each from the one before; the same as the CLI commands in the comments):

- ``<sweep>/steps.csv``                    ``scaling steps <sweep> -o <sweep>/steps.csv``
- ``fits/<name>_cbs.json``                 ``scaling cbs <sweep>/steps.csv --json`` (every group)
- ``fits/<name>_cbs_vs_tokens.json``       ``scaling fit ... --against tokens --where params=<N>``
  (the model size with the most data sizes: CBS against D at fixed N)
- ``fits/<name>_cbs_vs_params.json``       ``scaling fit ... --against params --where tokens_per_param=20``
  (every model size at its Chinchilla budget: CBS against N)
- ``fits/<name>_cbs_joint.json``           ``scaling fit ... --against params,tokens`` (all groups;
  refused by the analysis if the design cannot separate N from D)

and prints the tables. Linear scaling is measured from the smallest batch of each group (the
analysis default; ``--reference-batch B`` to change it): a baseline at or above the CBS would floor
every CBS at (1 + eps) x B_ref. Bootstrap seed and resamples are the analysis defaults, so a rerun on the
same steps table writes the same numbers.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from scaling.analysis import critical_batch_sizes, fit_law, load_steps
from scaling.analysis.steps_table import select_groups
from scaling.errors import ScalingError
from scaling.plots.sources import CHINCHILLA_TOKENS_PER_PARAM  # Hoffmann et al. 2022: D ~ 20 N
from scaling.store import atomic_write_text, to_json
from scaling.sweep import steps_rows, write_steps_csv


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", help="a finished sweep directory, e.g. runs/cpu_reference")
    p.add_argument("--fits", default="fits", help="output directory for the fit files (default fits/)")
    p.add_argument("--reference-batch", type=float, default=None, metavar="B",
                   help="baseline of Definition 1's linear scaling (default: the smallest batch of each group; "
                        "the target L* always comes from the sweep's reference runs)")
    p.add_argument("--model-params", type=float, default=None,
                   help="N of the data-size family (default: the model size with the most data sizes)")
    a = p.parse_args(argv)
    sweep = Path(a.sweep)
    name = sweep.name
    fits = Path(a.fits)
    fits.mkdir(parents=True, exist_ok=True)
    try:
        rows = steps_rows(sweep)
        if not rows:
            raise ScalingError(f"{sweep}: no runs")
        write_steps_csv(rows, sweep / "steps.csv")
        table = load_steps(sweep / "steps.csv")
        ref = a.reference_batch  # None: the smallest batch of each group (the analysis default)
        result = critical_batch_sizes(table, reference_batch=ref)
        atomic_write_text(fits / f"{name}_cbs.json", to_json(result.to_dict()) + "\n")
        print(f"{sweep}/steps.csv: {len(rows)} runs, {len(table.groups)} groups; "
              + ", ".join(f"{n} {s}" for s, n in sorted(Counter(r['status'] for r in rows).items())))
        n_data = Counter(g.params for g in table.groups)
        data_params = a.model_params or max(n_data, key=lambda n: (n_data[n], -n))
        laws = {
            "cbs_vs_tokens": ("tokens", {"params": data_params}),
            "cbs_vs_params": ("params", {"tokens_per_param": CHINCHILLA_TOKENS_PER_PARAM}),
            "cbs_joint": ("params,tokens", {}),
        }
        for suffix, (against, where) in laws.items():
            sub = critical_batch_sizes(select_groups(table, where), reference_batch=ref) if where else result
            try:
                fit = fit_law(sub, against)
            except ScalingError as e:
                print(f"{suffix}: not fitted ({e})")
                continue
            out = fits / f"{name}_{suffix}.json"
            fit.save(out)
            law = fit.cbs
            iv = law.intervals()
            exps = ", ".join(f"a_{v} = {law.exponents[v]:.3f} {tuple(round(x, 3) for x in iv[f'a_{v}'])}"
                             for v in fit.variables)
            logo = fit.meta.get("leave_one_out", {})
            held = "; ".join(f"held out {h['params']:.6g}/{h['tokens']:.6g}: predicted {h['predicted']:.3g} "
                             f"{tuple(round(x, 3) for x in h['predicted_ci'])}, measured {h['measured']:.3g}"
                             for h in logo.get("held_out", [])) or f"not done ({logo.get('reason', '')})"
            print(f"{out}: CBS ~ {against} over {len(sub.groups)} groups: {exps}; leave-one-out: {held}")
    except ScalingError as e:
        print(f"reference_results: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
