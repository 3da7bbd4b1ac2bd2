"""`scaling demo --workload nqm`: the whole pipeline (sweep -> steps -> CBS -> law -> figures)."""

import csv
import json

from scaling.cli import main
from scaling.demo import demo
from sweep_helpers import write_grid


def test_nqm_demo_runs_the_whole_pipeline(tmp_path, capsys):
    out = tmp_path / "nqm_demo"
    (tmp_path / "loose_run").mkdir()  # a run directory beside the demo (scaling train --out): the parent
    (tmp_path / "loose_run" / "config.json").write_text("{}")  # looks like a sweep, the demo's figures still find theirs
    assert main(["demo", "--workload", "nqm", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "steps.csv")))
    done = [r for r in rows if r["status"] == "done"]
    assert done and {r["tokens"] for r in done} == {"4096", "16384", "65536"}
    # three data sizes -> a CBS per group and a law CBS ~ D^a with an interval
    assert text.count("critical batch size (Zhang et al. 2024 Def. 1") == 3
    fit = json.loads((out / "fit_tokens.json").read_text())
    assert "leave_one_out" in json.dumps(fit)
    for name in ("fig_steps_vs_batch_data_sizes", "fig_cbs_vs_data_size", "fig_loss_vs_tokens"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 10_000
    # rerunning a finished demo runs nothing and prints the same CBS lines
    assert main(["demo", "--workload", "nqm", "--out", str(out), "--quiet", "--no-figures"]) == 0
    again = capsys.readouterr().out
    cbs_lines = [l for l in text.splitlines() if l.startswith("D = ")]
    assert cbs_lines == [l for l in again.splitlines() if l.startswith("D = ")]


def test_demo_pipeline_on_a_fast_grid(tmp_path):
    """``scaling demo``'s printing path (sweep -> steps.csv -> S(B) -> CBS) on an NQM grid."""
    grid = write_grid(tmp_path / "g.yaml", tokens=[4096], batch_sizes=[4, 8, 16, 32, 64, 128])
    lines = []
    res = demo(out=tmp_path / "d", grid=grid, print_fn=lines.append, quiet=True, poll_s=0.05)
    text = "\n".join(lines)
    assert (tmp_path / "d" / "steps.csv").exists() and "critical batch size" in text and "interval" in text
    steps = [t["steps"] for t in res["table"] if t["steps"]]
    assert len(steps) >= 5 and all(a > b for a, b in zip(steps, steps[1:]))  # S(B) falls with B
    assert main(["demo", "--grid", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "x")]) == 2
