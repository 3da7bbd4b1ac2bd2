"""Tokens and wall time of the grid protocol, the adaptive protocol and the oracle, per workload.

    python benchmarks/bench_protocol.py            # -> benchmarks/results/protocol_cost.json
    python benchmarks/bench_protocol.py --nqm-only
    python benchmarks/bench_protocol.py --lm-grid-here   # also retrain the LM grid protocol here

- ``nqm``: a set of NQM groups (exact expected loss) swept under ``protocol: grid`` and
  ``protocol: adaptive`` in this process, one after the other.
- ``lm``: the d24 data-size family of ``runs/grids/cpu_reference.yaml`` at 5, 10 and 20 tokens per
  parameter. The grid protocol's runs are the shipped records (``runs/cpu_reference``); the
  adaptive protocol trains ``benchmarks/grids/protocol_lm.yaml`` (same models, lrs, batch sizes,
  budgets and rules) into ``benchmarks/work/protocol_lm`` (resumed if it exists). Wall time is
  the sum of the runs' own ``wall_time_s`` for both (training time, start-up and compiles of the
  process excluded). The shipped records were trained on another day, maybe another machine, so
  ``--lm-grid-here`` also trains the same grid under ``protocol: grid`` into
  ``benchmarks/work/protocol_lm_grid`` on this machine, one sweep after the other in this process:
  ``wall_s_grid`` and ``wall_s_adaptive`` are then both this machine's (``wall_same_machine``
  says so and gives the retrained grid's tokens); tokens, CBS and laws stay the shipped records',
  and ``same_machine`` compares the two sweeps trained here (tokens, oracle, CBS, laws).

The oracle knows each batch size's best lr in advance: one run per batch size at the grid's
winner (the fewest steps to L*; at B_ref the run that set L*; at a batch size where every lr was
censored, one run to the cap). Tokens are the runs' ``final_tokens`` (samples for the NQM).
Per group: the CBS and its 95% interval under both protocols (``scaling cbs`` defaults); the
law CBS ~ D^a (or N^a) under both.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from scaling import rundir  # noqa: E402
from scaling.analysis import critical_batch_sizes, fit_law  # noqa: E402
from scaling.analysis.steps_table import table_from_records  # noqa: E402
from scaling.machine import cpu_model, load_average  # noqa: E402
from scaling.store import atomic_write_json  # noqa: E402
from scaling.sweep import run_sweep  # noqa: E402
from scaling.sweep.export import load_table, steps_rows  # noqa: E402
from scaling.sweep.records import read_sweep  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "protocol_cost.json"
WORK = ROOT / "benchmarks" / "work"
LM_GRID = ROOT / "benchmarks" / "grids" / "protocol_lm.yaml"
LM_SHIPPED = ROOT / "runs" / "cpu_reference"
LM_PARAMS = 13824  # d24-L2: 12 x 2 x 24^2
NQM_GRID = {
    "workload": "nqm", "base": {"p": 1.0, "evals_per_octave": 8},
    "models": [{"dim": 64}, {"dim": 256}], "tokens": [2048, 8192, 32768],
    "batch_sizes": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    "lrs": [0.0198, 0.0352, 0.0626, 0.111, 0.198, 0.352, 0.626, 1.11, 1.98],
    "seeds": [0], "reference_batch": 4, "target": "definition1", "max_tokens_factor": 4,
}


def sweep_cost(records) -> dict:
    runs = [r for r in records if r.summary]
    return {"runs": len(runs), "tokens": sum(float(r.summary.get("final_tokens") or 0) for r in runs),
            "run_wall_s": sum(float(r.summary.get("wall_time_s") or 0) for r in runs)}


def oracle_tokens(rows: list, records) -> float:
    """One run per (group, batch size) at the grid's winner, from the grid protocol's records."""
    by_id = {r.run_id: r for r in records if r.summary}
    cells: dict = {}
    for r in rows:
        cells.setdefault((r["params"], r["tokens"], r["batch_size"]), []).append(r)
    total = 0.0
    for members in cells.values():
        done = [r for r in members if r["status"] == "done" and r["steps"] is not None]
        if done:
            pick = min(done, key=lambda r: r["steps"])
        else:
            pick = max(members, key=lambda r: float(by_id[r["run_id"]].summary.get("final_tokens") or 0)
                       if r["run_id"] in by_id else 0.0)
        s = by_id.get(pick["run_id"])
        total += float(s.summary.get("final_tokens") or 0) if s else 0.0
    return total


def cbs_and_law(table, against: str) -> tuple:
    result = critical_batch_sizes(table)
    groups = [{"params": g.params, "tokens": g.tokens, "cbs": g.cbs, "cbs_ci": list(g.cbs_ci)}
              for g in result.groups]
    law = fit_law(result, against)
    a = f"a_{against}"
    return groups, law.cbs.exponents[against], list(law.cbs.intervals()[a])


def compare(grid_dir: Path, adaptive_dir: Path, against: str, where: dict | None = None) -> dict:
    """Cost and results of the grid protocol's sweep against the adaptive one's; ``where``: the
    grid sweep's groups to compare ({column: set of values}), all when None."""
    def keep(values: dict) -> bool:
        return not where or all(float(values.get(k) or 0) in v for k, v in where.items())

    grid_rec, ad_rec = read_sweep(grid_dir), read_sweep(adaptive_dir)
    grid_rec.runs = [r for r in grid_rec.runs if keep(r.info)]
    grid_rows = [r for r in steps_rows(grid_dir) if keep(r)]
    g_table = table_from_records(grid_rows)
    a_table = load_table(adaptive_dir)
    g_groups, g_a, g_ci = cbs_and_law(g_table, against)
    a_groups, a_a, a_ci = cbs_and_law(a_table, against)
    gc, ac = sweep_cost(grid_rec.runs), sweep_cost(ad_rec.runs)
    oracle = oracle_tokens(grid_rows, grid_rec.runs)
    groups = []
    for g in g_groups:
        a = next((x for x in a_groups if (x["params"], x["tokens"]) == (g["params"], g["tokens"])), None)
        groups.append({"params": g["params"], "tokens": g["tokens"], "cbs_grid": g["cbs"], "cbs_grid_ci": g["cbs_ci"],
                       "cbs_adaptive": a and a["cbs"], "cbs_adaptive_ci": a and a["cbs_ci"],
                       "adaptive_inside_grid_ci": bool(a and g["cbs_ci"][0] <= a["cbs"] <= g["cbs_ci"][1])})
    return {"tokens_grid": gc["tokens"], "tokens_adaptive": ac["tokens"], "tokens_oracle": oracle,
            "runs_grid": gc["runs"], "runs_adaptive": ac["runs"],
            "adaptive_over_oracle": ac["tokens"] / oracle, "grid_over_oracle": gc["tokens"] / oracle,
            "wall_s_grid": gc["run_wall_s"], "wall_s_adaptive": ac["run_wall_s"], "groups": groups,
            "exponent_grid": g_a, "exponent_grid_ci": g_ci, "exponent_adaptive": a_a, "exponent_adaptive_ci": a_ci,
            "exponent_adaptive_inside_grid_ci": g_ci[0] <= a_a <= g_ci[1]}


def nqm_part() -> dict:
    out, walls = {}, {}
    for protocol in ("grid", "adaptive"):
        d = WORK / f"protocol_nqm_{protocol}"
        grid = WORK / f"protocol_nqm_{protocol}.yaml"
        grid.parent.mkdir(parents=True, exist_ok=True)
        grid.write_text(yaml.safe_dump({**NQM_GRID, "name": f"protocol_nqm_{protocol}", "protocol": protocol}))
        for p in d.glob("*/") if d.exists() else ():
            rundir.clear_status(p)
        t0 = time.perf_counter()
        run_sweep(grid, out=d, quiet=True, compile_cache=None, poll_s=0.01)
        walls[protocol] = time.perf_counter() - t0
        out[protocol] = d
    res = compare(out["grid"], out["adaptive"], "tokens")
    res["wall_s_grid"], res["wall_s_adaptive"] = walls["grid"], walls["adaptive"]  # whole sweeps, this process
    res["setting"] = {k: v for k, v in NQM_GRID.items() if k != "base"}
    return res


def lm_part(grid_here: bool = False) -> dict:
    t0 = time.perf_counter()
    run_sweep(LM_GRID, out=WORK / "protocol_lm", quiet=True)
    session = time.perf_counter() - t0
    if grid_here:
        here_grid = WORK / "protocol_lm_grid.yaml"
        here_grid.write_text(yaml.safe_dump({**yaml.safe_load(LM_GRID.read_text()), "name": "protocol_lm_grid",
                                             "protocol": "grid"}))
        run_sweep(here_grid, out=WORK / "protocol_lm_grid", quiet=True)
    tokens = sorted({int(round(r * LM_PARAMS)) for r in (5, 10, 20)})
    res = compare(LM_SHIPPED, WORK / "protocol_lm", "tokens", where={"params": {LM_PARAMS}, "tokens": set(tokens)})
    res["adaptive_session_wall_s"] = session  # this invocation (0 work when the sweep was finished before)
    if grid_here:
        # both protocols trained here: tokens, CBS and laws free of another machine's float rounding
        here = compare(WORK / "protocol_lm_grid", WORK / "protocol_lm", "tokens")
        res["same_machine"] = here
        res["wall_same_machine"] = {"machine": cpu_model(), "grid_retrained": str(here_grid.relative_to(ROOT)),
                                    "grid_run_wall_s": here["wall_s_grid"], "grid_tokens": here["tokens_grid"],
                                    "grid_runs": here["runs_grid"], "adaptive_run_wall_s": here["wall_s_adaptive"],
                                    "shipped_grid_run_wall_s": res["wall_s_grid"]}
        res["wall_s_grid"] = here["wall_s_grid"]
    res["setting"] = {"grid": str(LM_GRID.relative_to(ROOT)), "grid_records": str(LM_SHIPPED.relative_to(ROOT)),
                      "params": LM_PARAMS, "tokens": tokens}
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nqm-only", action="store_true")
    p.add_argument("--lm-grid-here", action="store_true",
                   help="also train the LM grid under protocol: grid on this machine, for its wall time")
    a = p.parse_args(argv)
    out = {"benchmark": "bench_protocol.py",
           "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average": load_average()},
           "nqm": nqm_part()}
    if not a.nqm_only:
        out["lm"] = lm_part(a.lm_grid_here)
    out["note"] = ("tokens: final_tokens summed over runs (NQM: samples); wall_s (nqm): the whole sweep in this "
                   "process; wall_s (lm): the runs' own wall_time_s summed (the grid's "
                   + ("retrained on this machine, see lm.wall_same_machine)" if a.lm_grid_here
                      else "from the shipped records)"))
    atomic_write_json(RESULT, out)
    for k in ("nqm", "lm"):
        if k in out:
            r = out[k]
            print(f"{k}: tokens grid {r['tokens_grid']:.4g}, adaptive {r['tokens_adaptive']:.4g}, oracle "
                  f"{r['tokens_oracle']:.4g} (adaptive/oracle {r['adaptive_over_oracle']:.2f}, grid/oracle "
                  f"{r['grid_over_oracle']:.2f}); exponent grid {r['exponent_grid']:.3f} {r['exponent_grid_ci']}, "
                  f"adaptive {r['exponent_adaptive']:.3f}")
            if "same_machine" in r:
                m = r["same_machine"]
                print(f"{k} (both trained here): tokens grid {m['tokens_grid']:.4g}, adaptive {m['tokens_adaptive']:.4g}, "
                      f"oracle {m['tokens_oracle']:.4g} (adaptive/oracle {m['adaptive_over_oracle']:.2f}); run wall "
                      f"grid {m['wall_s_grid']:.0f} s, adaptive {m['wall_s_adaptive']:.0f} s; exponent grid "
                      f"{m['exponent_grid']:.3f} {m['exponent_grid_ci']}, adaptive {m['exponent_adaptive']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
