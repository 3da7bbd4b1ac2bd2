"""The training step: a pure function ``(state, batch, hparams) -> (state, metrics)`` and its
compiled forms, for one run or for K runs vmapped into one program.

Compile reuse: every number a sweep varies is in ``hparams`` (traced), and the jitted functions
are cached at module level by the static shapes (``StepShape``, the model, the mesh, vmapped or
not; the evaluation and init by the model alone, so every batch size shares them). Runs that
differ in lr, betas, warmup, EWA decays, target or seed reuse one executable; JAX's persistent
compilation cache (``scaling.lm.compile_cache``) carries it across processes.

Per-step costs kept off the path (benchmarks/bench_step_overhead.py): the split-batch noise scale
is a program of its own that the host runs before the step on measured steps, not a ``lax.cond``
inside every step (which copied every parameter on every step); the batch's placement is the
step's ``in_shardings``, so the loop hands it a host array (``jax.device_put`` of a small array
took ~0.2 ms, a few percent of a tiny step).

Batch semantics (docs/design.md): ``batch_size`` sequences per step globally; gradients are
accumulated over ``batch_size / microbatch_size`` microbatches inside the step (one update per
step); each batch and microbatch is split over all devices of the data mesh.

Vectorised runs: ``jax.vmap`` over a stacked state and stacked hparams turns K runs that share
shapes (a learning-rate grid, seeds, betas, EWA decays, targets at one batch size) into one
program whose matrix products are K times larger, which fills an accelerator that one small run
leaves idle. Runs with one data seed read one batch (``in_axes=None``), others a stacked
[K, B, L+1] batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from scaling.lm import ewa as ewa_lib
from scaling.lm import gns as gns_lib
from scaling.lm import mesh as parallel
from scaling.lm import optim
from scaling.lm.config import TrainConfig
from scaling.lm.evaluation import make_eval
from scaling.lm.loss import chunked_cross_entropy
from scaling.lm.model import Transformer, init_params


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: completed optimizer updates
    params: Any
    opt_state: Any
    ewa: Any  # stacked [n_ewa, ...] averages, or ()
    rng: jax.Array  # uint32 key data, for any randomness a step may need
    gns_ema: gns_lib.EMAState  # EMAs of |G|^2 and tr(Sigma) (scaling.lm.gns); untouched when gns is off


class Compiled(NamedTuple):
    init: Any  # seed(s) -> TrainState (replicated; stacked [K, ...] when vmapped)
    step: Any  # (state, batch, hparams) -> (state, metrics); batch: host or device array
    measuring_step: Any  # the same update with the split-batch noise-scale measurement (see compiled)
    evaluate: Any  # (EvalWeights, hparams, val, weights) -> [1 + n_ewa] losses ([K, 1 + n_ewa] when vmapped)
    vmapped: bool
    snapshot: Any = None  # EvalWeights -> a copy that outlives the next (donating) step
    evaluate_raw: Any = None  # the same arguments -> [1] loss of the raw weights ([K, 1])
    evaluate_averaged: Any = None  # the same arguments -> [n_ewa] losses of the EWAs ([K, n_ewa])


@dataclass(frozen=True)
class StepShape:
    """What fixes a compiled step: everything else (lr, betas, warmup, EWA decays, seed, target)
    is traced, so runs that differ only in those share one executable."""
    batch_size: int
    microbatch_size: int
    seq_len: int
    n_ewa: int
    schedule: str
    gns: bool
    gns_every: int
    gns_split: int

    @property
    def n_micro(self) -> int:
        return self.batch_size // self.microbatch_size

    @property
    def split_gns(self) -> bool:
        """The noise scale from split batches (one microbatch per step) every ``gns_every`` steps."""
        return self.gns and self.n_micro == 1


_COMPILED: dict[tuple, Compiled] = {}
_SHARED: dict[tuple, dict] = {}  # init, evaluations, snapshot: the model, n_ewa, the mesh and vmapping only
_PARAM_SHAPES: dict[tuple, Any] = {}


# --- the pure step ----------------------------------------------------------------------------
def loss_fn(model: Transformer, params: Any, batch_BxL1: jax.Array) -> jax.Array:
    """Mean next-token cross-entropy (nats) of windows [B, L+1]; with ``model.loss_chunk`` the
    logits are never whole (``scaling.lm.loss.chunked_cross_entropy``)."""
    inputs_BxL, targets_BxL = batch_BxL1[:, :-1], batch_BxL1[:, 1:]
    if model.config.loss_chunk is None:
        logits_BxLxV = model.apply({"params": params}, inputs_BxL)
        return optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, targets_BxL).mean()
    hidden_BxLxD, unembed_DxV = model.apply({"params": params}, inputs_BxL, method=Transformer.hidden)
    return chunked_cross_entropy(hidden_BxLxD, unembed_DxV, targets_BxL, model.config.loss_chunk)


def gradients(model, params, batch_BxL1, *, n_micro: int, gns: bool, micro_sharding=None):
    """(mean loss, mean gradient, SUM over microbatches of |g_micro|^2) over ``n_micro`` microbatches.

    Microbatch j holds rows j, j + n_micro, j + 2 n_micro, ... so that each microbatch keeps
    the device split of the global batch. The mean of equal-size microbatch means equals the
    big-batch mean, so accumulation changes nothing but memory. The summed |g_micro|^2 (raw,
    pre-clip, fp32) is the small-batch statistic of the gradient noise scale (McCandlish et al.
    2018, App. A; ``scaling.lm.gns.from_sq_norms``); 0 unless ``gns``. Each microbatch gradient passes
    through ``gns.isolate`` whether or not ``gns`` is on, so the measurement never changes the
    gradient's rounding: the trajectory is bit-identical with it on or off.
    """
    grad_fn = jax.value_and_grad(partial(loss_fn, model))
    if n_micro == 1:  # no small-batch statistic here; with gns, split_measurement takes split batches
        loss, grads = grad_fn(params, batch_BxL1)
        return loss, grads, jnp.zeros((), gns_lib.NORM_DTYPE)
    mb = batch_BxL1.shape[0] // n_micro
    micro_MxBxL1 = batch_BxL1.reshape(mb, n_micro, -1).swapaxes(0, 1)
    if micro_sharding is not None:
        micro_MxBxL1 = jax.lax.with_sharding_constraint(micro_MxBxL1, micro_sharding)

    def body(carry, batch):
        loss_sum, grad_sum, sq_sum = carry
        loss, grads = grad_fn(params, batch)
        grads = gns_lib.isolate(grads)
        sq = gns_lib.sq_norm(grads) if gns else jnp.zeros((), gns_lib.NORM_DTYPE)
        return (loss_sum + loss, jax.tree_util.tree_map(jnp.add, grad_sum, grads), sq_sum + sq), None

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    init = (jnp.zeros((), jnp.float32), zeros, jnp.zeros((), gns_lib.NORM_DTYPE))
    (loss_sum, grad_sum, sq_sum), _ = jax.lax.scan(body, init, micro_MxBxL1)
    return loss_sum / n_micro, jax.tree_util.tree_map(lambda g: g / n_micro, grad_sum), sq_sum


def split_measurement(model, params, batch_BxL1, ema: gns_lib.EMAState, *, k: int):
    """One split-batch measurement: (updated EMA, |G_big|^2, mean |G_small|^2).

    For steps with one microbatch (McCandlish et al. 2018, App. A needs two batch sizes): the
    batch is split into ``k`` groups of B/k rows, group j holding rows j, j + k, j + 2k, ... (the
    microbatch layout of ``gradients``), and ``scaling.lm.gns.split_batch_stats`` takes each group's
    gradient in a sequential scan. The gradients feed only the statistics, never the update.
    """
    b_small = batch_BxL1.shape[0] // k
    strided = batch_BxL1.reshape(b_small, k, -1).swapaxes(0, 1).reshape(batch_BxL1.shape)
    stats = gns_lib.split_batch_stats(jax.grad(partial(loss_fn, model)), params, strided, k, b_small)
    g2, trace = gns_lib.estimates(stats)
    return (gns_lib.ema_update(ema, g2, trace, gns_lib.DEFAULT_DECAY),
            jnp.asarray(stats.sq_norm_big, gns_lib.NORM_DTYPE), jnp.asarray(stats.sq_norm_small, gns_lib.NORM_DTYPE))


def train_step(state: TrainState, batch_BxL1: jax.Array, hp: dict, *, model: Transformer, n_micro: int,
               schedule: str, gns: bool, micro_sharding=None) -> tuple[TrainState, dict]:
    """One optimizer update; a pure function of (state, batch, hparams).

    With ``gns`` and microbatches the step also updates the EMAs of the unbiased |G|^2 and
    tr(Sigma) estimates from the microbatch (B_small) and batch (B_big) gradients (McCandlish et
    al. 2018, App. A; see ``scaling.lm.gns``) and reports ``gns_g2``, ``gns_trace``,
    ``gns_b_simple`` (in sequences) next to the raw ``grad_sq`` (|G_big|^2) and ``grad_sq_micro``
    (mean |G_small|^2).

    With one microbatch (``n_micro == 1``) there is no small batch in the step: the measurement
    is a program of its own (``split_measurement``) that the caller runs before the step on
    measured steps (``Compiled.measuring_step``); this step only reports the EMA it is given and
    NaN raw statistics. The update is the same program with the noise scale on or off, so the
    trajectory is bit-identical either way.
    """
    loss, grads, sq_sum = gradients(model, state.params, batch_BxL1, n_micro=n_micro, gns=gns,
                                    micro_sharding=micro_sharding)
    params, opt_state, lr, grad_norm = optim.update(grads, state.opt_state, state.params, state.step, hp, schedule)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              ewa=ewa_lib.update(state.ewa, params, hp["ewa_decays"]))
    metrics = {"train_loss": loss, "lr": lr, "grad_norm": grad_norm}
    if gns and n_micro == 1:
        nan = jnp.full((), jnp.nan, gns_lib.NORM_DTYPE)
        metrics["grad_sq"] = nan  # |G_big|^2 (pre-clip), set by measuring_step on measured steps
        metrics["grad_sq_micro"] = nan  # mean |G_small|^2 over the gns_split parts, likewise
        metrics.update(gns_lib.metrics(state.gns_ema))
    elif gns:
        stats = gns_lib.from_sq_norms(sq_sum, grads, n_micro, batch_BxL1.shape[0] // n_micro)
        g2, trace = gns_lib.estimates(stats)
        gns_ema = gns_lib.ema_update(state.gns_ema, g2, trace, gns_lib.DEFAULT_DECAY)
        new_state = new_state.replace(gns_ema=gns_ema)
        metrics["grad_sq"] = stats.sq_norm_big  # |G_big|^2 over the whole batch (pre-clip)
        metrics["grad_sq_micro"] = stats.sq_norm_small  # mean |G_small|^2 over microbatches
        metrics.update(gns_lib.metrics(gns_ema))
    return new_state, metrics


def measuring(step, measure):
    """The step with the split-batch measurement first: ``measure`` reads the parameters before
    ``step`` (which donates them; the runtime orders the two) and its EMA goes into the state the
    step receives, so the step reports the updated EMA; the raw statistics replace its NaNs."""

    def measuring_step(state, batch, hp):
        ema, big, small = measure(state.params, batch, state.gns_ema)
        new_state, metrics = step(state.replace(gns_ema=ema), batch, hp)
        return new_state, {**metrics, "grad_sq": big, "grad_sq_micro": small}

    return measuring_step


def init_state(seed: jax.Array, *, model: Transformer, n_ewa: int) -> TrainState:
    init_key, rng = jax.random.split(jax.random.key(seed))
    params = init_params(model, init_key)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optim.init_state(params),
                      ewa=ewa_lib.init(params, n_ewa), rng=jax.random.key_data(rng), gns_ema=gns_lib.ema_init())


def param_shapes(model: Transformer) -> Any:
    """The parameter pytree as ``jax.ShapeDtypeStruct`` leaves, traced once per model (a run's
    set-up counts parameters; tracing the init every run cost ~0.1 s)."""
    key = (model.config, model.vocab_size)
    if key not in _PARAM_SHAPES:
        _PARAM_SHAPES[key] = jax.eval_shape(lambda: init_params(model, jax.random.key(0)))
    return _PARAM_SHAPES[key]


def _jit_step(model: Transformer, shape: StepShape, mesh, *, vmapped: bool, shared_batch: bool):
    """The jitted step. ``in_shardings`` place the batch ([B, L+1] split over the data axis; a
    stacked [K, B, L+1] batch split on B), so the loop may pass a host array; state and hparams
    are replicated."""
    repl = parallel.replicated(mesh)
    micro = parallel.microbatch_sharding(mesh) if shape.n_micro > 1 else None
    step = partial(train_step, model=model, n_micro=shape.n_micro, schedule=shape.schedule, gns=shape.gns,
                   micro_sharding=micro)
    batch = _batch_sharding(mesh, vmapped, shared_batch)
    if vmapped:
        step = jax.vmap(step, in_axes=(0, None if shared_batch else 0, 0))
    return jax.jit(step, donate_argnums=(0,), in_shardings=(repl, batch, repl), out_shardings=(repl, repl))


def _jit_measure(model: Transformer, shape: StepShape, mesh, *, vmapped: bool, shared_batch: bool):
    """(params, batch, EMA) -> (EMA, |G_big|^2, mean |G_small|^2): ``split_measurement`` jitted."""
    repl = parallel.replicated(mesh)
    measure = partial(split_measurement, model, k=shape.gns_split)
    if vmapped:
        measure = jax.vmap(measure, in_axes=(0, None if shared_batch else 0, 0))
    return jax.jit(measure, in_shardings=(repl, _batch_sharding(mesh, vmapped, shared_batch), repl),
                   out_shardings=repl)


def _batch_sharding(mesh, vmapped: bool, shared_batch: bool):
    return parallel.microbatch_sharding(mesh) if vmapped and not shared_batch else parallel.batch_sharding(mesh)


def _copy(tree):
    return jax.tree_util.tree_map(jnp.copy, tree)


def compiled(model: Transformer, shape: StepShape, mesh, *, vmapped: bool = False,
             shared_batch: bool = True) -> Compiled:
    """The jitted init/step/eval for these static shapes, built once per process.

    With the split-batch noise scale, ``step`` never measures and ``measuring_step`` runs the
    measurement program and then ``step`` (the loop calls it on steps where ``state.step %
    gns_every == 0``); otherwise the two are one. ``init``, the evaluations and ``snapshot``
    depend on the model only (not the batch size), so runs at every batch size share them; each
    evaluation compiles on its first call, so an unused one costs nothing.
    """
    devices = tuple(d.id for d in mesh.devices.flat)
    key = (model.config, model.vocab_size, shape, vmapped, vmapped and shared_batch, devices)
    if key not in _COMPILED:
        repl = parallel.replicated(mesh)
        shared_key = (model.config, model.vocab_size, shape.n_ewa, vmapped, devices)
        if shared_key not in _SHARED:
            init = partial(init_state, model=model, n_ewa=shape.n_ewa)

            def evaluation(part):
                losses = make_eval(model, part)
                return jax.jit(jax.vmap(losses, in_axes=(0, 0, None, None)) if vmapped else losses,
                               out_shardings=repl)

            _SHARED[shared_key] = dict(
                init=jax.jit(jax.vmap(init) if vmapped else init, out_shardings=repl),
                evaluate=evaluation("all"), evaluate_raw=evaluation("raw"),
                evaluate_averaged=evaluation("averaged") if shape.n_ewa else None,
                snapshot=jax.jit(_copy, out_shardings=repl))
        step = _jit_step(model, shape, mesh, vmapped=vmapped, shared_batch=shared_batch)
        measuring_step = (measuring(step, _jit_measure(model, shape, mesh, vmapped=vmapped, shared_batch=shared_batch))
                          if shape.split_gns else step)
        _COMPILED[key] = Compiled(step=step, measuring_step=measuring_step, vmapped=vmapped, **_SHARED[shared_key])
    return _COMPILED[key]


def step_shape(config: TrainConfig, microbatch_size: int) -> StepShape:
    """The static shape of ``config``'s step; ``gns_every``/``gns_split`` count only when the
    split-batch measurement is on, so runs that differ in them otherwise share a program."""
    split = config.gns and microbatch_size >= config.batch_size
    return StepShape(batch_size=config.batch_size, microbatch_size=microbatch_size, seq_len=config.seq_len,
                     n_ewa=len(config.ewa_decays), schedule=config.optim.schedule, gns=config.gns,
                     gns_every=config.gns_every if split else TrainConfig.gns_every,
                     gns_split=config.gns_split if split else TrainConfig.gns_split)
