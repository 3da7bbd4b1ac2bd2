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


# Refitting the shipped table reproduces the shipped numbers to this relative tolerance: the
# bootstrap is seeded, but NumPy/SciPy releases may change the last bits of a least-squares fit.
REFIT_RTOL = 1e-6
REFIT_ATOL = 1e-9  # bootstrap draws of exponents near zero


def _assert_close(new, old, where="$"):
    if isinstance(old, dict):
        assert isinstance(new, dict) and set(new) == set(old), where
        for k in old:
            _assert_close(new[k], old[k], f"{where}.{k}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), where
        for i, (a, b) in enumerate(zip(new, old)):
            _assert_close(a, b, f"{where}[{i}]")
    elif isinstance(old, float) and not isinstance(new, bool):
        assert new == pytest.approx(old, rel=REFIT_RTOL, abs=REFIT_ATOL), where
    elif where.endswith(".source"):  # the steps table's path: the copy's lies elsewhere
        assert Path(new).name == Path(old).name, where
    else:
        assert new == old, where


def test_the_documented_command_regenerates_the_shipped_results(tmp_path):
    """``python scripts/reference_results.py runs/cpu_reference`` from the run records alone: the
    same steps table byte for byte, and the same CBS and laws (to REFIT_RTOL, REFIT_ATOL)."""
    import runpy
    import shutil

    sweep = tmp_path / "cpu_reference"
    shutil.copytree(SWEEP, sweep, ignore=shutil.ignore_patterns("steps.csv"))
    script = runpy.run_path(str(REPO / "scripts" / "reference_results.py"))
    assert script["main"]([str(sweep), "--fits", str(tmp_path / "fits")]) == 0
    assert (sweep / "steps.csv").read_text() == (SWEEP / "steps.csv").read_text()
    for name in ("cbs", *FITS):
        new = json.loads((tmp_path / "fits" / f"cpu_reference_{name}.json").read_text())
        _assert_close(new, json.loads((REPO / "fits" / f"cpu_reference_{name}.json").read_text()))


def test_the_documented_sweep_command_resumes_the_shipped_sweep_and_trains_nothing(tmp_path):
    """``scaling sweep runs/grids/cpu_reference.yaml``: its manifest predates the protocol key
    (those sweeps trained the grid), so the grid file pinning ``protocol: grid`` is the same plan."""
    import shutil

    sweep = tmp_path / "cpu_reference"
    shutil.copytree(SWEEP, sweep)
    assert main(["sweep", str(REPO / "runs" / "grids" / "cpu_reference.yaml"), "--out", str(sweep), "--quiet"]) == 0
    assert sorted(p.name for p in sweep.iterdir() if (p / "config.json").is_file()) == \
        sorted(p.name for p in SWEEP.iterdir() if (p / "config.json").is_file())
