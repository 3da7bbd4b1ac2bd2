"""The deterministic batch loader, the fixed validation set, and device sharding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from scaling.data.loader import BatchLoader, num_windows, validation_batch
from scaling.errors import ScalingError

SEQ = 16
N_TOKENS = 20_001  # distinct values would not fit uint16 ranges beyond 65535; these do


@pytest.fixture(scope="module")
def tokens():
    return np.arange(N_TOKENS, dtype=np.uint16)  # every token value unique: positions are recoverable


def loader(tokens, **kw):
    args = dict(seq_len=SEQ, batch_size=8, seed=0, token_budget=10_000)
    args.update(kw)
    return BatchLoader(tokens, **args)


def take(ld, n):
    return np.stack([ld.next_batch() for _ in range(n)])


def test_batches_are_contiguous_windows(tokens):
    b = loader(tokens).next_batch()
    assert b.dtype == np.int32 and b.shape == (8, SEQ + 1)
    assert (np.diff(b, axis=1) == 1).all()  # each row is a contiguous slice of the stream
    assert (b[:, 0] % SEQ == 0).all()  # packed at stride seq_len, no random offsets


def test_order_deterministic_for_seed_and_differs_across_seeds(tokens):
    a, b, c = (take(loader(tokens, seed=s), 5) for s in (0, 0, 1))
    assert (a == b).all()
    assert not (a == c).all()


def test_no_target_token_served_twice_within_budget(tokens):
    ld = loader(tokens, token_budget=N_TOKENS - 1)
    batches = take(ld, ld.n_windows // 8)
    targets = batches[:, :, 1:].reshape(-1)
    assert len(np.unique(targets)) == targets.size  # each token is a prediction target at most once
    inputs = batches[:, :, :-1].reshape(-1)
    assert len(np.unique(inputs)) == inputs.size
    with pytest.raises(ScalingError, match="exhausted"):
        for _ in range(2):
            ld.next_batch()


def test_order_independent_of_batch_size(tokens):
    small = take(loader(tokens, batch_size=4), 4).reshape(-1, SEQ + 1)
    big = take(loader(tokens, batch_size=16), 1).reshape(-1, SEQ + 1)
    assert (small == big).all()


def test_resume_from_saved_state(tokens):
    ld = loader(tokens, allow_repeat=True, token_budget=3 * N_TOKENS)
    take(ld, 7)
    state = json.loads(json.dumps(ld.state()))
    expected = take(ld, 200)  # crosses epoch boundaries
    resumed = loader(tokens, allow_repeat=True, token_budget=3 * N_TOKENS)
    resumed.restore(state)
    assert (take(resumed, 200) == expected).all()
    with pytest.raises(ScalingError, match="seed"):
        loader(tokens, seed=5).restore(state)


def test_budget_beyond_data_needs_repeat_and_records_epochs(tokens):
    data_tokens = num_windows(N_TOKENS, SEQ) * SEQ
    with pytest.raises(ScalingError, match="exceeds"):
        loader(tokens, token_budget=data_tokens + 1)
    ld = loader(tokens, token_budget=int(2.5 * data_tokens), allow_repeat=True)
    assert ld.epochs == pytest.approx(2.5)
    assert loader(tokens, token_budget=data_tokens // 2).epochs == pytest.approx(0.5)
    n = ld.n_windows
    first, second = ld.window_indices(0, n), ld.window_indices(n, n)
    assert (np.sort(first) == np.arange(n)).all() and (np.sort(second) == np.arange(n)).all()
    assert not (first == second).all()  # each epoch is every window once, in a fresh order
    served = take(ld, n // 8 + 1).reshape(-1, SEQ + 1)  # crosses into the second epoch
    assert (served[:, 0] // SEQ == ld.window_indices(0, served.shape[0])).all()


def test_validation_set_fixed(tokens):
    v1 = validation_batch(tokens, seq_len=SEQ, max_tokens=100)
    v2 = validation_batch(tokens.copy(), seq_len=SEQ, max_tokens=100)
    assert v1.shape == (100 // SEQ, SEQ + 1) and (v1 == v2).all()
    assert (v1[:, 0] == np.arange(v1.shape[0]) * SEQ).all()
    with pytest.raises(ScalingError, match="too small"):
        validation_batch(tokens[:5], seq_len=SEQ, max_tokens=100)


SHARD_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, jax
    from scaling.data.loader import BatchLoader
    from scaling.lm.mesh import data_mesh, shard_batch
    assert len(jax.local_devices()) == 4, jax.local_devices()
    ld = BatchLoader(np.arange(5000, dtype=np.uint16), seq_len=8, batch_size=8, seed=3, token_budget=1000)
    batch = ld.next_batch()
    arr = shard_batch(batch, data_mesh())
    shards = sorted(arr.addressable_shards, key=lambda s: s.index[0].start)
    rows = [np.asarray(s.data).tolist() for s in shards]
    print(json.dumps({"batch": batch.tolist(), "rows": rows,
                      "devices": len({s.device for s in shards}), "global": np.asarray(arr).tolist()}))
""")


def test_sharding_over_four_cpu_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SHARD_SCRIPT], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    batch = np.array(r["batch"])
    assert r["devices"] == 4
    assert [np.array(x).shape for x in r["rows"]] == [(2, 9)] * 4
    assert (np.concatenate([np.array(x) for x in r["rows"]]) == batch).all()
    assert (np.array(r["global"]) == batch).all()
