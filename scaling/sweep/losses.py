"""``scaling steps RUNS --losses -o losses.csv``: the loss grid of a sweep, so one sweep gives both
the CBS (steps to target) and B_opt (``scaling optimum``).

One row per run that trained to its budget: its final loss (the run's own eval metric, on EWA
weights when EWA is on) after exactly D tokens, in the loss-grid columns of docs/design.md
(``params,tokens,batch_size,lr,loss,seq_len,seed,status``) plus ``model, phase, run_id,
final_tokens, metric``. A run trained to its budget is a finished run whose last step ends
within one step's tokens of D: in the two-phase protocol the reference runs at B_ref, and every
run of a grid that trains each cell for D tokens. Chase runs that stopped at the target (or
were outpaced), or ran past D towards the token cap, have no loss at D and are counted, not
listed. Diverged and failed runs are listed with their status and no loss: they were tried.
"""

from __future__ import annotations

import os
from pathlib import Path

from scaling.store import atomic_write_text
from scaling.sweep.export import table_csv
from scaling.sweep.records import find_sweeps, read_sweep

LOSS_COLUMNS = ("params", "tokens", "batch_size", "lr", "loss", "seq_len", "seed", "status", "model", "phase",
                "run_id", "final_tokens", "metric")
TRIED_STATES = ("diverged", "failed")
DEFAULT_METRIC = "eval_loss"


def final_loss(summary: dict):
    """(loss, metric): the run's final value of the metric it was judged by (``eval_metric``)."""
    metric = summary.get("eval_metric") or DEFAULT_METRIC
    return summary.get(f"final_{metric}"), metric


def trained_to_budget(summary: dict) -> bool:
    """The run's last step ends within one step's tokens of its budget D."""
    d, done = summary.get("tokens"), summary.get("final_tokens")
    step_tokens = (summary.get("batch_size") or 0) * (summary.get("seq_len") or 0)
    return d is not None and done is not None and abs(float(done) - float(d)) < max(step_tokens, 1)


def loss_rows(runs_dir: "str | os.PathLike") -> tuple:
    """(rows, skipped): the loss grid of every sweep under ``runs_dir``, and counts of the runs left
    out by reason ("stopped before D", "ran past D", "not finished")."""
    rows, skipped = [], {}
    for root in find_sweeps(runs_dir):
        for rec in read_sweep(root).runs:
            s, info = rec.summary or {}, rec.info
            base = {"params": s.get("params", info.get("params")), "tokens": s.get("tokens", info.get("tokens")),
                    "batch_size": s.get("batch_size", info.get("batch_size")), "lr": s.get("lr", info.get("lr")),
                    "seq_len": s.get("seq_len"), "seed": s.get("seed", info.get("seed")), "status": rec.state,
                    "model": info.get("model", ""), "phase": info.get("phase", ""), "run_id": rec.run_id or "",
                    "final_tokens": s.get("final_tokens"), "loss": None, "metric": None}
            if rec.state in TRIED_STATES:
                rows.append(base)
            elif rec.state not in ("done", "censored"):
                skipped["not finished"] = skipped.get("not finished", 0) + 1
            elif trained_to_budget(s):
                loss, metric = final_loss(s)
                rows.append({**base, "status": "done" if loss is not None else "failed", "loss": loss,
                             "metric": metric})
            else:
                done = float(s.get("final_tokens") or 0)
                reason = ("not trained" if done == 0 else
                          "stopped before D" if done < float(base["tokens"] or 0) else "ran past D")
                skipped[reason] = skipped.get(reason, 0) + 1
    rows.sort(key=lambda r: (float(r["params"] or 0), float(r["tokens"] or 0), float(r["batch_size"] or 0),
                             float(r["lr"] or 0), str(r["seed"]), r["run_id"]))
    return [{c: r.get(c) for c in LOSS_COLUMNS} for r in rows], skipped


def losses_csv(rows: list) -> str:
    return table_csv(rows, LOSS_COLUMNS)


def write_losses_csv(rows: list, path: "str | os.PathLike") -> None:
    """Write the loss grid atomically (a reader never sees half of it)."""
    atomic_write_text(Path(path), losses_csv(rows))
