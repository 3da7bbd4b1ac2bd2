"""K runs trained as one vmapped program (scaling.lm.many) against K separate ``train`` runs."""

import math
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from scaling import rundir  # noqa: E402
from scaling.lm.config import TrainConfig  # noqa: E402
from scaling.errors import ScalingError  # noqa: E402
from scaling.lm.many import train_many  # noqa: E402
from scaling.lm.train import train  # noqa: E402
from train_helpers import tiny_spec  # noqa: E402

STEPS = 24  # short: float32 reduction-order differences grow with training (chaotic at high lr)
LRS = (1e-3, 3e-3, 1e-2)
TARGET = 4.5  # lr 1e-2 crosses at ~9 steps (and stops), 3e-3 at ~19, 1e-3 never (censored)
RTOL = 1e-4  # vmap changes reduction order: bit-equal early, ~1e-5 by step 20 (see report)
TIMING_KEYS = ("tokens_per_s",)
SUMMARY_TIMING = ("wall_time_s", "tokens_per_s")


def _evals(run_dir):
    return [r for r in rundir.read_metrics(run_dir) if "eval_loss" in r]


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out


def _assert_rows_match(a_dir, b_dir, rtol=RTOL, last_step=None):
    """Metrics rows equal up to ``rtol`` (timings aside), those of ``b_dir`` up to ``last_step``."""
    a = rundir.read_metrics(a_dir)
    b = [r for r in rundir.read_metrics(b_dir) if last_step is None or r["step"] <= last_step]
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):
        assert set(ra) == set(rb)
        for k in ra:
            if k in TIMING_KEYS:
                continue
            if rb[k] is None or ra[k] is None:  # a non-finite value is recorded as null
                assert ra[k] is rb[k], (ra["step"], k)
            else:
                assert ra[k] == pytest.approx(rb[k], rel=rtol, nan_ok=True), (ra["step"], k)


@pytest.fixture(scope="module")
def lr_grid(tmp_path_factory):
    configs = [TrainConfig.from_dict(tiny_spec(steps=STEPS, **{"optim.lr": lr, "target_loss": TARGET}))
               for lr in LRS]
    tmp = tmp_path_factory.mktemp("multirun")
    together = [tmp / f"together{i}" for i in range(len(configs))]
    separate = [tmp / f"separate{i}" for i in range(len(configs))]
    many = train_many(configs, together)
    single = [train(c, d) for c, d in zip(configs, separate)]
    return configs, together, separate, many, single


def test_summaries_equal_separate_runs(lr_grid):
    configs, together, separate, many, single = lr_grid
    assert [s["status"] for s in many] == ["censored", "done", "done"]  # the grid exercises both outcomes
    for m, s in zip(many, single):
        assert set(m) == set(s)
        for k in m:
            if k in SUMMARY_TIMING:
                continue
            if isinstance(m[k], float):
                assert m[k] == pytest.approx(s[k], rel=RTOL), k
            else:
                assert m[k] == s[k], k
    assert many[2]["final_step"] < many[1]["final_step"] < STEPS + 1  # stopped at their targets


def test_records_equal_separate_runs(lr_grid):
    configs, together, separate, many, single = lr_grid
    for a, b in zip(together, separate):
        assert rundir.read_status(a) == rundir.read_status(b)
        _assert_rows_match(a, b)
        ca, cb = _flat(rundir.read_config(a)), _flat(rundir.read_config(b))
        assert {k: v for k, v in ca.items() if ca.get(k) != cb.get(k)} == {}
        assert set(ca) == set(cb)
        assert len(_evals(a)) > 5


def test_finished_runs_are_not_retrained(lr_grid):
    configs, together, separate, many, single = lr_grid
    before = [(d / rundir.METRICS).stat().st_mtime_ns for d in together]
    again = train_many(configs, together)
    assert again == many
    assert [(d / rundir.METRICS).stat().st_mtime_ns for d in together] == before


def test_race_stops_the_grid_at_the_first_target(lr_grid, tmp_path):
    """race=True: the fastest lr's record equals its separate run; the others stop at that
    evaluation, censored as outpaced, with rows equal to their separate runs up to there."""
    configs, together, separate, many, single = lr_grid
    dirs = [tmp_path / f"race{i}" for i in range(len(configs))]
    raced = train_many(configs, dirs, race=True)
    winner = min((i for i, s in enumerate(single) if s["steps_to_target"] is not None),
                 key=lambda i: single[i]["steps_to_target"])
    assert raced[winner]["status"] == "done"
    assert raced[winner]["steps_to_target"] == pytest.approx(single[winner]["steps_to_target"], rel=RTOL)
    _assert_rows_match(dirs[winner], separate[winner])
    stop = raced[winner]["final_step"]
    for i, s in enumerate(raced):
        if i == winner:
            continue
        assert s["status"] == "censored" and s["censored_by"] == "outpaced" and s["reason"].startswith("outpaced")
        assert s["outpaced_by"] == dirs[winner].name and s["steps_to_target"] is None
        assert s["final_step"] == stop < single[i]["final_step"]
        assert rundir.read_metrics(dirs[i])[-1]["step"] == stop
        _assert_rows_match(dirs[i], separate[i], last_step=stop)


def test_noise_scale_measured_on_the_same_steps(tmp_path):
    """gns with one microbatch: vmapped runs measure every gns_every steps (host-chosen program),
    with the values of separate runs; the other steps carry NaN as in ``train``."""
    configs = [TrainConfig.from_dict(tiny_spec(steps=STEPS, gns=True, log_every=1, **{"optim.lr": lr}))
               for lr in LRS[:2]]
    many = train_many(configs, [tmp_path / "m0", tmp_path / "m1"])
    single = [train(c, tmp_path / f"s{i}") for i, c in enumerate(configs)]
    for i in range(2):
        _assert_rows_match(tmp_path / f"m{i}", tmp_path / f"s{i}", rtol=1e-3)  # every step's grad norm
        rows = rundir.read_metrics(tmp_path / f"m{i}")
        measured = [r["step"] for r in rows if isinstance(r.get("grad_sq"), float) and math.isfinite(r["grad_sq"])]
        assert measured and all((s - 1) % configs[i].gns_every == 0 for s in measured)
        gns_keys = [k for k in single[i] if k.startswith("b_simple") and isinstance(single[i][k], float)]
        assert gns_keys
        for k in gns_keys:
            assert many[i][k] == pytest.approx(single[i][k], rel=1e-3), k


def test_seeds_with_their_own_data_order(tmp_path):
    """Runs that differ in init seed and data order: per-run loaders, stacked batches."""
    steps = 10
    configs = [TrainConfig.from_dict(tiny_spec(steps=steps, seed=s, **{"data.seed": s})) for s in (0, 1)]
    many = train_many(configs, [tmp_path / "m0", tmp_path / "m1"])
    single = [train(c, tmp_path / f"s{i}") for i, c in enumerate(configs)]
    for i in range(2):
        _assert_rows_match(tmp_path / f"m{i}", tmp_path / f"s{i}")
        assert many[i]["final_eval_loss"] == pytest.approx(single[i]["final_eval_loss"], rel=RTOL)
    assert many[0]["final_eval_loss"] != many[1]["final_eval_loss"]


@pytest.mark.parametrize("override", [{"batch_size": 8}, {"model.d_model": 64}, {"optim.schedule": "cosine"},
                                      {"data.tokens": 2 * STEPS * 16 * 32}, {"eval.points": 6}])
def test_shape_mismatch_is_rejected_before_writing(tmp_path, override):
    a = TrainConfig.from_dict(tiny_spec(steps=STEPS))
    b = TrainConfig.from_dict(tiny_spec(steps=STEPS, **override))
    with pytest.raises(ScalingError, match="must share"):
        train_many([a, b], [tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_bad_arguments(tmp_path):
    a = TrainConfig.from_dict(tiny_spec(steps=STEPS))
    with pytest.raises(ScalingError):
        train_many([a, a], [tmp_path / "a"])
    with pytest.raises(ScalingError):
        train_many([a, a], [tmp_path / "a", tmp_path / "a"])
    with pytest.raises(ScalingError):
        train_many([], [])
    assert not (tmp_path / "a").exists()


KILL_SCRIPT = """
import os, signal, sys, json
from scaling.data import loader
from scaling.lm.config import TrainConfig
from scaling.lm.many import train_many

kill_at, calls = int(sys.argv[3]), [0]
real = loader.BatchLoader.next_batch


def next_batch(self):  # SIGKILL this process when batch ``kill_at`` is asked for
    calls[0] += 1
    if calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self)


loader.BatchLoader.next_batch = next_batch
configs = [TrainConfig.from_dict(s) for s in json.loads(sys.argv[1])]
train_many(configs, json.loads(sys.argv[2]), race=False)
"""


def test_a_killed_group_resumes_from_its_checkpoints(lr_grid, tmp_path):
    """kill -9 in the middle of a vectorised group, then train_many again: the group resumes from
    its per-run checkpoints (it does not restart) and the records equal an uninterrupted group's."""
    import json
    import subprocess
    import sys

    configs, together, separate, many, single = lr_grid
    every = 4  # checkpoint every 4 steps; killed while asking for batch 14, so resumed from step 12
    specs = [tiny_spec(steps=STEPS, checkpoint_every_tokens=every * 16 * 32, **{"optim.lr": lr, "target_loss": TARGET})
             for lr in LRS]
    dirs = [tmp_path / f"k{i}" for i in range(len(LRS))]
    out = subprocess.run([sys.executable, "-c", KILL_SCRIPT, json.dumps(specs), json.dumps([str(d) for d in dirs]),
                          "14"], capture_output=True, text=True, timeout=300)
    assert out.returncode == -9, out.stderr[-2000:]
    finished_before = [rundir.read_status(d) is not None for d in dirs]
    assert finished_before == [False, False, True]  # lr 1e-2 reached its target (~step 9) before the kill
    from scaling.lm.checkpoint import Checkpointer
    assert [Checkpointer(d).latest_step() for d in dirs[:2]] == [12, 12]
    resumed = train_many([TrainConfig.from_dict(s) for s in specs], dirs)
    for d, ref, s, m in zip(dirs, together, resumed, many):
        _assert_rows_match(d, ref)
        assert s["status"] == m["status"] and s["final_step"] == m["final_step"]
        assert not (d / "checkpoints").exists()  # a finished run keeps no checkpoint


FOUR_DEVICE_MANY = """
import json, sys
import jax
from scaling.lm.config import TrainConfig
from scaling.lm.many import train_many
assert jax.device_count() == 4, jax.devices()
summaries = train_many([TrainConfig.from_dict(s) for s in json.loads(sys.argv[1])], json.loads(sys.argv[2]))
print(json.dumps([s["n_devices"] for s in summaries]))
"""


def test_four_simulated_devices_with_microbatches_match_one_device(tmp_path):
    """The vectorised path on 4 CPU devices with 2 microbatches of 8 per step (each split over the
    devices) gives the records of one device without accumulation."""
    import json
    import subprocess
    import sys

    specs = [tiny_spec(steps=16, log_every=1, **{"optim.lr": lr}) for lr in LRS[1:]]
    four = [tmp_path / f"four{i}" for i in range(2)]
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", FOUR_DEVICE_MANY, json.dumps([{**s, "microbatch_size": 8} for s in specs]),
                          json.dumps([str(d) for d in four])], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [4, 4]
    one = [tmp_path / f"one{i}" for i in range(2)]
    train_many([TrainConfig.from_dict(s) for s in specs], one)
    for a, b in zip(four, one):
        assert rundir.read_config(a)["config"]["derived"]["microbatch_size"] == 8
        ra, rb = rundir.read_metrics(a), rundir.read_metrics(b)
        assert [r["step"] for r in ra] == [r["step"] for r in rb] and len(ra) >= 16
        for key in ("train_loss", "grad_norm", "eval_loss", "eval_loss_ewa"):
            x, y = [r[key] for r in ra if key in r], [r[key] for r in rb if key in r]
            assert len(x) == len(y) > 0
            # equal up to float reduction order, which Adam's sign-like steps amplify over time
            np.testing.assert_allclose(x[:3], y[:3], rtol=2e-5)
            np.testing.assert_allclose(x, y, rtol=2e-3)
