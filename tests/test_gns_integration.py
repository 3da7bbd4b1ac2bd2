"""The gradient noise scale wired through the trainer, the steps table, the analysis and fig_gns.

Tiny LM runs (tests/train_helpers.py shapes, byte tokenizer) with 4 microbatches per step: the
measurement must leave the training trajectory bit-identical (every microbatch gradient passes
through ``gns.isolate`` in both modes), log finite positive B_simple on log and eval rows, and
store the ``noise_scale.summarize`` reductions in summary.json. ``compare_gns`` is checked on a
synthetic steps table whose B_simple are known multiples of the fitted B_noise.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from scaling import rundir
from scaling.lm import mesh as parallel, optim, step as step_lib, train as train_lib  # noqa: E402
from scaling.lm.step import StepShape  # noqa: E402
from scaling.lm.config import TrainConfig  # noqa: E402
from scaling.errors import ScalingError  # noqa: E402
from scaling.lm.model import build  # noqa: E402
from scaling.noise_scale import summarize  # noqa: E402
from train_helpers import B, L, tiny_spec  # noqa: E402

BYTE_VOCAB = 257
MICRO = B // 4
STEPS = 24
TARGET = 4.5  # crossed within STEPS by the tiny model (eval loss starts at ~ln 257 = 5.5)
GNS_SUMMARY_KEYS = ("b_simple_at_target", "b_simple_mean", "b_simple_crit", "b_simple_final")


def spec(gns: bool, **kw) -> dict:
    # one layer: the two step executables (gns on and off) are this file's main cost, compiling
    return tiny_spec(steps=STEPS, microbatch_size=MICRO, gns=gns, log_every=2, target_loss=TARGET,
                     stop_at_target=False, **{"model.n_layers": 1}, **kw)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same run with the noise scale measured and not, inside one sweep-like directory."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, gns in (("on", True), ("off", False)):
        d = root / "gns_sweep" / name
        out[name] = (d, train_lib.train(TrainConfig.from_dict(spec(gns)), d))
    return root, out


def test_step_is_bit_identical_with_gns_on_or_off(runs, tmp_path):
    config = TrainConfig.from_dict(spec(True))
    model = build(config.model, BYTE_VOCAB)
    common = dict(batch_size=B, microbatch_size=MICRO, seq_len=L, n_ewa=len(config.ewa_decays),
                  schedule=config.optim.schedule, gns_every=config.gns_every, gns_split=config.gns_split)
    mesh = parallel.data_mesh()
    on, off = (step_lib.compiled(model, StepShape(gns=g, **common), mesh) for g in (True, False))
    # placed as train() places them, so these calls reuse the executables the runs compiled
    from scaling.lm.mesh import shard_batch
    hp = parallel.put_replicated(optim.hparams(config), mesh)
    rng = np.random.default_rng(1)
    batches = [shard_batch(rng.integers(0, BYTE_VOCAB, size=(B, L + 1)).astype(np.int32),
                           parallel.batch_sharding(mesh)) for _ in range(3)]
    s_on, s_off = on.init(np.int32(0)), off.init(np.int32(0))
    for batch in batches:
        s_on, m_on = on.step(s_on, batch, hp)
        s_off, m_off = off.step(s_off, batch, hp)
        assert float(m_on["train_loss"]) == float(m_off["train_loss"])
    for a, b in zip(jax.tree_util.tree_leaves((s_on.params, s_on.opt_state, s_on.ewa)),
                    jax.tree_util.tree_leaves((s_off.params, s_off.opt_state, s_off.ewa))):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert set(m_off) == {"train_loss", "lr", "grad_norm"}  # off: no statistics at all
    assert int(s_on.gns_ema.count) == 3 and int(s_off.gns_ema.count) == 0
    # the unbiased estimates from microbatches 4 of B: tr(Sigma) > 0, and the EMAs are their averages
    assert float(m_on["gns_trace"]) > 0 and math.isfinite(float(m_on["gns_g2"]))
    assert float(m_on["grad_sq"]) < float(m_on["grad_sq_micro"])

    # the EMA is part of the checkpointed state: a resumed run continues its average
    from scaling.lm.checkpoint import Checkpointer
    ckpt = Checkpointer(tmp_path)
    ckpt.save(3, s_on, {"step": 3})
    restored, _ = ckpt.restore(3, on.init(np.int32(0)))
    ckpt.close()
    for a, b in zip(restored.gns_ema, s_on.gns_ema):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_runs_log_b_simple_and_keep_the_trajectory(runs):
    _, out = runs
    (d_on, s_on), (d_off, s_off) = out["on"], out["off"]
    rows_on, rows_off = rundir.read_metrics(d_on), rundir.read_metrics(d_off)
    assert [r["step"] for r in rows_on] == [r["step"] for r in rows_off]
    for key in ("train_loss", "eval_loss", "eval_loss_ewa", "grad_norm"):
        a, b = [r.get(key) for r in rows_on], [r.get(key) for r in rows_off]
        assert a == b and any(v is not None for v in a)  # bit-identical losses over the whole run
    assert not any(k.startswith("gns_") for r in rows_off for k in r)
    log_rows = [r for r in rows_on if "train_loss" in r]
    eval_rows = [r for r in rows_on if "eval_loss" in r]
    assert log_rows and eval_rows
    for r in log_rows + eval_rows:
        assert {"gns_g2", "gns_trace", "gns_b_simple"} <= set(r)
    last = rows_on[-1]
    assert last["step"] == STEPS and 0 < last["gns_b_simple"] < math.inf
    assert last["gns_b_simple"] == pytest.approx(last["gns_trace"] / last["gns_g2"], rel=1e-5)


def test_summary_has_the_b_simple_reductions(runs):
    from scaling.lm import gns

    _, out = runs
    (d_on, s_on), (_, s_off) = out["on"], out["off"]
    assert all(s_off[k] is None for k in GNS_SUMMARY_KEYS)
    assert s_on["steps_to_target"] is not None, "the tiny run should cross TARGET"
    for k in GNS_SUMMARY_KEYS:
        assert s_on[k] is not None and s_on[k] > 0, k
    rows = [r for r in rundir.read_metrics(d_on) if "gns_b_simple" in r]
    expect = summarize([r["step"] for r in rows], [r["gns_b_simple"] for r in rows],
                           s_on["steps_to_target"], batch_size=B)
    assert {k: s_on[k] for k in GNS_SUMMARY_KEYS} == {k: expect[k] for k in GNS_SUMMARY_KEYS}
    assert s_on["b_simple_final"] == rows[-1]["gns_b_simple"]
    assert rundir.read_summary(d_on)["b_simple_mean"] == s_on["b_simple_mean"]


# --- no microbatches: split-batch measurement at a cadence -------------------------------------

SPLIT, EVERY = 4, 3  # 4 groups of B/4 sequences, measured at steps 0, 3, 6, ...


def whole_spec(gns: bool, **kw) -> dict:
    return tiny_spec(steps=STEPS, gns=gns, gns_every=EVERY, gns_split=SPLIT, log_every=1, target_loss=TARGET,
                     stop_at_target=False, **{"model.n_layers": 1}, **kw)


@pytest.fixture(scope="module")
def whole_runs(tmp_path_factory):
    """One microbatch per step (no accumulation, one device): gns on and off."""
    root = tmp_path_factory.mktemp("whole")
    return {name: (root / name, train_lib.train(TrainConfig.from_dict(whole_spec(gns)), root / name))
            for name, gns in (("on", True), ("off", False))}


def test_run_without_microbatches_records_b_simple_and_keeps_the_trajectory(whole_runs):
    (d_on, s_on), (d_off, s_off) = whole_runs["on"], whole_runs["off"]
    rows_on, rows_off = rundir.read_metrics(d_on), rundir.read_metrics(d_off)
    assert [r["step"] for r in rows_on] == [r["step"] for r in rows_off]
    for key in ("train_loss", "eval_loss", "eval_loss_ewa", "grad_norm"):
        a, b = [r.get(key) for r in rows_on], [r.get(key) for r in rows_off]
        assert a == b and any(v is not None for v in a)  # bit-identical over the whole run
    assert not any(k.startswith("gns_") or k.startswith("grad_sq") for r in rows_off for k in r)
    log_rows = [r for r in rows_on if "train_loss" in r]
    assert [r["step"] for r in log_rows] == list(range(1, STEPS + 1))
    # step s (1-based) ran from state.step s - 1: measured when (s - 1) % EVERY == 0, NaN (null) otherwise
    for r in log_rows:
        measured = (r["step"] - 1) % EVERY == 0
        assert (r["grad_sq"] is not None) == measured and (r["grad_sq_micro"] is not None) == measured
        if measured:
            assert 0 < r["grad_sq"] < r["grad_sq_micro"]  # the mean of B/4-gradients is noisier
    # the EMA (and so B_simple) changes only on measured steps
    for prev, r in zip(log_rows, log_rows[1:]):
        if (r["step"] - 1) % EVERY:
            assert r["gns_b_simple"] == prev["gns_b_simple"]
    last = rows_on[-1]
    assert last["step"] == STEPS and 0 < last["gns_b_simple"] < math.inf
    assert s_on["steps_to_target"] is not None and s_on["steps_to_target"] == s_off["steps_to_target"]
    for k in GNS_SUMMARY_KEYS:
        assert s_on[k] is not None and 0 < s_on[k] < math.inf, k
    derived = json.loads((d_on / rundir.CONFIG).read_text())["config"]["derived"]
    assert derived["gns_method"] == f"split batch: {SPLIT} x {B // SPLIT} extra gradients every {EVERY} steps"


def test_split_step_statistics_and_bit_identity(whole_runs):
    """Step level, on the executables the runs compiled (the measuring program on steps 0, EVERY,
    ..., the plain one between, as the loop calls them): identical state, EMA only on measured
    steps, and the first measurement equals the App. A estimates from explicit group gradients."""
    from scaling.lm import gns
    from scaling.lm.mesh import shard_batch

    config = TrainConfig.from_dict(whole_spec(True))
    model = build(config.model, BYTE_VOCAB)
    mesh = parallel.data_mesh()
    common = dict(batch_size=B, microbatch_size=B, seq_len=L, n_ewa=len(config.ewa_decays),
                  schedule=config.optim.schedule, gns_every=EVERY, gns_split=SPLIT)
    on, off = (step_lib.compiled(model, StepShape(gns=g, **common), mesh) for g in (True, False))
    hp = parallel.put_replicated(optim.hparams(config), mesh)
    rng = np.random.default_rng(2)
    raw = [rng.integers(0, BYTE_VOCAB, size=(B, L + 1)).astype(np.int32) for _ in range(EVERY + 1)]
    batches = [shard_batch(x, parallel.batch_sharding(mesh)) for x in raw]
    s_on, s_off = on.init(np.int32(0)), off.init(np.int32(0))
    params0 = jax.tree_util.tree_map(np.array, s_on.params)
    counts = []
    for i, batch in enumerate(batches):
        measuring = on.measuring_step if i % EVERY == 0 else on.step  # as the loop calls them
        s_on, m_on = measuring(s_on, batch, hp)
        s_off, m_off = off.step(s_off, batch, hp)
        assert float(m_on["train_loss"]) == float(m_off["train_loss"])
        assert float(m_on["grad_norm"]) == float(m_off["grad_norm"])
        counts.append(int(s_on.gns_ema.count))
        if i == 0:
            first = {k: float(v) for k, v in m_on.items()}
    for a, b in zip(jax.tree_util.tree_leaves((s_on.params, s_on.opt_state, s_on.ewa)),
                    jax.tree_util.tree_leaves((s_off.params, s_off.opt_state, s_off.ewa))):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert counts == [1] * EVERY + [2] and int(s_off.gns_ema.count) == 0
    assert set(m_off) == {"train_loss", "lr", "grad_norm"}

    # group j = rows j, j + SPLIT, ...: per-group gradients at the initial parameters
    grad = jax.jit(jax.grad(lambda p, x: step_lib.loss_fn(model, p, x)))
    groups = [grad(params0, raw[0][j::SPLIT]) for j in range(SPLIT)]
    stacked = jax.tree_util.tree_map(lambda *g: np.stack(g), *groups)
    g2, trace = gns.estimates(gns.from_microbatch_grads(stacked, B // SPLIT))
    assert first["gns_g2"] == pytest.approx(float(g2), rel=1e-3)  # one EMA update, debiased: the estimate
    assert first["gns_trace"] == pytest.approx(float(trace), rel=1e-3)
    if float(g2) > 0:  # random tokens: the one-step |G|^2 estimate may be negative, B_simple then NaN
        assert first["gns_b_simple"] == pytest.approx(float(trace) / float(g2), rel=2e-3)
    else:
        assert math.isnan(first["gns_b_simple"])
    assert float(trace) > 0


def test_bad_gns_settings_are_user_errors(tmp_path, capsys):
    from scaling.cli import main

    with pytest.raises(ScalingError, match="not divisible by gns_split"):
        TrainConfig.from_dict(tiny_spec(steps=STEPS, gns=True, gns_split=3))  # B = 16
    with pytest.raises(ScalingError, match="gns_split must be >= 2"):
        TrainConfig.from_dict(tiny_spec(steps=STEPS, gns=True, gns_split=1))
    with pytest.raises(ScalingError, match="gns_every must be positive"):
        TrainConfig.from_dict(tiny_spec(steps=STEPS, gns=True, gns_every=0))
    # the split is irrelevant with microbatches or with gns off
    TrainConfig.from_dict(tiny_spec(steps=STEPS, gns=True, gns_split=3, microbatch_size=MICRO))
    TrainConfig.from_dict(tiny_spec(steps=STEPS, gns_split=3))
    # a batch size from the memory budget is checked once known
    with pytest.raises(ScalingError, match="divisible by gns_split"):
        train_lib.check_gns(TrainConfig.from_dict(tiny_spec(steps=STEPS, gns=True, gns_split=3,
                                                            microbatch_memory_gb=1.0)), B)
    train_lib.check_gns(TrainConfig.from_dict(whole_spec(True)), B)  # 16 / 4: fine

    import yaml
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(tiny_spec(steps=STEPS, gns=True, gns_split=3)))
    capsys.readouterr()
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "gns_split" in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing written


# --- analysis: compare_gns on a synthetic table ---------------------------------------------

def _synthetic():
    from scaling.analysis import critical_batch_sizes
    from scaling.analysis.synthetic import TrueLaws, synthetic_table

    groups = [(1e6, 2e7), (1e6, 8e7), (1e6, 3.2e8), (4e6, 8e7)]
    table = synthetic_table(groups, [8, 16, 32, 64, 128, 256], TrueLaws(), noise=0.02)
    return critical_batch_sizes(table, n_resamples=20)


def test_compare_gns_on_a_synthetic_table():
    from scaling.analysis.gns_compare import compare_gns

    result = _synthetic()
    g0, g1, g2, g3 = result.groups
    records = []
    for k, g in enumerate((g0, g1, g2)):  # at B_ref: three seeds around 0.5 B_noise, median 0.5 B_noise
        for f in (0.4, 0.5, 0.9):
            records.append({"params": g.params, "tokens": g.tokens, "batch_size": g.reference_batch,
                            "status": "done", "b_simple": f * g.b_noise})
        # away from B_ref (ignored while B_ref has values), and a censored run (never used)
        records.append({"params": g.params, "tokens": g.tokens, "batch_size": 2 * g.reference_batch,
                        "status": "done", "b_simple": 100 * g.b_noise})
        records.append({"params": g.params, "tokens": g.tokens, "batch_size": g.reference_batch,
                        "status": "censored", "b_simple": 1000 * g.b_noise})
    # last group: no row at B_ref -> the median over all its runs; plus an empty cell (CSV style)
    records += [{"params": str(g3.params), "tokens": str(g3.tokens), "batch_size": "64", "status": "done",
                 "b_simple": repr(0.5 * g3.b_noise)},
                {"params": str(g3.params), "tokens": str(g3.tokens), "batch_size": "128", "status": "done",
                 "b_simple": ""}]
    c = compare_gns(result, records)
    assert c.missing == ()
    assert [g.at_reference for g in c.groups] == [True, True, True, False]
    assert [g.n_runs for g in c.groups] == [3, 3, 3, 1]
    for g, ref in zip(c.groups, result.groups):
        assert g.b_simple == pytest.approx(0.5 * ref.b_noise, rel=1e-12)
        assert g.ratio_b_noise == pytest.approx(0.5, rel=1e-12)
        assert g.ratio_cbs == pytest.approx(0.5 * ref.b_noise / ref.cbs, rel=1e-12)
    assert c.geo_mean_ratio_b_noise == pytest.approx(0.5, rel=1e-12)
    assert c.log_corr_b_noise == pytest.approx(1.0, abs=1e-9)  # exactly proportional
    expect = math.exp(np.mean([math.log(g.ratio_cbs) for g in c.groups]))
    assert c.geo_mean_ratio_cbs == pytest.approx(expect, rel=1e-12)
    # a group without B_simple is reported missing, and no correlation from under 3 groups
    c2 = compare_gns(result, records[:5])
    assert len(c2.groups) == 1 and len(c2.missing) == 3 and c2.log_corr_cbs is None


def test_steps_table_b_simple_columns_pass_through_the_analysis(tmp_path):
    from scaling.analysis import load_steps
    from scaling.analysis.steps_table import COLUMNS
    from scaling.sweep.export import load_records, steps_csv

    assert COLUMNS[-2:] == ("b_simple", "b_simple_mean")
    rows = [{"params": 1e6, "tokens": 2e7, "batch_size": b, "steps": 1000.0 * (1 + 64 / b), "status": "done",
             "b_simple": 12.5 if b == 8 else None, "b_simple_mean": 7.0 if b == 8 else None}
            for b in (8, 16, 32, 64)]
    path = tmp_path / "steps.csv"
    path.write_text(steps_csv(rows))
    header = next(csv.reader(io.StringIO(path.read_text())))
    assert header[-2:] == ["b_simple", "b_simple_mean"]
    table = load_steps(path)  # the analysis ignores the optional columns
    assert len(table.groups) == 1 and len(table.groups[0].batch_sizes) == 4
    recs = load_records(path)
    assert [r["b_simple"] for r in recs] == ["12.5", "", "", ""]


# --- the figure ------------------------------------------------------------------------------

def test_fig_gns_plots_the_logged_curve_and_skips_without_gns(runs, tmp_path):
    import importlib.util

    root, out = runs
    path = Path(__file__).resolve().parent.parent / "paper_figs" / "fig_gns.py"
    spec_ = importlib.util.spec_from_file_location("fig_gns", path)
    fig = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(fig)
    from scaling.plots import FigureResult, Skip

    r = fig.make(root, tmp_path / "fits", tmp_path / "out")
    assert isinstance(r, FigureResult), getattr(r, "reason", r)
    assert all(Path(f).stat().st_size > 0 for f in r.files)
    (curve,) = r.data["curves"]  # one model size: the gns run
    rows = [x for x in rundir.read_metrics(out["on"][0]) if x.get("gns_b_simple") is not None]
    np.testing.assert_array_equal(curve["b_simple"], [x["gns_b_simple"] for x in rows])
    np.testing.assert_array_equal(curve["tokens"], [x["tokens"] for x in rows])

    only_off = tmp_path / "runs_off" / "sweep"
    only_off.mkdir(parents=True)
    os.symlink(out["off"][0], only_off / "off")
    skip = fig.make(tmp_path / "runs_off", tmp_path / "fits", tmp_path / "out2")
    assert isinstance(skip, Skip) and "gradient noise scale" in skip.line() and "\n" not in skip.line()
