"""Unwritable outputs and run directories of another run (issue 20, items 3 and 4): a file where a
directory should be, a directory given as -o, a read-only file system, in train, sweep, steps,
fit and data prepare: one line, exit 2, nothing written; ``scaling train --out`` over another
config's run is refused, a failed run is retried and says so."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scaling import rundir
from scaling.cli import main
from scaling.sweep.runner import run_sweep
from sweep_helpers import env, write_grid
from train_helpers import tiny_spec

ROOT = Path(__file__).resolve().parent.parent
STEPS_EXAMPLE = ROOT / "examples" / "steps_example.csv"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("outputs")
    grid = write_grid(tmp / "g.yaml")
    run_sweep(grid, out=tmp / "sweep", quiet=True)
    train = tmp / "train.yaml"
    train.write_text(yaml.safe_dump(tiny_spec(steps=6)))
    text = tmp / "corpus.txt"
    text.write_text("a small corpus.\n\nof two documents, or more.\n" * 20)
    (tmp / "a_file").write_text("not a directory")
    return {"grid": grid, "sweep": tmp / "sweep", "train": train, "text": text, "file": tmp / "a_file", "tmp": tmp}


def commands(i: dict, out: Path) -> dict:
    """Each writing command with ``out`` as its output."""
    return {
        "train": ["train", str(i["train"]), "--out", str(out), "--quiet"],
        "sweep": ["sweep", str(i["grid"]), "--out", str(out), "--quiet"],
        "steps": ["steps", str(i["sweep"]), "-o", str(out)],
        "fit": ["fit", str(STEPS_EXAMPLE), "--against", "tokens", "--resamples", "20", "-o", str(out)],
        "data": ["data", "prepare", str(i["text"]), "--tokenizer", "bytes", "--out", str(out), "--no-progress"],
    }


DIRECTORY_OUTPUTS = ("train", "sweep", "data")


@pytest.mark.parametrize("command", ["train", "sweep", "steps", "fit", "data"])
def test_unwritable_outputs_are_one_line(inputs, command, capsys):
    cases = {"under a file": (inputs["file"] / "sub", "a_file is a file, not a directory")}
    if command in DIRECTORY_OUTPUTS:
        cases["a file as the directory"] = (inputs["file"], "a_file: exists and is not a directory")
    else:
        cases["a directory as -o"] = (inputs["sweep"], "is a directory; give a file name")
    for case, (out, message) in cases.items():
        before = inputs["file"].read_text()
        assert main(commands(inputs, out)[command]) == 2, case
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"scaling {command}: error: ") and message in err and "\n" not in err, (case, err)
        assert inputs["file"].read_text() == before


def test_read_only_file_system_in_every_command(inputs, tmp_path):
    """A real read-only bind mount, in a user namespace (``unshare -rm``), where root too is refused."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("no unprivileged user namespaces here")
    ro = tmp_path / "ro"
    ro.mkdir()
    calls = {c: argv for c, argv in commands(inputs, ro / "out").items()}
    script = ("import sys; from scaling.cli import main\n"
              f"for argv in {list(calls.values())!r}:\n"
              "    print(main(argv), flush=True)\n")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", f'mount --bind -o ro "{ro}" "{ro}" && exec "$0" -c "$1"',
                           sys.executable, script], capture_output=True, text=True, env=env(), timeout=120)
    assert proc.stdout.split() == ["2"] * len(calls), proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [f"scaling {c}" for c in calls]
    assert all(f"{ro}/out: {ro} is on a read-only file system" in line for line in lines), lines
    assert list(ro.iterdir()) == []


def test_train_refuses_another_configs_run_and_retries_a_failed_one(inputs, tmp_path, capsys):
    out = tmp_path / "run"
    cfg = str(inputs["train"])
    assert main(["train", cfg, "--out", str(out), "--quiet"]) == 0
    done = (out / rundir.SUMMARY).read_text()
    capsys.readouterr()
    assert main(["train", cfg, "--out", str(out), "--quiet", "--set", "optim.lr=0.02"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("scaling train: error: ") and "holds a done run of another config" in err and "\n" not in err
    assert (out / rundir.SUMMARY).read_text() == done

    summary = rundir.read_run_summary(out)  # the record a crashed attempt leaves
    rundir.finish(out, dataclasses.replace(summary, status="failed", reason="crashed: RuntimeError: boom"))
    assert main(["train", cfg, "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == (f"scaling train: {out}: the last attempt failed (crashed: RuntimeError: boom); "
                                    "training it again")
    assert captured.out.startswith("done:") and rundir.read_status(out) == "done"
