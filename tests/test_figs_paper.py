"""paper_figs/: every figure script on a small NQM sweep run by the real sweep.

The fixture writes an NQM grid file (``workload: nqm``: the exact expected loss, milliseconds a
run) to runs/grids/ and runs it with ``scaling.sweep.run_sweep`` into runs/<sweep>/: the two-phase
protocol sets each group's Definition-1 target (best final loss at the reference batch over the
lr grid, Zhang et al. 2024) and every other batch size chases it up to the sample cap. The steps
table is the sweep's own export (``scaling.sweep.export``), and a fit file is saved with the
analysis API. Each figure must write non-empty PNG and PDF files, plot exactly the analysis
API's numbers, and skip with one line when its inputs are missing. (Their wall time is measured
in benchmarks/bench_nqm.py, not asserted here.)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from scaling.sweep import run_sweep, steps_rows, write_steps_csv
from scaling.sweep.records import STEPS_FILE
from sweep_helpers import write_grid

ROOT = Path(__file__).resolve().parent.parent
SWEEP = "nqm_fixture"
# (dim, samples): three dims at one budget, the largest dim at three budgets
DIMS = (32, 64, 128)
BUDGET = 2048
LARGEST_DIM_BUDGETS = (512, 2048, 8192)
GROUPS = tuple((dim, BUDGET) for dim in DIMS[:-1]) + tuple((DIMS[-1], d) for d in LARGEST_DIM_BUDGETS)
BATCHES = (1, 2, 4, 8, 16, 32, 64)
LRS = tuple(0.02 * 2.0**k for k in range(7))  # 0.02 ... 1.28 (SGD on h_max = 1 is stable below 2)
REFERENCE_BATCH = 4
CAP_FACTOR = 4
FAST = dict(quiet=True, compile_cache=None, poll_s=0.05)  # no JAX cache, short waits between phases


def nqm_grid(path: Path) -> Path:
    """The fixture's grid file: GROUPS x BATCHES x LRS, one seed, Definition-1 targets at B_ref."""
    models = [{"dim": dim, "tokens": [d for g_dim, d in GROUPS if g_dim == dim]} for dim in DIMS]
    return write_grid(path, name=SWEEP, base={}, models=models, tokens=None, batch_sizes=list(BATCHES),
                      lrs=list(LRS), reference_batch=REFERENCE_BATCH, max_tokens_factor=CAP_FACTOR)


def run_nqm_sweep(runs_dir: Path) -> Path:
    """runs_dir/grids/<SWEEP>.yaml run by the sweep into runs_dir/<SWEEP>, with its exported steps.csv."""
    grids = Path(runs_dir) / "grids"
    grids.mkdir(parents=True, exist_ok=True)
    sweep = Path(runs_dir) / SWEEP
    run_sweep(nqm_grid(grids / f"{SWEEP}.yaml"), out=sweep, **FAST)
    write_steps_csv(steps_rows(sweep), sweep / STEPS_FILE)
    return sweep


EXPECTED = ("fig_steps_vs_batch", "fig_steps_vs_batch_data_sizes", "fig_steps_vs_batch_model_sizes",
            "fig_cbs_vs_data_size", "fig_cbs_vs_model_size", "fig_loss_vs_tokens")


def build_fixture(base: Path) -> dict:
    """base/runs (NQM sweep + its grid file), base/fits (a law against params saved by the analysis
    API), base/out (where the figures go), and the sweep's steps table and CBS result."""
    from scaling.analysis import critical_batch_sizes, fit_law, load_steps
    from scaling.plots import sources

    runs, fits, out = base / "runs", base / "fits", base / "out"
    sweep = run_nqm_sweep(runs)
    table = load_steps(sweep / STEPS_FILE)
    result = critical_batch_sizes(table, reference_batch=REFERENCE_BATCH)
    chin = sources.chinchilla_groups(result.groups)
    fit_law(dataclasses.replace(result, groups=tuple(chin)), "params").save(fits / "nqm_params.json")
    return {"runs": runs, "fits": fits, "out": out, "table": table, "result": result}


def make_figures(fx: dict) -> dict:
    """Figure name -> FigureResult or Skip of every paper_figs/ script on the fixture."""
    from scaling.plots import registry

    return {s.name: registry.run_script(s, fx["runs"], fx["fits"], fx["out"])
            for s in registry.scripts(ROOT / "paper_figs")}


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("figs"))


@pytest.fixture(scope="module")
def made(fixture):
    return make_figures(fixture)


def _group(fixture, params, tokens):
    return next(g for g in fixture["result"].groups if (g.params, g.tokens) == (params, tokens))


def test_every_expected_figure_writes_png_pdf_and_caption(made):
    from scaling.plots import FigureResult, Skip

    for name in EXPECTED:
        r = made[name]
        assert isinstance(r, FigureResult), getattr(r, "reason", r)
        assert r.sweep == SWEEP
        png, pdf, cap = (Path(f) for f in r.files)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000
        text = cap.read_text()
        assert SWEEP in text and "synthetic" in text
    for name, r in made.items():
        if name not in EXPECTED:
            assert isinstance(r, Skip) and "\n" not in r.line()   # 5, 6, 7 need LM runs


def test_steps_figure_plots_the_analysis_numbers(made, fixture):
    from scaling.analysis.stepmodel import steps_at

    curves = made["fig_steps_vs_batch"].data["curves"]
    assert [c["params"] for c in curves] == [32.0, 64.0, 128.0]   # one per model size, D nearest 20 N
    for c in curves:
        g = _group(fixture, c["params"], c["tokens"])
        np.testing.assert_array_equal(c["batch_sizes"], g.batch_sizes)
        np.testing.assert_array_equal(c["steps"], g.steps)
        assert c["cbs"] == g.cbs and c["cbs_ci"] == tuple(g.cbs_ci) and c["reference_batch"] == REFERENCE_BATCH
        np.testing.assert_allclose(c["fit_steps"], steps_at(c["fit_batch"], np.log(g.s_min), np.log(g.b_noise), 1.0),
                                   rtol=1e-12)
        assert c["ideal_steps"][0] * c["fit_batch"][0] == pytest.approx(
            steps_at(REFERENCE_BATCH, np.log(g.s_min), np.log(g.b_noise), 1.0) * REFERENCE_BATCH)
        np.testing.assert_allclose(c["steps_norm"], np.array(g.steps) / steps_at(
            REFERENCE_BATCH, np.log(g.s_min), np.log(g.b_noise), 1.0))
        np.testing.assert_allclose(c["ideal_steps_norm"], REFERENCE_BATCH / c["fit_batch"])
    series = made["fig_steps_vs_batch_data_sizes"].data["curves"]
    assert [(c["params"], c["tokens"]) for c in series] == [(128.0, 512.0), (128.0, 2048.0), (128.0, 8192.0)]


def test_law_figures_plot_the_fit(made, fixture):
    from scaling.analysis import load_law

    d = made["fig_cbs_vs_model_size"].data
    assert "nqm_params.json" in d["fit_source"]      # the shipped fit file, not a refit
    law = load_law(fixture["fits"] / "nqm_params.json").cbs
    np.testing.assert_allclose(d["law"]["y"], [law.value({"params": x}) for x in d["law"]["x"]], rtol=1e-12)
    assert d["law"]["x"][0] == pytest.approx(32) and d["law"]["x"][-1] == pytest.approx(128)
    assert d["forecast"]["x"][0] == pytest.approx(128) and np.all(d["law"]["lo"] <= d["law"]["y"])
    for x, cbs, ci in zip(d["x"], d["cbs"], d["cbs_ci"]):
        g = _group(fixture, x, 2048.0)
        assert cbs == g.cbs and tuple(ci) == tuple(g.cbs_ci)
    assert len(d["held_out"]) == 1 and d["held_out"][0]["x"] == 128
    t = made["fig_cbs_vs_data_size"].data
    assert "fit_law" in t["fit_source"]               # no fit file on these groups: fitted here
    assert list(t["x"]) == [512.0, 2048.0, 8192.0]


def test_loss_figure_crossings_are_the_steps_table(made, fixture):
    d = made["fig_loss_vs_tokens"].data
    g = _group(fixture, d["params"], d["tokens"])
    assert d["target_loss"] == g.target_loss
    crossings = {c["batch_size"]: c["crossing_step"] for c in d["curves"]}
    for b, s in zip(g.batch_sizes, g.steps):
        assert crossings[b] == pytest.approx(s, rel=1e-12)
    assert sorted(crossings) == list(g.batch_sizes)   # B_ref too: its reference run sets L*
    for c in d["curves"]:
        if c["batch_size"] == REFERENCE_BATCH:   # trained for D: L* is its own final loss (Definition 1)
            assert c["tokens"][-1] == g.tokens and c["loss"][-1] == g.target_loss
        else:                                    # chase runs stop at the first eval below L*
            assert c["loss"][-1] <= g.target_loss < c["loss"][-2]


def test_presets_skip_the_nqm_and_convert_units(made):
    import importlib.util

    from scaling.analysis.presets import get_preset

    assert "synthetic NQM" in made["fig_presets"].reason
    spec = importlib.util.spec_from_file_location("fig_presets", ROOT / "paper_figs" / "fig_presets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    z = mod.preset_curve("zhang2024-chinchilla")
    assert z["x"][0] == 85e6 and z["x"][-1] == pytest.approx(1.2e9)
    assert z["tokens"][0] == pytest.approx(512 * 93.20 * 85 ** 0.47)
    k = mod.preset_curve("kaplan2020")
    assert k["tokens"][-1] == pytest.approx(get_preset("kaplan2020").fn(6.0))


def test_reruns_are_byte_identical(fixture, made, tmp_path):
    from scaling.plots import registry

    script = next(s for s in registry.scripts(ROOT / "paper_figs") if s.name == "fig_steps_vs_batch")
    r = registry.run_script(script, fixture["runs"], fixture["fits"], tmp_path)
    for f in r.files:
        assert Path(f).read_bytes() == (fixture["out"] / Path(f).name).read_bytes(), f


def test_missing_inputs_skip_with_one_line(tmp_path, capsys):
    from scaling.cli import main

    (tmp_path / "runs").mkdir()
    assert main(["figs", "--runs", str(tmp_path / "runs"), "--fits", str(tmp_path / "fits"),
                 "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) >= 8 and all(": skipped: " in l for l in lines[:-1])
    assert "0 figure(s) written" in lines[-1] and not (tmp_path / "out").exists()


def test_cli_list_unknown_name_and_sweep(fixture, capsys):
    from scaling.cli import main

    assert main(["figs", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(n in listed for n in EXPECTED + ("fig_presets",))
    assert main(["figs", "no_such_figure"]) == 2
    assert "unknown figure" in capsys.readouterr().err
    assert main(["figs", "steps_vs_batch", "--runs", str(fixture["runs"]), "--sweep", "nope",
                 "--out", str(fixture["out"] / "x")]) == 2  # bad input: one line, exit 2 (issue 20)
    assert "--sweep nope: no such sweep" in capsys.readouterr().err
