"""Grid files: parsing, validation (exit status 2 for bad files), expansion, dry run."""

import pytest
import yaml

from scaling.cli import main
from scaling.errors import ScalingError
from scaling.sweep import expand, load_grid, parse_grid, run_sweep, token_cost
from scaling.sweep.plan import CHASE, REFERENCE
from scaling.workloads import get_workload
from sweep_helpers import NQM_GRID, run_cli, write_grid

W = get_workload("nqm")


def test_expansion_counts_and_phases(tmp_path):
    plan = expand(load_grid(write_grid(tmp_path / "g.yaml")), W)
    assert [g.key for g in plan.groups] == ["dim32@D1024", "dim32@D4096"]
    per_group = len(NQM_GRID["batch_sizes"]) * len(NQM_GRID["lrs"])
    assert len(plan.runs) == 2 * per_group
    ref = [r for r in plan.runs if r.phase == REFERENCE]
    assert {r.batch_size for r in ref} == {4} and len(ref) == 2 * len(NQM_GRID["lrs"])
    assert all(r.max_tokens is None for r in ref)
    assert all(r.max_tokens == 4 * plan.group(r.group).tokens for r in plan.runs if r.phase == CHASE)
    cost = token_cost(plan)
    assert cost["reference_tokens"] == len(NQM_GRID["lrs"]) * (1024 + 4096)
    assert cost["chase_tokens_max"] == sum(4 * plan.group(r.group).tokens for r in plan.runs if r.phase == CHASE)


def test_reference_batch_added_and_tokens_per_param(tmp_path):
    g = write_grid(tmp_path / "g.yaml", batch_sizes=[8, 16], reference_batch=2, tokens=None,
                   tokens_per_param=[20, 40], models=[{"dim": 32, "name": "a"}, {"dim": 64, "tokens": [999]}])
    plan = expand(load_grid(g), W)
    assert [(x.model, x.tokens) for x in plan.groups] == [("a", 640), ("a", 1280), ("dim64", 999)]
    assert {r.batch_size for r in plan.runs} == {2, 8, 16}


def test_rules_by_batch_size_and_explicit_target(tmp_path):
    g = write_grid(tmp_path / "g.yaml", reference_batch=None, target=0.5,
                   by_batch_size={"momentum": {1: 0.0, 16: 0.5, 64: 0.9}})
    plan = expand(load_grid(g), W)
    assert all(r.phase == CHASE for r in plan.runs)
    mom = {r.batch_size: r.spec["momentum"] for r in plan.runs}
    assert mom == {1: 0.0, 2: 0.0, 4: 0.0, 8: 0.0, 16: 0.5, 32: 0.5, 64: 0.9}


def test_model_grid_product(tmp_path):
    g = write_grid(tmp_path / "g.yaml", models=None, model_grid={"dim": [16, 32], "p": [1.0, 2.0]})
    plan = expand(load_grid(g), W)
    assert len({x.model for x in plan.groups}) == 4


def test_lm_shorthand_and_named_sizes():
    grid = parse_grid({"models": [{"d_model": 32, "n_layers": 2}, "olmo-85m", {"model": {"d_model": 16}, "seed": 3}],
                       "tokens": [1000], "batch_sizes": [1, 2], "lrs": [1e-3], "reference_batch": 1},
                      top_keys={"model", "data", "optim", "seed", "batch_size"})
    assert grid.models[0].fragment == {"model": {"d_model": 32, "n_layers": 2}}
    assert grid.models[1].fragment["model"]["d_model"] == 768 and grid.models[1].name == "olmo-85m"
    assert grid.models[2].fragment == {"model": {"d_model": 16}, "seed": 3}


BAD = [
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"batch_sizes": []}, "batch_sizes: empty list"),
    ({"lrs": []}, "lrs: empty list"),
    ({"models": []}, "models: empty list"),
    ({"batch_sizes": [4, 0]}, "must be positive"),
    ({"batch_sizes": [4, -8]}, "must be positive"),
    ({"batch_sizes": [4, 2.5]}, "not an integer"),
    ({"reference_batch": None}, "needs reference_batch"),
    ({"reference_batch": None, "target": None}, "no target rule"),
    ({"lrs": [0.1, float("nan")]}, "finite"),
    ({"max_tokens_factor": 0.5}, ">= 1"),
    ({"models": [{"dim": 32, "colour": 1}]}, "unknown config key 'colour'"),
    ({"base": {"p": "x"}}, "not a number"),
    ({"tokens": [2]}, "exceeds"),  # one step at B=64 does not fit in the cap
    ({"warmup_fraction": 0.1}, "no warmup"),
    ({"workload": "nope"}, "unknown workload"),
]


@pytest.mark.parametrize("changes,message", BAD)
def test_bad_grids_rejected_exit_2(tmp_path, capsys, changes, message):
    g = write_grid(tmp_path / "bad.yaml", **{k: v for k, v in changes.items() if v is not None})
    if any(v is None for v in changes.values()):  # a key removed
        data = yaml.safe_load(g.read_text())
        for k, v in changes.items():
            if v is None:
                data.pop(k, None)
        g.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    code = main(["sweep", str(g), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()  # nothing ran, nothing written


def test_bad_grid_subprocess_one_line(tmp_path):
    g = write_grid(tmp_path / "bad.yaml", batch_sizes=[])
    r = run_cli("sweep", g, "--dry-run")
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr
    r = run_cli("sweep", tmp_path / "missing.yaml")
    assert r.returncode == 2 and "no such file" in r.stderr


def test_malformed_yaml(tmp_path, capsys):
    g = tmp_path / "m.yaml"
    g.write_text("batch_sizes: [1, 2\n")
    assert main(["sweep", str(g), "--dry-run"]) == 2
    assert "malformed YAML" in capsys.readouterr().err


def test_dry_run_prints_runs_and_cost(tmp_path):
    lines = []
    res = run_sweep(write_grid(tmp_path / "g.yaml"), dry_run=True, out=tmp_path / "o", print_fn=lines.append)
    text = "\n".join(lines)
    assert "70 runs in 2 (N, D) groups: 10 reference, 60 chasing the target" in text
    assert "token cost:" in text and "(after L*)" in text
    assert not (tmp_path / "o").exists() and len(res.plan.runs) == 70


def test_presets_parse_and_expand():
    from pathlib import Path

    root = Path(__file__).parent.parent / "runs" / "grids"
    for path in sorted(root.glob("*.yaml")):
        grid = load_grid(path)
        try:
            workload = get_workload(grid.workload)
        except ScalingError:
            continue  # workload not built in this checkout
        plan = expand(grid, workload)
        assert plan.runs


def test_per_model_lr_grid_widens_one_model_only(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", models=[{"dim": 32, "name": "a"},
                                                   {"dim": 64, "name": "b", "lrs": [0.025, 0.05, 0.8, 1.6]}])
    plan = expand(load_grid(grid), W)
    lrs = {m: {r.lr for r in plan.runs if r.group.startswith(m + "@")} for m in ("a", "b")}
    assert lrs["a"] == set(NQM_GRID["lrs"]) and lrs["b"] == {0.025, 0.05, 0.8, 1.6}
    with pytest.raises(ScalingError, match=r"models\[0\].lrs"):
        parse_grid({**NQM_GRID, "models": [{"dim": 32, "lrs": [-1]}]})


def test_per_model_rules_replace_the_grids_for_that_model_only(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", by_batch_size={"momentum": {1: 0.0, 16: 0.5}, "q": {1: 0.25}},
                      models=[{"dim": 32, "name": "a"},
                              {"dim": 32, "name": "b", "by_batch_size": {"momentum": {1: 0.9, 8: 0.8}}}])
    plan = expand(load_grid(grid), W)
    got = {(r.group.split("@")[0], r.batch_size): (r.spec["momentum"], r.spec["q"]) for r in plan.runs}
    assert got[("a", 4)] == (0.0, 0.25) and got[("a", 16)] == (0.5, 0.25)
    assert got[("b", 4)] == (0.9, 0.25) and got[("b", 16)] == (0.8, 0.25)  # the grid's q still applies
    with pytest.raises(ScalingError, match=r"models\[0\].by_batch_size.momentum: empty mapping"):
        parse_grid({**NQM_GRID, "models": [{"dim": 32, "by_batch_size": {"momentum": {}}}]})


def test_per_model_seeds_replicate_one_model_only(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", seeds=[0],
                      models=[{"dim": 32, "name": "a"}, {"dim": 64, "name": "b", "seeds": [0, 1]}])
    plan = expand(load_grid(grid), W)
    seeds = {m: {r.seed for r in plan.runs if r.group.startswith(m + "@")} for m in ("a", "b")}
    assert seeds == {"a": {0}, "b": {0, 1}}
    runs_b = [r for r in plan.runs if r.group.startswith("b@")]
    assert len(runs_b) == 2 * len([r for r in plan.runs if r.group.startswith("a@")])
    with pytest.raises(ScalingError, match=r"models\[0\].seeds"):
        parse_grid({**NQM_GRID, "models": [{"dim": 32, "seeds": [0.5]}]})
