"""Data parallelism over every device with ``jax.sharding``; multi-host via ``jax.distributed``.

One 1-D mesh with axis "data" (``data_mesh``) over all devices: batches
are split along their first axis, parameters / optimizer state / EWA are replicated, and XLA
inserts the gradient all-reduce. The global batch size (sequences) never depends on the
device count; it must only be divisible by it (and so must the microbatch).

Multi-host: set ``SCALING_DISTRIBUTED=1`` (``jax.distributed.initialize()`` auto-detects
SLURM, TPU pods, ...) or give ``SCALING_COORDINATOR=host:port``, ``SCALING_NUM_PROCESSES`` and
``SCALING_PROCESS_ID``. Every process then builds the same global batch (the loader is
deterministic) and fills its own devices' shards (``put_global``); only process 0 writes run
records and trackers (``is_writer``), and every process takes part in each checkpoint save
and restore (orbax, on a directory all of them see). Tested with 2 processes x 2 CPU devices
against 1 process x 4 devices, through an interruption and resume (tests/test_multihost.py).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from scaling.errors import ScalingError

DATA_AXIS = "data"


def data_mesh():
    """A 1-D ("data",) mesh over every device (= jax.local_devices() on one host)."""
    return Mesh(np.array(jax.devices()), (DATA_AXIS,))


def shard_batch(batch: np.ndarray, mesh_or_sharding=None):
    """Place a global batch across devices along axis 0 (data parallel).

    One process: ``jax.device_put`` with ``NamedSharding(mesh, P("data"))``. Several processes:
    every process builds the same global batch (the loader is deterministic) and fills the
    shards of its own devices (``put_global``).
    """
    if mesh_or_sharding is None:
        mesh_or_sharding = data_mesh()
    sharding = (NamedSharding(mesh_or_sharding, P(DATA_AXIS)) if isinstance(mesh_or_sharding, Mesh)
                else mesh_or_sharding)
    n_dev = len(sharding.mesh.devices.flat) if hasattr(sharding, "mesh") else len(jax.devices())
    if batch.shape[0] % n_dev:
        raise ScalingError(f"batch size {batch.shape[0]} is not divisible by the {n_dev} devices")
    return put_global(batch, sharding)


def put_global(x, sharding):
    """Host data that every process holds alike, placed on ``sharding``: ``jax.device_put`` on
    one process; on several, each process fills the shards of its own devices from its copy
    (``jax.make_array_from_callback``), whatever the device order and the sharded axis (slicing
    rows by process index assumed the mesh lists each process's devices together, and axis 0)."""
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def on_accelerator() -> bool:
    """True when JAX's default backend is not the CPU (a GPU or TPU)."""
    return jax.default_backend() != "cpu"


ENV_DISTRIBUTED = "SCALING_DISTRIBUTED"
ENV_COORDINATOR = "SCALING_COORDINATOR"
ENV_NUM_PROCESSES = "SCALING_NUM_PROCESSES"
ENV_PROCESS_ID = "SCALING_PROCESS_ID"

_initialized = False


def maybe_initialize_distributed() -> bool:
    """Call ``jax.distributed.initialize`` once when the environment asks for it."""
    global _initialized
    if _initialized:
        return True
    coordinator = os.environ.get(ENV_COORDINATOR)
    if coordinator:
        try:
            n, pid = int(os.environ[ENV_NUM_PROCESSES]), int(os.environ[ENV_PROCESS_ID])
        except (KeyError, ValueError):
            raise ScalingError(f"{ENV_COORDINATOR} is set: {ENV_NUM_PROCESSES} and {ENV_PROCESS_ID} "
                               "must be integers too") from None
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=n, process_id=pid)
    elif os.environ.get(ENV_DISTRIBUTED, "") not in ("", "0"):
        jax.distributed.initialize()
    else:
        return False
    _initialized = True
    return True


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Split axis 0 (sequences) over the data axis."""
    return NamedSharding(mesh, P(DATA_AXIS))


def microbatch_sharding(mesh: Mesh) -> NamedSharding:
    """[n_micro, microbatch, L+1]: each microbatch split over the data axis."""
    return NamedSharding(mesh, P(None, DATA_AXIS))


def n_devices(mesh: Mesh) -> int:
    return int(mesh.devices.size)


def is_writer() -> bool:
    """Only process 0 writes run records."""
    return jax.process_index() == 0


def check_divisible(batch_size: int, microbatch_size: int, n: int) -> None:
    """The global batch and each microbatch must split evenly over the ``n`` devices."""
    if batch_size % n:
        raise ScalingError(f"batch_size {batch_size} is not divisible by the {n} devices")
    if microbatch_size % n:
        raise ScalingError(f"microbatch_size {microbatch_size} is not divisible by the {n} devices")


def put_replicated(tree, mesh: Mesh):
    sharding = replicated(mesh)
    return jax.tree_util.tree_map(lambda x: put_global(x, sharding), tree)


# Activation bytes per token per layer at 16-bit precision: 34 d + 5 a s (Korthikanti et al. 2022,
# "Reducing Activation Recomputation in Large Transformer Models", Sec. 4.1, no recomputation).
ACT_BYTES_PER_TOKEN_D = 34
ACT_BYTES_PER_TOKEN_ATTN = 5
BYTES_FP32_OVER_FP16 = 2
LOGIT_BYTES_PER_VOCAB = 8  # fp32 logits and their gradient


def activation_bytes_per_sequence(d_model: int, n_layers: int, n_heads: int, seq_len: int, vocab: int,
                                  compute_bytes: int = 4) -> int:
    """Estimated training activation memory of one sequence (Korthikanti et al. 2022 + logits)."""
    per_layer = seq_len * (ACT_BYTES_PER_TOKEN_D * d_model + ACT_BYTES_PER_TOKEN_ATTN * n_heads * seq_len)
    scale = BYTES_FP32_OVER_FP16 if compute_bytes == 4 else 1
    return int(n_layers * per_layer * scale + seq_len * vocab * LOGIT_BYTES_PER_VOCAB)


def microbatch_for_memory(batch_size: int, n: int, budget_bytes: float, per_sequence_bytes: int) -> int:
    """Largest microbatch that divides the batch, splits over ``n`` devices and fits the budget
    per device; ScalingError when not even ``n`` sequences (one per device) fit."""
    best = None
    for m in range(n, batch_size + 1, n):
        if batch_size % m == 0 and (m // n) * per_sequence_bytes <= budget_bytes:
            best = m
    if best is None:
        raise ScalingError(f"microbatch_memory_gb {budget_bytes / 1e9:g} is too small: one sequence needs "
                           f"~{per_sequence_bytes / 1e9:.3g} GB of activations")
    return best
