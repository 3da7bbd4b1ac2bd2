"""``scaling status [RUNS]``: where a sweep stands.

Counts by state (done, running, failed, censored, diverged, pending), then per (N, D) group
its target, which batch sizes are finished / running / pending, tokens spent, and an ETA:
remaining tokens (reference runs: D each; chase runs: D each, a typical cost between the
large-B and small-B ends, capped) divided by the measured throughput (tokens of finished runs
per second of their wall time, from ``events.jsonl``) times the number of live workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from scaling.store import read_json
from scaling.sweep.protocol import SEARCH
from scaling.sweep.records import STATES, find_sweeps, read_sweep

DEFAULT_RUNS = "runs"


@dataclass
class GroupStatus:
    key: str
    params: object
    tokens: object
    target: object
    batch_sizes: dict  # batch size -> {"done": n, "running": n, "pending": n, "failed": n, ...}
    tokens_spent: float = 0.0
    search: list = field(default_factory=list)  # adaptive: what unfinished lr searches wait for, and why
    # batch sizes were not run


@dataclass
class SweepStatus:
    name: str
    root: str
    counts: dict
    groups: list = field(default_factory=list)
    tokens_spent: float = 0.0
    tokens_remaining: float = 0.0
    throughput: float = 0.0  # tokens/s per worker, measured
    workers: int = 0  # live claims now
    eta_s: float | None = None

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def _remaining(rec) -> float:
    tokens = float(rec.info.get("tokens") or 0)
    cap = rec.info.get("max_tokens")
    if rec.state == "pending":
        return min(tokens, float(cap)) if cap else tokens
    if rec.state == "running":
        return max(0.0, tokens - rec.tokens_spent)
    return 0.0


def sweep_status(root) -> SweepStatus:
    rec = read_sweep(root)
    counts = {s: 0 for s in STATES}
    for r in rec.runs:
        counts[r.state] = counts.get(r.state, 0) + 1
    groups = {}
    for g in rec.groups():
        groups[g["key"]] = GroupStatus(g["key"], g.get("params"), g.get("tokens"), g.get("target"), {})
    for r in rec.runs:
        key = r.info.get("group")
        if key not in groups:
            groups[key] = GroupStatus(key, r.info.get("params"), r.info.get("tokens"), r.info.get("target_loss"), {})
        gs = groups[key]
        b = int(r.info.get("batch_size") or 0)
        cell = gs.batch_sizes.setdefault(b, {})
        cell[r.state] = cell.get(r.state, 0) + 1
        gs.tokens_spent += r.tokens_spent
    for key, lines in search_lines(root).items():
        if key in groups:
            groups[key].search = lines
    spent = sum(r.tokens_spent for r in rec.runs)
    finished = {e["run_id"]: e for e in rec.events if e.get("event") == "finish"}
    by_id = {r.run_id: r for r in rec.runs if r.run_id}
    done_tokens = sum(by_id[i].tokens_spent for i in finished if i in by_id)
    done_seconds = sum(float(e.get("seconds") or 0) for i, e in finished.items() if i in by_id)
    throughput = done_tokens / done_seconds if done_seconds > 0 else 0.0
    remaining = sum(_remaining(r) for r in rec.runs)
    workers = counts["running"]
    eta = remaining / (throughput * max(1, workers)) if throughput > 0 else (0.0 if remaining == 0 else None)
    return SweepStatus(name=rec.name, root=str(root), counts=counts,
                       groups=sorted(groups.values(), key=lambda g: (float(g.params or 0), float(g.tokens or 0))),
                       tokens_spent=spent, tokens_remaining=remaining, throughput=throughput,
                       workers=workers, eta_s=eta)


def search_lines(root) -> dict:
    """group -> one line per lr search still going (what it waits for) or batch size not run (why),
    from an adaptive sweep's search.json; empty for the grid protocol."""
    try:
        doc = read_json(os.path.join(root, SEARCH))
    except (FileNotFoundError, ValueError):
        return {}
    out = {}
    for key, g in doc.get("groups", {}).items():
        lines = []
        ref = g.get("reference")
        if ref and not ref.get("done"):
            lines.append(f"B_ref: {ref.get('reason')}")
        for seed, chain in g.get("chase", {}).items():
            for b, s in chain.items():
                if s.get("not_run"):
                    lines.append(f"{b} ({seed}): not run, {s['not_run']}")
                elif not s.get("done"):
                    lines.append(f"{b} ({seed}): {s.get('reason')}")
        out[key] = lines
    return out


def status(runs: "str | os.PathLike" = DEFAULT_RUNS) -> list:
    """SweepStatus of every sweep under ``runs`` (a sweep directory or a runs root) that has runs
    (a directory holding only an exported steps table has no state to report)."""
    return [s for s in (sweep_status(root) for root in find_sweeps(runs)) if any(s.counts.values())]


def _fmt_n(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.0f}"


def _fmt_s(s) -> str:
    if s is None:
        return "unknown (no finished run yet)"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _batches(gs: GroupStatus, state: str) -> str:
    bs = [b for b, c in sorted(gs.batch_sizes.items()) if c.get(state)]
    return " ".join(str(b) for b in bs) or "-"


def render(statuses: list) -> str:
    out = []
    for st in statuses:
        c = st.counts
        out.append(f"sweep {st.name} ({st.root}): " + ", ".join(f"{c.get(s, 0)} {s}" for s in
                                                                   ("done", "running", "failed", "censored",
                                                                    "diverged", "pending")))
        out.append(f"  tokens spent {_fmt_n(st.tokens_spent)}, about {_fmt_n(st.tokens_remaining)} to go; "
                   f"{_fmt_n(st.throughput)} tokens/s per worker, {st.workers} running; ETA {_fmt_s(st.eta_s)}")
        for gs in st.groups:
            t = f"{gs.target:.5g}" if isinstance(gs.target, (int, float)) else "pending"
            complete = [b for b, cnt in sorted(gs.batch_sizes.items())
                        if not cnt.get("pending") and not cnt.get("running")]
            out.append(f"  {gs.key}: N={gs.params} D={gs.tokens} target {t}; "
                       f"finished B: {' '.join(map(str, complete)) or '-'}; running B: {_batches(gs, 'running')}; "
                       f"pending B: {_batches(gs, 'pending')}; tokens {_fmt_n(gs.tokens_spent)}")
            out += [f"    search {line}" for line in gs.search]
    return "\n".join(out) if out else "no sweeps found"
