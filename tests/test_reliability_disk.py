"""A full disk and torn records (issue 20, items 1 and 2): a real NQM sweep and a real prepare
under a file-size limit (``ulimit -f``: RLIMIT_FSIZE in the child process) end with one line and
exit 2 and resume once space is back; append-only files survive a torn last line; a failed
prepare leaves a good directory as it was."""

from __future__ import annotations

import json
import math
import random
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from scaling.cli import main
from scaling.data.shards import INDEX_NAME, open_token_dir
from scaling.errors import RecordWarning
from scaling.store import append_jsonl, read_jsonl
from scaling.sweep.export import steps_csv, steps_rows
from scaling.sweep.runner import run_sweep
from sweep_helpers import check_exactly_once, check_records_intact, env, scaling_cmd, write_grid


def limited(cmd: list, limit_bytes: int, cwd=None):
    """Run ``cmd`` with ``ulimit -f`` set to ``limit_bytes`` (a write past it fails with EFBIG)."""
    def preexec():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=cwd, timeout=120, preexec_fn=preexec)


def one_error_line(stderr: str, command: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"scaling {command}: error: "), stderr
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished NQM sweep (the uninterrupted reference) and its grid."""
    tmp = tmp_path_factory.mktemp("disk")
    grid = write_grid(tmp / "g.yaml")
    run_sweep(grid, out=tmp / "ref", quiet=True)
    return grid, tmp / "ref"


def test_full_disk_stops_a_sweep_in_one_line_and_it_resumes(finished, tmp_path):
    grid, ref = finished
    sizes = {p: p.stat().st_size for p in ref.rglob("*") if p.is_file()}
    events = ref / "events.jsonl"
    limit = 1024 * math.ceil((max(s for p, s in sizes.items() if p != events) + 512) / 1024)
    assert sizes[events] > limit  # the append-only events file is the one the full disk tears
    out = tmp_path / "s"
    proc = limited(scaling_cmd("sweep", grid, "--out", out, "--quiet"), limit)
    assert proc.returncode == 2
    line = one_error_line(proc.stderr, "sweep")
    assert "events.jsonl: file too large" in line and "run the same command again" in line
    assert not (out / "events.jsonl").read_bytes().endswith(b"\n")  # torn by the limit
    assert not any(rundir_status == "failed" for rundir_status in
                   (p.read_text().strip() for p in out.glob("*/status")))  # a full disk fails no run

    assert main(["sweep", str(grid), "--out", str(out), "--quiet"]) == 0  # space is back: resumes
    check_records_intact(out)
    check_exactly_once(out)
    assert read_jsonl(out / "events.jsonl")  # every line a record again
    assert steps_csv(steps_rows(out)) == steps_csv(steps_rows(ref))
    assert list((out / "locks").iterdir()) == []


def corpus(path: Path, docs: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    words = "the quick brown fox jumps over a lazy dog while seven wizards box".split()
    path.write_text("".join(json.dumps({"text": " ".join(rng.choice(words) for _ in range(60))}) + "\n"
                            for _ in range(docs)))
    return path


def test_full_disk_during_prepare_keeps_the_old_directory(tmp_path):
    small, big = corpus(tmp_path / "small.jsonl", 20), corpus(tmp_path / "big.jsonl", 300, seed=1)
    out = tmp_path / "data" / "tok"
    assert main(["data", "prepare", str(small), "--tokenizer", "bytes", "--out", str(out), "--no-progress"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    cmd = scaling_cmd("data", "prepare", big, "--tokenizer", "bytes", "--out", out, "--no-progress")
    proc = limited(cmd, 100 * 1024)  # big's train.bin is ~170 kB
    assert proc.returncode == 2
    assert f"{out}: file too large" in one_error_line(proc.stderr, "data")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the good directory, untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["tok"]  # nothing half-built beside it
    fresh = tmp_path / "fresh" / "tok"
    proc = limited(scaling_cmd("data", "prepare", big, "--tokenizer", "bytes", "--out", fresh, "--no-progress"),
                   100 * 1024)
    assert proc.returncode == 2 and not (tmp_path / "fresh").exists()  # no empty directory left
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=120)  # space is back
    assert proc.returncode == 0, proc.stderr
    assert open_token_dir(out).index["splits"]["train"]["documents"] > 200


def test_failed_prepare_over_a_good_directory(tmp_path, capsys):
    import gzip

    good = corpus(tmp_path / "good.jsonl", 20)
    raw = gzip.compress(corpus(tmp_path / "other.jsonl", 100, seed=2).read_bytes())
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(raw[: len(raw) // 2])  # a truncated gzip
    out = tmp_path / "tok"
    assert main(["data", "prepare", str(good), "--tokenizer", "bytes", "--out", str(out), "--no-progress"]) == 0
    index = (out / INDEX_NAME).read_text()
    capsys.readouterr()
    assert main(["data", "prepare", str(bad), "--tokenizer", "bytes", "--out", str(out), "--no-progress"]) == 2
    assert "truncated compressed file" in one_error_line(capsys.readouterr().err, "data")
    assert (out / INDEX_NAME).read_text() == index and open_token_dir(out).index["splits"]["train"]["documents"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    assert main(["data", "prepare", str(good), "--tokenizer", "bytes", "--out", str(tmp_path / "notes"),
                 "--no-progress"]) == 2
    assert "not a prepared token directory" in capsys.readouterr().err
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"


def test_torn_last_line_is_skipped_reported_and_repaired(finished, tmp_path, capsys):
    _, ref = finished
    root = tmp_path / "s"
    shutil.copytree(ref, root)
    events = root / "events.jsonl"
    whole = events.read_bytes()
    events.write_bytes(whole[:-40])  # a crash (or a full disk) cut the last line short
    assert main(["status", str(root)]) == 0
    n = whole.count(b"\n")
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"scaling status: warning: {events}: line {n} is cut short (a crash or a full disk); skipped"]
    with pytest.warns(RecordWarning, match="removed a last line cut short"):
        append_jsonl(events, [{"event": "probe"}])
    rows = read_jsonl(events)
    assert rows[-1] == {"event": "probe"} and len(rows) == n
    assert events.read_bytes().endswith(b"\n")


def test_a_damaged_line_inside_a_file_is_skipped(finished, tmp_path, capsys):
    """What the old writer left: the next record appended onto a torn line."""
    _, ref = finished
    root = tmp_path / "s"
    shutil.copytree(ref, root)
    events = root / "events.jsonl"
    lines = events.read_bytes().splitlines(keepends=True)
    events.write_bytes(b"".join(lines[:3]) + lines[3][:25] + b"".join(lines[4:]))
    metrics = next(p / "metrics.jsonl" for p in sorted(root.iterdir())
                   if (p / "sweep_run.json").is_file() and json.loads((p / "sweep_run.json").read_text())["phase"]
                   == "reference")
    rows = metrics.read_bytes().splitlines(keepends=True)
    metrics.write_bytes(b"".join(rows[:-1]) + rows[-1][:10])
    assert main(["status", str(root)]) == 0
    assert main(["steps", str(root), "-o", str(tmp_path / "steps.csv")]) == 0
    assert main(["sweep", str(ref.parent / "g.yaml"), "--out", str(root), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"{events}: line 4 is not a JSON record" in err and f"{metrics}: line {len(rows)} is cut short" in err
    assert "Traceback" not in err
