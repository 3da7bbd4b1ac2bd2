"""Shared tiny LM-trainer configs for tests/test_train_*.py (one set of shapes: one compile)."""

import copy

B, L = 16, 32  # batch (sequences) and sequence length of every tiny run


def tiny_spec(steps: int = 60, **overrides) -> dict:
    """A TrainConfig dict: d_model 32, 2 layers, byte tokenizer, the default corpus."""
    spec = {"model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "seq_len": L},
            "data": {"source": "default", "tokenizer": "bytes", "tokens": steps * B * L, "val_tokens": 2048},
            "optim": {"lr": 1e-2, "warmup_tokens": 5 * B * L},
            "ewa": {"half_lives_tokens": [4 * B * L]},
            "eval": {"points": 12, "geometric_points": 3, "batch_size": 32},
            "batch_size": B, "log_every": 5, "seed": 0}
    spec = copy.deepcopy(spec)
    for key, value in overrides.items():
        node = spec
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return spec
