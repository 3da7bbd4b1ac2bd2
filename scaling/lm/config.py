"""Typed, frozen configuration of one training run (``scaling train CONFIG``).

Sizes follow docs/design.md: batch size B in sequences (global), one optimizer update = one step,
N = 12 * n_layers * d_model^2 non-embedding parameters (Kaplan et al. 2020, Table 1, for the
standard block), D = unique training tokens. Timescales that should stay meaningful across
batch sizes (Adam's beta2, EWA decay) may be given as half-lives in tokens (picodo's habit);
the resolved per-step values are properties, recorded in the run's config.json.

Range checks raise ``ScalingError`` (one line, exit status 2 from the CLI).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal, Optional

from scaling.config_io import NOT_IDENTITY, from_dict, require, to_dict


def decay_from_half_life(half_life_tokens: float, tokens_per_step: int) -> float:
    """Per-step decay whose weight halves after ``half_life_tokens`` tokens: 0.5**(T/h)."""
    return 0.5 ** (tokens_per_step / half_life_tokens)


def half_life_from_decay(decay: float, tokens_per_step: int) -> float:
    """Inverse of ``decay_from_half_life``: tokens after which ``decay**steps`` = 1/2."""
    return tokens_per_step * math.log(0.5) / math.log(decay)


@dataclass(frozen=True)
class ModelConfig:
    """OLMo-style decoder-only transformer (pre-norm, RoPE, QK-norm, GELU MLP, no biases)."""

    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    seq_len: int = 64  # the model's maximum context (rotary tables)
    vocab_size: Optional[int] = None  # None: the tokenizer's vocabulary (padded)
    mlp_ratio: int = 4
    init_std: float = 0.02
    dtype: Literal["float32", "bfloat16"] = "float32"  # compute dtype; params stay fp32
    attention: Literal["auto", "xla", "cudnn"] = "auto"
    # cross-entropy over this many sequence positions at a time, never the whole [B, L, V] logits
    # (scaling.lm.loss.chunked_cross_entropy); None: the whole logits at once
    loss_chunk: Optional[int] = None

    def __post_init__(self):
        require(self.d_model > 0, f"model.d_model must be positive, got {self.d_model}")
        require(self.n_layers > 0, f"model.n_layers must be positive, got {self.n_layers}")
        require(self.n_heads > 0, f"model.n_heads must be positive, got {self.n_heads}")
        require(self.d_model % self.n_heads == 0,
                f"model.d_model ({self.d_model}) must be divisible by model.n_heads ({self.n_heads})")
        require((self.d_model // self.n_heads) % 2 == 0,
                f"model head dimension d_model/n_heads = {self.d_model // self.n_heads} must be even (rotary)")
        require(self.seq_len > 0, f"model.seq_len must be positive, got {self.seq_len}")
        require(self.vocab_size is None or self.vocab_size > 1,
                f"model.vocab_size must be > 1, got {self.vocab_size}")
        require(self.mlp_ratio > 0, f"model.mlp_ratio must be positive, got {self.mlp_ratio}")
        require(self.init_std > 0, f"model.init_std must be positive, got {self.init_std}")
        require(self.loss_chunk is None or self.loss_chunk > 0,
                f"model.loss_chunk must be a positive number of sequence positions, got {self.loss_chunk}")

    @property
    def non_embedding_params(self) -> int:
        """N = 12 * L * d^2 (4 d^2 attention + 8 d^2 MLP per layer; Kaplan et al. 2020)."""
        return 12 * self.n_layers * self.d_model**2


@dataclass(frozen=True)
class DataConfig:
    source: str = "default"  # "default" (embedded corpus) or a `scaling data prepare` directory
    tokenizer: str = "default"  # "default" (8k byte-level BPE), "bytes", or a path
    tokens: int = 1_000_000  # D: unique training tokens
    seq_len: Optional[int] = None  # training sequence length; None: model.seq_len
    allow_repeat: bool = False  # permit more than one pass (epochs are recorded)
    val_tokens: int = 65_536  # size of the fixed validation token set
    seed: int = 0  # data order

    def __post_init__(self):
        require(self.tokens > 0, f"data.tokens must be positive, got {self.tokens}")
        require(self.seq_len is None or self.seq_len > 0,
                f"data.seq_len must be positive, got {self.seq_len}")
        require(self.val_tokens > 0, f"data.val_tokens must be positive, got {self.val_tokens}")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW (Loshchilov & Hutter 2019) with global-norm clipping and an LR schedule."""

    lr: float = 3e-3
    beta1: float = 0.9
    beta2: float = 0.95
    beta2_half_life_tokens: Optional[float] = None  # if set, overrides beta2 per batch size
    eps: float = 1e-8
    weight_decay: float = 0.0
    clip_norm: float = 1.0  # 0 disables clipping
    schedule: Literal["constant", "cosine", "wsd"] = "constant"
    warmup_tokens: int = 0
    warmup_init_fraction: float = 0.1  # LR at step 0 as a fraction of lr (paper: 0.1 x LR)
    final_lr_fraction: float = 0.1  # cosine floor / WSD end, as a fraction of lr
    decay_fraction: float = 0.2  # WSD: fraction of the run spent decaying
    # Tokens over which cosine and WSD decay: the run's planned budget. None: the run's token cap.
    # A run that goes on past it (chasing a target) stays at final_lr_fraction x lr.
    horizon_tokens: Optional[int] = None

    def __post_init__(self):
        require(self.lr > 0, f"optim.lr must be positive, got {self.lr}")
        require(0 <= self.beta1 < 1, f"optim.beta1 must be in [0, 1), got {self.beta1}")
        require(0 <= self.beta2 < 1, f"optim.beta2 must be in [0, 1), got {self.beta2}")
        require(self.beta2_half_life_tokens is None or self.beta2_half_life_tokens > 0,
                f"optim.beta2_half_life_tokens must be positive, got {self.beta2_half_life_tokens}")
        require(self.eps > 0, f"optim.eps must be positive, got {self.eps}")
        require(self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        require(self.clip_norm >= 0, f"optim.clip_norm must be >= 0, got {self.clip_norm}")
        require(self.warmup_tokens >= 0, f"optim.warmup_tokens must be >= 0, got {self.warmup_tokens}")
        require(0 < self.warmup_init_fraction <= 1,
                f"optim.warmup_init_fraction must be in (0, 1], got {self.warmup_init_fraction}")
        require(0 <= self.final_lr_fraction <= 1,
                f"optim.final_lr_fraction must be in [0, 1], got {self.final_lr_fraction}")
        require(0 < self.decay_fraction <= 1,
                f"optim.decay_fraction must be in (0, 1], got {self.decay_fraction}")
        require(self.horizon_tokens is None or self.horizon_tokens > 0,
                f"optim.horizon_tokens must be positive, got {self.horizon_tokens}")


@dataclass(frozen=True)
class EWAConfig:
    """Exponential weight averaging; evaluated with bias correction w / (1 - tau^t)."""

    decays: tuple[float, ...] = ()  # per-step tau
    half_lives_tokens: tuple[float, ...] = ()  # or half-lives in tokens (resolved per batch)

    def __post_init__(self):
        for d in self.decays:
            require(0 < d < 1, f"ewa.decays must be in (0, 1), got {d}")
        for h in self.half_lives_tokens:
            require(h > 0, f"ewa.half_lives_tokens must be positive, got {h}")


RAW_WEIGHTS = ("every", "last")  # eval.raw_weights: at every evaluation, or at a run's last only


@dataclass(frozen=True)
class EvalConfig:
    """When to evaluate: geometric spacing early plus linear spacing, in steps; optionally only
    every ``sparse_every``-th of those steps while a run with a target is far from it
    (``scaling.lm.loop.Schedule``: the crossing is still bracketed by consecutive scheduled steps),
    and with an EWA optionally the raw weights only at the run's last evaluation
    (``raw_weights: last``: the target metric is the EWA's, the raw loss is only reported)."""

    every_tokens: Optional[int] = None  # linear spacing; None: ~`points` evals over the run
    points: int = 40  # target number of linearly spaced evals when every_tokens is None
    geometric_points: int = 10  # extra geometrically spaced evals early in the run
    batch_size: int = 32  # sequences per eval forward pass
    sparse_every: int = 1  # > 1 (opt-in, runs with a target): far from L*, evaluate every n-th scheduled step
    near_target: float = 0.05  # "far": the last eval loss above target_loss * (1 + near_target)
    raw_weights: str = "every"  # "last" (opt-in, with an EWA): the raw weights only at a run's last evaluation

    def __post_init__(self):
        require(self.every_tokens is None or self.every_tokens > 0,
                f"eval.every_tokens must be positive, got {self.every_tokens}")
        require(self.points > 0, f"eval.points must be positive, got {self.points}")
        require(self.geometric_points >= 0, f"eval.geometric_points must be >= 0, got {self.geometric_points}")
        require(self.batch_size > 0, f"eval.batch_size must be positive, got {self.batch_size}")
        require(self.sparse_every >= 1, f"eval.sparse_every must be >= 1, got {self.sparse_every}")
        require(self.near_target >= 0, f"eval.near_target must be >= 0, got {self.near_target}")
        require(self.raw_weights in RAW_WEIGHTS, f"eval.raw_weights must be one of {RAW_WEIGHTS}, got {self.raw_weights!r}")


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    ewa: EWAConfig = field(default_factory=EWAConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    batch_size: int = 32  # global, in sequences
    microbatch_size: Optional[int] = None  # gradient accumulation; None: whole batch
    microbatch_memory_gb: Optional[float] = None  # or: largest microbatch whose activations fit (per device)
    seed: int = 0  # parameter init and any other randomness
    max_tokens: Optional[int] = None  # token cap; None: data.tokens. Beyond D only with a target.
    target_loss: Optional[float] = None  # L*; the eval loss to reach (EWA loss when EWA is on)
    stop_at_target: bool = True
    # a race (scaling.sweep.search): stop, censored as outpaced, at the first evaluation at or after
    # this step still above the target -- another lr at this batch size got there in fewer steps
    race_steps: Optional[float] = None
    log_every: int = 10  # steps between train-loss rows in metrics.jsonl
    checkpoint_every_tokens: Optional[int] = None  # None: by wall time (scaling.lm.train.CHECKPOINT_INTERVAL_S)
    gns: bool = False  # log the gradient noise scale (McCandlish et al. 2018)
    # Without accumulation (one microbatch per step) the noise scale needs a second batch size:
    # every `gns_every` steps the step also takes the gradients of `gns_split` equal parts of its
    # batch (scaling.lm.gns.split_batch_stats; ~one extra forward+backward on those steps only).
    gns_every: int = 10  # steps between split-batch measurements (cadence); ignored with microbatches
    gns_split: int = 4  # parts the batch is split into on measured steps (B_small = batch_size/gns_split)
    # where metrics go besides metrics.jsonl (scaling.trackers); not part of the run id
    tracker: Literal["jsonl", "wandb", "tensorboard"] = field(default="jsonl", metadata=NOT_IDENTITY)

    def __post_init__(self):
        require(self.batch_size > 0, f"batch_size must be positive, got {self.batch_size}")
        if self.microbatch_size is not None:
            require(self.microbatch_size > 0, f"microbatch_size must be positive, got {self.microbatch_size}")
            require(self.batch_size % self.microbatch_size == 0,
                    f"batch_size {self.batch_size} is not divisible by microbatch_size {self.microbatch_size}")
        require(self.microbatch_memory_gb is None or self.microbatch_memory_gb > 0,
                f"microbatch_memory_gb must be positive, got {self.microbatch_memory_gb}")
        require(self.microbatch_memory_gb is None or self.microbatch_size is None,
                "give microbatch_size or microbatch_memory_gb, not both")
        require(self.seq_len <= self.model.seq_len,
                f"data.seq_len {self.seq_len} is larger than the model's seq_len {self.model.seq_len}")
        require(self.max_tokens is None or self.max_tokens > 0,
                f"max_tokens must be positive, got {self.max_tokens}")
        require(self.target_loss is None or self.target_loss > 0,
                f"target_loss must be positive, got {self.target_loss}")
        require(self.race_steps is None or (self.race_steps > 0 and self.target_loss is not None),
                f"race_steps needs a target_loss and must be positive, got {self.race_steps}")
        require(self.optim.warmup_tokens <= self.token_cap,
                f"optim.warmup_tokens {self.optim.warmup_tokens} is longer than the run ({self.token_cap} tokens)")
        require(self.tokens_per_step <= self.token_cap,
                f"one step ({self.tokens_per_step} tokens) exceeds the run's {self.token_cap} tokens")
        require(self.log_every > 0, f"log_every must be positive, got {self.log_every}")
        require(self.checkpoint_every_tokens is None or self.checkpoint_every_tokens > 0,
                f"checkpoint_every_tokens must be positive, got {self.checkpoint_every_tokens}")
        require(self.gns_every > 0, f"gns_every must be positive, got {self.gns_every}")
        require(self.gns_split >= 2, f"gns_split must be >= 2 (two batch sizes), got {self.gns_split}")
        splits = self.gns and self.microbatch_memory_gb is None and self.microbatch_size in (None, self.batch_size)
        require(not splits or self.batch_size % self.gns_split == 0,
                f"batch_size {self.batch_size} is not divisible by gns_split {self.gns_split} (gns without "
                "microbatches measures on gns_split equal parts of the batch)")

    # --- derived values -------------------------------------------------------------------
    @property
    def seq_len(self) -> int:
        return self.data.seq_len or self.model.seq_len

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def token_cap(self) -> int:
        return self.max_tokens if self.max_tokens is not None else self.data.tokens

    @property
    def total_steps(self) -> int:
        """Steps the run may take: floor(token cap / tokens per step)."""
        return self.token_cap // self.tokens_per_step

    @property
    def schedule_steps(self) -> int:
        """Steps over which the lr schedule decays: ``optim.horizon_tokens`` (at least one step),
        else the run's ``total_steps``."""
        if self.optim.horizon_tokens is None:
            return self.total_steps
        return max(1, self.optim.horizon_tokens // self.tokens_per_step)

    @property
    def beta2(self) -> float:
        if self.optim.beta2_half_life_tokens is not None:
            return decay_from_half_life(self.optim.beta2_half_life_tokens, self.tokens_per_step)
        return self.optim.beta2

    @property
    def ewa_decays(self) -> tuple[float, ...]:
        """All EWA decays per step: those given directly, then those from half-lives."""
        return tuple(self.ewa.decays) + tuple(
            decay_from_half_life(h, self.tokens_per_step) for h in self.ewa.half_lives_tokens)

    @property
    def warmup_steps(self) -> int:
        return int(round(self.optim.warmup_tokens / self.tokens_per_step))

    def resolved(self) -> dict:
        """The config as a dict plus every derived value, for config.json."""
        d = to_dict(self)
        d["derived"] = {
            "seq_len": self.seq_len,
            "tokens_per_step": self.tokens_per_step,
            "token_cap": self.token_cap,
            "total_steps": self.total_steps,
            "schedule_steps": self.schedule_steps,
            "beta2": self.beta2,
            "beta2_half_life_tokens": half_life_from_decay(self.beta2, self.tokens_per_step)
            if 0 < self.beta2 < 1 else None,
            "ewa_decays": list(self.ewa_decays),
            "ewa_half_lives_tokens": [half_life_from_decay(t, self.tokens_per_step) for t in self.ewa_decays],
            "warmup_steps": self.warmup_steps,
            "non_embedding_params": self.model.non_embedding_params,
        }
        return d

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data) -> "TrainConfig":
        return from_dict(cls, data)
