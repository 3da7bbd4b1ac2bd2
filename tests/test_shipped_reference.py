"""The shipped CPU reference study: its fits load, predict, and were fitted on the shipped steps
table (same bytes), which was read off the shipped run records by the sweep's own code."""

import json
from pathlib import Path

import pytest

from scaling.analysis import load_law, load_steps
from scaling.cli import main
from scaling.sweep import steps_csv, steps_rows

REPO = Path(__file__).resolve().parent.parent
SWEEP = REPO / "runs" / "cpu_reference"
FITS = {name: REPO / "fits" / f"cpu_reference_{name}.json" for name in ("cbs_vs_tokens", "cbs_vs_params", "cbs_joint")}


def test_steps_table_is_the_run_records():
    assert steps_csv(steps_rows(SWEEP)) == (SWEEP / "steps.csv").read_text()


def test_every_run_finished():
    rows = steps_rows(SWEEP)
    plan = json.loads((SWEEP / "sweep.json").read_text())["runs"]
    assert len(rows) == len(plan)
    assert {r["status"] for r in rows} <= {"done", "censored", "diverged"}


@pytest.mark.parametrize("name", sorted(FITS))
def test_fits_were_made_on_the_shipped_table(name):
    fit = load_law(FITS[name])
    assert fit.meta["input"]["sha256"] == load_steps(SWEEP / "steps.csv").sha256
    lo, hi = fit.cbs.intervals()[f"a_{fit.variables[-1]}"]
    assert lo < fit.cbs.exponents[fit.variables[-1]] < hi


def test_predict_from_a_shipped_law(capsys):
    assert main(["predict", str(FITS["cbs_joint"]), "--params", "1e9", "--tokens", "2e10", "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["cbs"] > 0 and p["cbs_ci"][0] < p["cbs"] < p["cbs_ci"][1] and p["extrapolation"]["extrapolates"]


def test_every_run_has_one_identity():
    """Directory name == config.json run_id == summary.json run_id == the id of its config."""
    from scaling.identity import run_id
    from scaling.lm.config import TrainConfig
    from scaling.summary import CENSORED_BY, RunSummary

    dirs = [d for d in sorted(SWEEP.iterdir()) if (d / "config.json").is_file()]
    assert len(dirs) == len(json.loads((SWEEP / "sweep.json").read_text())["runs"])
    for d in dirs:
        config = json.loads((d / "config.json").read_text())
        summary = RunSummary.from_dict(json.loads((d / "summary.json").read_text()))
        spec = {k: v for k, v in config["config"].items() if k != "derived"}
        assert d.name == config["run_id"] == summary.run_id == run_id("lm", TrainConfig.from_dict(spec)), d
        assert summary.status != "censored" or summary.censored_by in CENSORED_BY
