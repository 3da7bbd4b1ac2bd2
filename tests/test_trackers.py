"""Trackers (scaling.trackers): the default keeps metrics.jsonl as it was, and is the only one
without a package; ``tracker: tensorboard`` and ``tracker: wandb`` (offline) runs leave records
their tools read back, with the same numbers as metrics.jsonl; the tracker is not part of the
run id; a failing backend never stops a run."""

import json
import os
import struct

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402

from scaling import rundir  # noqa: E402
from scaling.identity import run_id  # noqa: E402
from scaling.lm.config import TrainConfig  # noqa: E402
from scaling.lm.record import RunRecord  # noqa: E402
from scaling.store import atomic_write_json  # noqa: E402
from scaling.trackers.base import SWEEP_RUN, Composite  # noqa: E402
from scaling.trackers.jsonl import JsonlTracker  # noqa: E402
from train_helpers import tiny_spec  # noqa: E402

STEPS = 20
SWEEP_INFO = {"sweep": "trk", "group": "m@D10240", "phase": "chase", "batch_size": 16, "lr": 0.01, "seed": 0}


def _train(tmp_path, kind: str, sweep_info=None):
    from scaling.lm.train import train

    config = TrainConfig.from_dict(tiny_spec(steps=STEPS, tracker=kind))
    run_dir = tmp_path / kind
    if sweep_info:  # what the sweep writes into a run directory before the run (scaling.sweep.worker)
        run_dir.mkdir()
        atomic_write_json(run_dir / SWEEP_RUN, sweep_info)
    summary = train(config, run_dir)
    assert summary["status"] == "done"
    return run_dir, config


def _logged(run_dir, key: str) -> list:
    return [(r["step"], r[key]) for r in rundir.read_metrics(run_dir) if key in r]


def test_the_tracker_is_not_part_of_the_run_id():
    ids = {run_id("lm", TrainConfig.from_dict({"tracker": k})) for k in ("jsonl", "wandb", "tensorboard")}
    assert ids == {run_id("lm", TrainConfig())}
    assert TrainConfig.from_dict({"tracker": "wandb"}).resolved()["tracker"] == "wandb"  # still in config.json


def test_default_tracker_writes_metrics_jsonl_as_before(tmp_path):
    rows = [{"step": 1, "tokens": 512, "eval_loss": 5.5}, {"step": 2, "tokens": 1024, "train_loss": 5.25,
                                                           "lr": 0.001, "tokens_per_s": None}]
    record = RunRecord(TrainConfig(), tmp_path / "a")
    assert isinstance(record.tracker, JsonlTracker)
    (tmp_path / "a").mkdir()
    record.rows = {r["step"]: dict(r) for r in rows}
    record.flush()
    (tmp_path / "b").mkdir()
    rundir.append_metrics(tmp_path / "b", rows)  # what RunRecord.flush wrote before trackers existed
    assert (tmp_path / "a" / rundir.METRICS).read_bytes() == (tmp_path / "b" / rundir.METRICS).read_bytes()


def test_a_failing_backend_is_dropped_and_the_record_goes_on(tmp_path, capsys):
    class Broken:
        def log(self, rows):
            raise ConnectionError("no network")

        def finish(self, summary):
            raise AssertionError("dropped backends are not called again")

    tracker = Composite([JsonlTracker(tmp_path), Broken()])
    tracker.log([{"step": 1, "train_loss": 1.0}])
    tracker.log([{"step": 2, "train_loss": 0.5}])
    tracker.finish({"status": "done"})
    assert [r["step"] for r in rundir.read_metrics(tmp_path)] == [1, 2]
    assert capsys.readouterr().err.count("tracker Broken failed") == 1


def test_tensorboard_event_files_hold_the_metrics(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = _train(tmp_path, "tensorboard")
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    for key in ("train_loss", "eval_loss", "eval_loss_ewa"):
        read = [(e.step, e.value) for e in events.Scalars(key)]
        logged = _logged(run_dir, key)
        assert [s for s, _ in read] == [s for s, _ in logged] and len(read) >= 3
        assert [v for _, v in read] == pytest.approx([v for _, v in logged], rel=1e-6)  # float32 in the file
    summary = json.loads((run_dir / rundir.SUMMARY).read_text())
    final = events.Scalars("summary/final_eval_loss")
    assert final[0].step == STEPS and final[0].value == pytest.approx(summary["final_eval_loss"], rel=1e-6)


def wandb_records(path):
    """The records of a .wandb file (a LevelDB-style log of wandb_internal_pb2.Record protobufs,
    32 KiB blocks, 7-byte header ':W&B' + magic + version): what ``wandb sync`` uploads."""
    from wandb.proto import wandb_internal_pb2

    block, header = 32768, 7
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, chunk = header, b""
    while pos + header <= len(data):
        if block - pos % block < header:
            pos += block - pos % block  # block trailer
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + header])
        chunk += data[pos + header:pos + header + length]
        pos += header + length
        if kind in (1, 4):  # FULL or LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            chunk = b""
            yield record


def test_wandb_offline_run_holds_the_metrics_named_from_the_sweep(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    run_dir, config = _train(tmp_path, "wandb", SWEEP_INFO)
    files = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    records = list(wandb_records(files[0]))
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert (run.project, run.run_group, run.job_type, run.display_name) == \
        ("trk", "m@D10240", "chase", run_id("lm", config))
    history = {}
    for r in records:
        if r.WhichOneof("record_type") == "history":
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
            history[row["_step"]] = row
    for key in ("train_loss", "eval_loss", "eval_loss_ewa"):
        logged = _logged(run_dir, key)
        assert len(logged) >= 3 and [(s, history[s][key]) for s, _ in logged] == logged  # exact (JSON doubles)
    exit_code = [r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit"]
    assert exit_code == [0]


def test_a_grid_sets_the_tracker_without_changing_run_ids(tmp_path):
    import yaml

    from scaling.sweep import open_sweep

    grid = {"name": "trk", "workload": "lm", "base": {"data": {"tokenizer": "bytes"}, "model": {"seq_len": 32}},
            "models": [{"name": "m", "d_model": 16, "n_layers": 1, "n_heads": 2}], "tokens": [8192],
            "batch_sizes": [4, 8], "lrs": [0.006], "seeds": [0], "reference_batch": 4, "target": "definition1"}
    ids = []
    for tracker in (None, "wandb"):
        spec = {**grid, "base": {**grid["base"], **({"tracker": tracker} if tracker else {})}}
        (tmp_path / "g.yaml").write_text(yaml.safe_dump(spec))
        sweep = open_sweep(tmp_path / "g.yaml", tmp_path / "out")
        known, _ = sweep.known_runs(sweep.targets(record=False), record=False)
        assert known and all(r.config.tracker == (tracker or "jsonl") for r in known)
        ids.append([r.run_id for r in known])
    assert ids[0] == ids[1]
