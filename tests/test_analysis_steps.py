"""Steps tables: parsing, grouping, censoring, and one-line rejection of bad input (exit 2)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scaling.analysis import load_steps
from scaling.analysis.steps_table import records_sha256, table_from_records
from scaling.cli import main
from scaling.errors import ScalingError

HEADER = "params,tokens,batch_size,steps"
GOOD = [f"1e6,2e7,{b},{s}" for b, s in [(16, 8000), (32, 4300), (64, 2400), (128, 1400), (256, 900)]]


def write(tmp_path, lines, name="steps.csv"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_minimum_over_lr_and_seed_mean(tmp_path):
    lines = ["params,tokens,batch_size,steps,lr,seed"]
    for b, s in [(16, 8000), (32, 4300), (64, 2400)]:
        lines += [f"1e6,2e7,{b},{s * 1.3},1e-3,0", f"1e6,2e7,{b},{s},3e-3,0", f"1e6,2e7,{b},{s * 1.21},3e-3,1",
                  f"1e6,2e7,{b},{s * 1.5},1e-2,0"]
    g = load_steps(write(tmp_path, lines)).groups[0]
    want = [s * 1.1 for s in (8000, 4300, 2400)]  # geometric mean of s and 1.21 s
    np.testing.assert_allclose(g.steps, want, rtol=1e-12)
    assert g.best_lr == (3e-3, 3e-3, 3e-3) and g.has_seeds


def test_each_seed_tunes_its_own_lr_before_the_seeds_are_averaged(tmp_path):
    """An adaptive search per seed tries different lrs: a cell only the lucky seed ran must not
    stand for the batch size alone (the minimum over cells would pick the lucky seed)."""
    lines = ["params,tokens,batch_size,steps,lr,seed,status"]
    for b, s in [(16, 8000), (32, 4300), (64, 2400)]:
        lines += [f"1e6,2e7,{b},{s * 0.8},1e-2,0,done",      # seed 0 alone at 1e-2: lucky
                  f"1e6,2e7,{b},{s},3e-3,0,done",
                  f"1e6,2e7,{b},{s * 1.25},3e-3,1,done",      # seed 1's best
                  f"1e6,2e7,{b},,1e-3,1,censored"]
    g = load_steps(write(tmp_path, lines)).groups[0]
    np.testing.assert_allclose(g.steps, [s * np.sqrt(0.8 * 1.25) for s in (8000, 4300, 2400)], rtol=1e-12)
    assert g.replicates[0] == pytest.approx((8000 * 0.8, 8000 * 1.25))
    assert g.best_lr == (1e-2, 1e-2, 1e-2)  # one seed each: the faster seed's winner


def test_a_batch_size_where_a_seed_never_reached_the_target_is_not_a_data_point(tmp_path):
    lines = ["params,tokens,batch_size,steps,lr,seed,status"]
    for b, s in [(16, 8000), (32, 4300), (64, 2400), (128, 1500)]:
        lines += [f"1e6,2e7,{b},{s},3e-3,0,done"]
        lines += [f"1e6,2e7,{b},,3e-3,1,censored" if b == 128 else f"1e6,2e7,{b},{s * 1.1},3e-3,1,done"]
    t = load_steps(write(tmp_path, lines))
    (g,) = t.groups
    assert list(g.batch_sizes) == [16, 32, 64]  # 128: seed 1 censored; seed 0's 1500 alone is not S(128)
    assert any("batch_size=128: seed(s) 1 did not reach the target" in w for w in t.warnings)


def test_a_censored_row_without_an_lr_is_not_an_lr_tried(tmp_path):
    lines = ["params,tokens,batch_size,steps,lr,status"]
    for b, s in [(16, 8000), (32, 4300), (64, 2400)]:
        lines += [f"1e6,2e7,{b},{s},1e-3,done", f"1e6,2e7,{b},{s * 1.2},3e-3,done", f"1e6,2e7,{b},,,censored"]
    t = load_steps(write(tmp_path, lines))
    assert t.groups[0].best_lr == (1e-3, 1e-3, 1e-3)
    assert any("best lr 0.001 is the smallest tried" in w for w in t.warnings)


def test_edge_lr_warned(tmp_path):
    lines = ["params,tokens,batch_size,steps,lr"]
    for b, s in [(16, 8000), (32, 4300), (64, 2400)]:
        lines += [f"1e6,2e7,{b},{s},1e-3", f"1e6,2e7,{b},{s * 1.2},3e-3"]
    t = load_steps(write(tmp_path, lines))
    assert any("smallest tried" in w for w in t.warnings)


def test_censored_and_diverged_rows_excluded_and_reported(tmp_path):
    lines = [HEADER + ",status"] + [g + ",done" for g in GOOD] + ["1e6,2e7,512,,censored", "1e6,2e7,1024,nan,diverged"]
    t = load_steps(write(tmp_path, lines))
    assert list(t.groups[0].batch_sizes) == [16, 32, 64, 128, 256]
    assert [e.status for e in t.excluded] == ["censored", "diverged"]
    assert any("1 censored" in w and "1 diverged" in w for w in t.warnings)


def test_exact_duplicates_collapse(tmp_path):
    t = load_steps(write(tmp_path, [HEADER] + GOOD + GOOD[:1]))
    assert len(t.groups[0].batch_sizes) == 5


BAD = {
    "missing column": ([("params,tokens,steps"), "1e6,2e7,100"], "lacks required column"),
    "zero steps": ([HEADER] + GOOD + ["1e6,2e7,512,0"], "must be positive"),
    "nan steps": ([HEADER] + GOOD + ["1e6,2e7,512,nan"], "steps is nan"),
    "negative batch": ([HEADER] + GOOD + ["1e6,2e7,-4,100"], "must be positive"),
    "nan batch": ([HEADER] + GOOD + ["1e6,2e7,nan,100"], "not finite"),
    "two batch sizes": ([HEADER, "1e6,2e7,16,800", "1e6,2e7,32,500"], "at least 3"),
    "conflicting duplicate": ([HEADER] + GOOD + ["1e6,2e7,16,9000"], "conflicting"),
    "wrong field count": ([HEADER] + GOOD + ["1e6,2e7,16"], "fields"),
    "unbalanced quote": ([HEADER, '1e6,2e7,"16,800'], "malformed CSV"),
    "not a number": ([HEADER] + GOOD + ["1e6,2e7,big,800"], "not a number"),
    "empty": ([""], "empty"),
    "unknown status": ([HEADER + ",status"] + [g + ",done" for g in GOOD] + ["1e6,2e7,512,100,weird"], "status"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_one_line_exit_2(tmp_path, capsys, case):
    lines, needle = BAD[case]
    p = write(tmp_path, lines)
    assert main(["cbs", str(p), "--resamples", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_missing_file_exit_2_in_subprocess(tmp_path):
    out = subprocess.run([sys.executable, "-m", "scaling", "cbs", str(tmp_path / "nope.csv")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "not found" in out.stderr
    assert out.stdout == ""


def test_a_directory_is_not_a_steps_table(tmp_path):
    """The analysis reads tables only; a runs directory is read by ``scaling.sweep.export``."""
    with pytest.raises(ScalingError, match="is a directory.*scaling steps"):
        load_steps(tmp_path)


def test_rows_in_memory_make_the_same_table_as_their_csv(tmp_path):
    records = [dict(zip(HEADER.split(","), line.split(","))) for line in GOOD]
    from_csv = load_steps(write(tmp_path, [HEADER] + GOOD))
    in_memory = table_from_records(records, "rows")
    assert [g.steps.tolist() for g in in_memory.groups] == [g.steps.tolist() for g in from_csv.groups]
    assert in_memory.sha256 == records_sha256(records) != from_csv.sha256  # a CSV is named by its bytes


def test_example_csv_loads():
    t = load_steps(Path(__file__).parent.parent / "examples" / "steps_example.csv")
    assert len(t.groups) == 6 and all(len(g.batch_sizes) == 9 for g in t.groups)


def test_lr_that_never_reached_the_target_counts_as_tried(tmp_path):
    """A censored lr above the best one means the best is inside the grid: no edge warning."""
    head = "params,tokens,batch_size,steps,lr,status\n"
    body = "".join(f"10,100,{b},{s},{lr},done\n" for b in (4, 8, 16)
                   for lr, s in ((0.01, 1000 // b + 50), (0.03, 800 // b + 40)))
    without = tmp_path / "without.csv"
    without.write_text(head + body)
    assert any("largest tried" in w for w in load_steps(without).warnings)
    with_censored = tmp_path / "with.csv"
    with_censored.write_text(head + body + "".join(f"10,100,{b},,0.1,censored\n" for b in (4, 8, 16)))
    assert not any("tried" in w for w in load_steps(with_censored).warnings)
