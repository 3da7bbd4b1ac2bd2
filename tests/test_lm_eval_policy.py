"""Sparse evaluations far from the target (``eval.sparse_every``, scaling.lm.loop): the same
crossing as the dense schedule on a real tiny run, fewer evaluations, every evaluated value one the
dense run also has; kept weights survive the donating step; the policy's rules on real records.
The raw weights at the last evaluation only (``eval.raw_weights: last``): the same EWA values and
crossing, the raw loss on the last evaluation row and in the summary, alone or vmapped in a race."""

import math
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from scaling import rundir  # noqa: E402
from scaling.errors import ScalingError  # noqa: E402
from scaling.lm.config import TrainConfig  # noqa: E402
from scaling.lm.evaluation import eval_steps  # noqa: E402
from scaling.lm.loop import Schedule  # noqa: E402
from scaling.lm.record import RunRecord  # noqa: E402
from scaling.lm.train import train  # noqa: E402
from train_helpers import tiny_spec  # noqa: E402

STEPS = 60
TARGET = 3.70  # the tiny run's EWA loss plateaus near 3.65: crossed between its 40th and 45th step
SPARSE = 4


def config(**kw) -> TrainConfig:
    return TrainConfig.from_dict(tiny_spec(steps=STEPS, target_loss=TARGET, **kw))


def evals(run_dir) -> dict:
    return {r["step"]: r["eval_loss_ewa"] for r in rundir.read_metrics(run_dir) if "eval_loss_ewa" in r}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("policy")
    variants = {"dense": {},
                "sparse": {"eval.sparse_every": SPARSE},  # dense again once within 5% of L*
                "kept": {"eval.sparse_every": SPARSE, "eval.near_target": 0.0},  # found through kept weights
                "kept_ckpt": {"eval.sparse_every": SPARSE, "eval.near_target": 0.0,
                              "checkpoint_every_tokens": 25 * 16 * 32},  # checkpoints resolve kept weights
                "raw_last": {"eval.raw_weights": "last"},
                "lean": {"eval.sparse_every": SPARSE, "eval.near_target": 0.0, "eval.raw_weights": "last"},
                "raw_last_cap": {"eval.raw_weights": "last", "target_loss": 1.0}}  # never reached: the cap
    return {name: (root / name, train(TrainConfig.from_dict(tiny_spec(steps=STEPS, **{"target_loss": TARGET, **kw})),
                                      root / name))
            for name, kw in variants.items()}


def test_sparse_evaluations_give_the_dense_crossing(runs):
    dense_dir, dense = runs["dense"]
    assert dense["status"] == "done" and dense["steps_to_target"] is not None
    dense_evals = evals(dense_dir)
    schedule = eval_steps(STEPS, config().tokens_per_step, config().eval)
    for name in ("sparse", "kept", "kept_ckpt"):
        d, s = runs[name]
        got = evals(d)
        # exact: the trajectory is the same and the two evaluations bracketing L* are the same
        assert s["status"] == "done" and s["steps_to_target"] == dense["steps_to_target"], name
        assert len(got) < len(dense_evals), name
        assert set(got) <= set(schedule)
        for step, value in got.items():  # every evaluation is one the dense schedule has, same value
            assert dense_evals.get(step) == value, (name, step)
        before = [st for st in schedule if st < dense["steps_to_target"]]
        after = [st for st in schedule if st >= dense["steps_to_target"]]
        assert before[-1] in got and after[0] in got  # the bracketing pair, consecutive in the schedule
        assert s["final_step"] >= dense["final_step"]  # it may train past the crossing, never stop early
    # the kept-weights path: far until the run was already below L*, then resolved backwards
    kept_dir, kept = runs["kept"]
    assert kept["final_step"] > dense["final_step"]
    rows = rundir.read_metrics(kept_dir)
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)  # rows stay in step order
    assert len({r["step"] for r in rows}) == len(rows)


def test_raw_weights_at_the_last_evaluation_only(runs):
    dense_dir, dense = runs["dense"]
    dense_rows = {r["step"]: r for r in rundir.read_metrics(dense_dir) if "eval_loss_ewa" in r}
    for name in ("raw_last", "lean", "raw_last_cap"):
        d, s = runs[name]
        rows = [r for r in rundir.read_metrics(d) if "eval_loss_ewa" in r]
        assert [r["step"] for r in rows if "eval_loss" in r] == [rows[-1]["step"]], name  # the last only
        assert s["final_eval_loss"] == rows[-1]["eval_loss"] and s["final_eval_loss_ewa"] == rows[-1]["eval_loss_ewa"]
        for r in rows:  # the trajectory and the EWA evaluations are the dense run's
            if r["step"] in dense_rows:
                assert r["eval_loss_ewa"] == dense_rows[r["step"]]["eval_loss_ewa"], (name, r["step"])
    raw_last = runs["raw_last"][1]
    for key in ("status", "steps_to_target", "final_step", "final_eval_loss", "final_eval_loss_ewa", "best_eval_loss"):
        assert raw_last[key] == dense[key], key
    lean_dir, lean = runs["lean"]  # crossed at a kept step: its last evaluation is there, on kept weights
    assert lean["steps_to_target"] == dense["steps_to_target"] and lean["final_step"] > dense["final_step"]
    assert lean["final_eval_loss"] == dense["final_eval_loss"]
    cap_dir, cap = runs["raw_last_cap"]
    assert cap["status"] == "censored" and cap["final_step"] == STEPS
    assert math.isfinite(cap["final_eval_loss"]) and cap["final_eval_loss"] != cap["final_eval_loss_ewa"]
    with pytest.raises(ScalingError, match="eval.raw_weights"):
        config(**{"eval.raw_weights": "sometimes"})


def test_raw_weights_last_in_a_vmapped_race(tmp_path):
    """Every run of a race gets its raw loss where it stops: the winner at its crossing, the
    outpaced at the evaluation that stopped them, equal to the race with raw weights every time."""
    from scaling.lm.many import train_many

    def race(name, **kw):
        configs = [config(**{"optim.lr": lr, **kw}) for lr in (3e-3, 1e-2)]
        dirs = [tmp_path / f"{name}{i}" for i in range(len(configs))]
        return dirs, train_many(configs, dirs, race=True)

    every_dirs, every = race("every")
    last_dirs, last = race("last", **{"eval.raw_weights": "last"})
    assert sorted(s["status"] for s in last) == ["censored", "done"]
    for d, s, e in zip(last_dirs, last, every):
        assert (s["status"], s["final_step"], s["steps_to_target"]) == (e["status"], e["final_step"], e["steps_to_target"])
        assert s["final_eval_loss"] == pytest.approx(e["final_eval_loss"], rel=1e-6)
        assert [r["step"] for r in rundir.read_metrics(d) if "eval_loss" in r] == [s["final_step"]]
        assert len([r for r in rundir.read_metrics(d) if "eval_loss_ewa" in r]) > 1


def test_runs_without_a_target_stay_dense(tmp_path):
    spec = tiny_spec(steps=24, **{"eval.sparse_every": SPARSE})
    s = train(TrainConfig.from_dict(spec), tmp_path / "ref")
    c = TrainConfig.from_dict(spec)
    assert sorted(evals(tmp_path / "ref")) == eval_steps(c.total_steps, c.tokens_per_step, c.eval)
    assert s["status"] == "done"


def test_schedule_rules_on_records(tmp_path):
    c = config(**{"eval.sparse_every": 3})
    steps = eval_steps(c.total_steps, c.tokens_per_step, c.eval)
    sched = Schedule(total=c.total_steps, evals=frozenset(steps), checkpoint_every=None,
                     sparse_every=3, near_target=0.05)
    r = RunRecord(c, tmp_path / "r", writer=False)
    assert not sched.evaluates_now(steps[0], [r])  # no evaluation yet: far
    assert sched.evaluates_now(steps[2], [r])  # every 3rd scheduled step
    assert sched.evaluates_now(c.total_steps, [r])  # the last step always
    r.history = [(steps[0], TARGET * 1.2)]
    assert not sched.evaluates_now(steps[1], [r])
    r.history = [(steps[0], TARGET * 1.04)]  # within 5% of L*: dense
    assert sched.evaluates_now(steps[1], [r])
    no_target = RunRecord(TrainConfig.from_dict(tiny_spec(steps=STEPS)), tmp_path / "n", writer=False)
    assert sched.evaluates_now(steps[1], [RunRecord(c, tmp_path / "f", writer=False), no_target])
    dense = Schedule(total=c.total_steps, evals=frozenset(steps), checkpoint_every=None)
    assert all(dense.evaluates_now(s, [r]) for s in steps)


def test_kept_weights_outlive_the_donating_step():
    import jax

    from scaling.data.dataset import open_dataset
    from scaling.data.loader import BatchLoader
    from scaling.lm import mesh as parallel, optim
    from scaling.lm.evaluation import eval_weights
    from scaling.lm.model import build
    from scaling.lm.step import compiled, step_shape

    c = config()
    dataset = open_dataset(c.data.source, c.data.tokenizer)
    model = build(c.model, dataset.vocab_size)
    mesh = parallel.data_mesh()
    fns = compiled(model, step_shape(c, c.batch_size), mesh)
    hp = parallel.put_replicated(optim.hparams(c), mesh)
    loader = BatchLoader(dataset.train, seq_len=c.seq_len, batch_size=c.batch_size, seed=0, token_budget=c.token_cap)
    state, _ = fns.step(fns.init(np.int32(0)), loader.next_batch(), hp)
    kept = fns.snapshot(eval_weights(state))
    before = np.asarray(fns.evaluate(eval_weights(state), hp, *_val(c, dataset, mesh)))
    host = jax.tree_util.tree_map(np.array, kept)
    state, _ = fns.step(state, loader.next_batch(), hp)  # donates the state it was copied from
    for a, b in zip(jax.tree_util.tree_leaves(kept), jax.tree_util.tree_leaves(host)):
        np.testing.assert_array_equal(np.asarray(a), b)
    np.testing.assert_array_equal(np.asarray(fns.evaluate(kept, hp, *_val(c, dataset, mesh))), before)


def _val(c, dataset, mesh):
    import jax

    from scaling.data.loader import validation_batch
    from scaling.lm import mesh as parallel
    from scaling.lm.evaluation import chunk_validation

    val = validation_batch(dataset.validation, seq_len=c.seq_len, max_tokens=c.data.val_tokens)
    chunks, weights = chunk_validation(val, c.eval.batch_size, parallel.n_devices(mesh))
    sharding = parallel.microbatch_sharding(mesh)
    return jax.device_put(chunks, sharding), jax.device_put(weights, sharding)
