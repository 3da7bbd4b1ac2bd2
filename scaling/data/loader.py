"""Deterministic batches: each training token served at most once within the token budget D.

Packing (no random windows, unlike nanoGPT): the EOS-separated token stream is cut into
windows of ``seq_len + 1`` tokens starting every ``seq_len`` tokens, window w =
``tokens[w*L : w*L + L + 1]``. Consecutive windows share one token: the target of a window's last
position is the first input of the next window, so every token is a prediction target exactly
once per pass and a step of B sequences trains on B * L tokens (docs/design.md: tokens per step =
B x seq_len). Documents are packed across window boundaries, separated by EOS.

Order: window indices are permuted by ``numpy.random.default_rng([seed, epoch])`` and served in
that order, B per step. The order of windows does not depend on the batch size, so runs with the
same seed and budget at different batch sizes see the same tokens in the same order. The budget
D uses ``ceil(D / L)`` windows; if that exceeds the data, it is an error unless ``allow_repeat``,
and then later epochs use fresh permutations and ``epochs`` records D / (tokens in the data).

State: the loader's position is one integer (windows served); ``state()``/``restore()`` resume
exactly. Validation: ``validation_batch`` takes the first windows of the validation stream in
order, so it is identical for every run with the same data and seq_len.
"""

from __future__ import annotations

import math

import numpy as np

from scaling.errors import ScalingError

STATE_VERSION = 1


def num_windows(n_tokens: int, seq_len: int) -> int:
    """Windows of seq_len + 1 tokens at stride seq_len that fit in n_tokens."""
    return max(0, (n_tokens - 1) // seq_len)


def window_view(tokens: np.ndarray, seq_len: int) -> np.ndarray:
    """[n_windows, seq_len + 1] strided view (no copy; works on memmaps)."""
    n = num_windows(int(tokens.size), seq_len)
    step = tokens.strides[0]
    return np.lib.stride_tricks.as_strided(tokens, shape=(n, seq_len + 1), strides=(seq_len * step, step),
                                           writeable=False)


class BatchLoader:
    """Global batches [batch_size, seq_len + 1] (int32) in an order fixed by ``seed``."""

    def __init__(self, dataset_tokens: np.ndarray, *, seq_len: int, batch_size: int, seed: int,
                 token_budget: int, allow_repeat: bool = False):
        tokens = np.asarray(dataset_tokens) if not isinstance(dataset_tokens, np.ndarray) else dataset_tokens
        if tokens.ndim != 1:
            raise ScalingError(f"dataset tokens must be a 1-D array, got shape {tokens.shape}")
        if seq_len <= 0 or batch_size <= 0 or token_budget <= 0:
            raise ScalingError(f"seq_len, batch_size and token_budget must be positive "
                               f"(got {seq_len}, {batch_size}, {token_budget})")
        self.seq_len, self.batch_size, self.seed = int(seq_len), int(batch_size), int(seed)
        self.token_budget, self.allow_repeat = int(token_budget), bool(allow_repeat)
        self._windows = window_view(tokens, self.seq_len)
        self.n_windows = int(self._windows.shape[0])
        if self.n_windows == 0:
            raise ScalingError(f"the data ({tokens.size} tokens) is shorter than one sequence of {seq_len + 1}")
        self.budget_windows = math.ceil(self.token_budget / self.seq_len)
        self.data_tokens = self.n_windows * self.seq_len  # targets available in one pass
        if self.budget_windows > self.n_windows and not self.allow_repeat:
            raise ScalingError(
                f"token budget {self.token_budget} exceeds the {self.data_tokens} training tokens in the data "
                f"(seq_len {seq_len}); use fewer tokens, more data, or allow repetition (data.allow_repeat)")
        self.position = 0  # windows served
        self._perm_epoch = -1
        self._perm = np.zeros(0, dtype=np.int64)

    # --- bookkeeping ------------------------------------------------------------------------
    @property
    def epochs(self) -> float:
        """Passes over the data that the token budget implies (1.0 = every token once)."""
        return self.token_budget / self.data_tokens

    @property
    def steps(self) -> int:
        """Steps to consume the budget: ceil(D / (B * L))."""
        return math.ceil(self.token_budget / (self.batch_size * self.seq_len))

    @property
    def tokens_served(self) -> int:
        return self.position * self.seq_len

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n_windows)
            self._perm_epoch = epoch
        return self._perm

    def window_indices(self, start: int, count: int) -> np.ndarray:
        """Data-window indices at global positions start .. start+count-1 (across epochs)."""
        out = np.empty(count, dtype=np.int64)
        done = 0
        while done < count:
            epoch, offset = divmod(start + done, self.n_windows)
            take = min(count - done, self.n_windows - offset)
            out[done:done + take] = self._permutation(epoch)[offset:offset + take]
            done += take
        return out

    # --- serving ---------------------------------------------------------------------------
    def next_batch(self) -> np.ndarray:
        end = self.position + self.batch_size
        if end > self.n_windows and not self.allow_repeat:
            raise ScalingError(f"the data is exhausted after {self.position} sequences "
                               f"({self.tokens_served} tokens); repetition is not allowed")
        idx = self.window_indices(self.position, self.batch_size)
        # gather in sorted order (sequential memmap reads), then restore the served order
        order = np.argsort(idx, kind="stable")
        rows = np.empty((self.batch_size, self.seq_len + 1), dtype=np.int32)
        rows[order] = self._windows[idx[order]]
        self.position = end
        return rows

    def __iter__(self):
        while True:
            yield self.next_batch()

    def state(self) -> dict:
        return {"version": STATE_VERSION, "position": self.position, "seed": self.seed,
                "seq_len": self.seq_len, "batch_size": self.batch_size, "n_windows": self.n_windows,
                "token_budget": self.token_budget}

    def restore(self, state: dict) -> None:
        """Resume at a saved position; the data, seed and seq_len must match."""
        for key in ("seed", "seq_len", "n_windows"):
            if int(state.get(key, -1)) != getattr(self, key):
                raise ScalingError(f"cannot resume the data loader: saved {key}={state.get(key)} "
                                   f"but this run has {key}={getattr(self, key)}")
        position = int(state["position"])
        if position < 0:
            raise ScalingError(f"cannot resume the data loader: negative position {position}")
        self.position = position


def validation_batch(dataset_tokens_val: np.ndarray, *, seq_len: int, max_tokens: int) -> np.ndarray:
    """The fixed validation set: the first ``max_tokens // seq_len`` windows, in stream order."""
    windows = window_view(np.asarray(dataset_tokens_val), int(seq_len))
    n = min(int(max_tokens) // int(seq_len), windows.shape[0])
    if n <= 0:
        raise ScalingError(f"validation set too small: {np.asarray(dataset_tokens_val).size} tokens, "
                           f"max_tokens {max_tokens}, seq_len {seq_len} give no sequence")
    return np.ascontiguousarray(windows[:n], dtype=np.int32)
