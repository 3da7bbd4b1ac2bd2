"""The shipped findings study (runs/findings*, fits/findings_*): the documented command
regenerates every steps table, fit and the findings table from the run records alone, and the
README's findings table is that table."""

import json
import runpy
import shutil
from pathlib import Path

import pytest

from test_shipped_reference import _assert_close

REPO = Path(__file__).resolve().parent.parent
SWEEPS = ("findings", "findings_schedules", "findings_schedules_own", "findings_tuning")
SCRIPT = REPO / "scripts" / "findings_results.py"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    """``python scripts/findings_results.py`` on a copy of the run records (no steps.csv, no fits)."""
    tmp = tmp_path_factory.mktemp("findings")
    for name in SWEEPS:
        shutil.copytree(REPO / "runs" / name, tmp / "runs" / name, ignore=shutil.ignore_patterns("steps.csv"))
    script = runpy.run_path(str(SCRIPT))
    assert script["main"](["--runs", str(tmp / "runs"), "--fits", str(tmp / "fits")]) == 0
    return tmp, script


@pytest.mark.parametrize("name", SWEEPS)
def test_the_steps_tables_are_the_run_records(regenerated, name):
    tmp, _ = regenerated
    assert (tmp / "runs" / name / "steps.csv").read_text() == (REPO / "runs" / name / "steps.csv").read_text()


def test_the_fits_and_the_summary_are_regenerated(regenerated):
    tmp, _ = regenerated
    shipped = sorted(p.name for p in (REPO / "fits").glob("findings_*.json"))
    assert sorted(p.name for p in (tmp / "fits").glob("findings_*.json")) == shipped
    assert "findings_summary.json" in shipped
    for name in shipped:
        _assert_close(json.loads((tmp / "fits" / name).read_text()), json.loads((REPO / "fits" / name).read_text()))


def test_the_readme_shows_the_findings_table(regenerated):
    _, script = regenerated
    summary = json.loads((REPO / "fits" / "findings_summary.json").read_text())
    assert script["markdown"](summary["claims"]) in (REPO / "README.md").read_text()


def test_the_schedules_figure_is_drawn_from_the_shipped_sweep(tmp_path):
    """Four configurations of one shape in one sweep: the figure splits them by schedule."""
    from scaling.plots.registry import run_script, scripts, select

    (script,) = select(scripts(REPO / "paper_figs"), ["fig_schedules"])
    result = run_script(script, REPO / "runs", REPO / "fits", tmp_path)
    assert result.sweep == "findings_schedules"
    assert result.data["schedules"] == ["constant", "constant+EWA", "cosine", "wsd"]
    assert (tmp_path / "fig_schedules.png").stat().st_size > 10_000


@pytest.mark.parametrize("figure, fit", [("fig_cbs_vs_data_size", "findings_cbs_vs_tokens.json"),
                                         ("fig_cbs_vs_model_size", "findings_cbs_vs_params.json")])
def test_the_law_figures_draw_the_findings_laws(tmp_path, figure, fit):
    """The shipped law figures come from the findings sweep and draw the findings table's law
    (the fit file, found by its table hash and groups), not one fitted apart."""
    from scaling.plots.registry import run_script, scripts, select

    (script,) = select(scripts(REPO / "paper_figs"), [figure])
    result = run_script(script, REPO / "runs", REPO / "fits", tmp_path)
    assert result.sweep == "findings"
    assert Path(result.data["fit_source"]).name == fit
