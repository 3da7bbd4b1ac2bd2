"""The language-model trainer as a sweep workload (``workload: lm`` in a grid file).

One run = ``scaling.lm.train.train(TrainConfig, run_dir)``: an OLMo-style transformer trained on
D tokens at one batch size and set of hyperparameters, evaluated on a dense schedule, with
the steps to the target loss interpolated between the bracketing evaluations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from scaling.lm.config import TrainConfig
from scaling.config_io import to_dict


class LMWorkload:
    """``Workload`` (scaling.workloads.base) for the JAX/Flax LM trainer."""

    name = "lm"
    axis_keys: Mapping[str, str] = {"batch_size": "batch_size", "lr": "optim.lr", "tokens": "data.tokens",
                                    "seed": "seed", "target_loss": "target_loss", "max_tokens": "max_tokens",
                                    "race_steps": "race_steps"}

    def build_config(self, spec: Mapping[str, Any]) -> TrainConfig:
        return TrainConfig.from_dict(spec)

    def config_dict(self, config: TrainConfig) -> dict:
        return to_dict(config)

    def params(self, config: TrainConfig) -> int:
        """N: non-embedding parameters, 12 * n_layers * d_model^2."""
        return config.model.non_embedding_params

    def tokens(self, config: TrainConfig) -> int:
        """D: unique training tokens."""
        return config.data.tokens

    def run(self, config: TrainConfig, run_dir: Path, *, progress: bool = False) -> dict:
        from scaling.lm.train import train  # JAX is imported only when a run starts

        return train(config, run_dir, progress=progress)

    def together_key(self, config: TrainConfig) -> tuple:
        """Runs with equal keys share every shape and can be trained as one program
        (``scaling.lm.many.SHARED_FIELDS``)."""
        from scaling.lm.many import shared_key

        return shared_key(config)

    def together_by_default(self) -> bool:
        """On an accelerator: on a CPU backend the vmapped step of a small model is compute-bound
        and a group was 1.26x slower than its runs one after another
        (benchmarks/results/sweep_together_cpu.json)."""
        from scaling.lm.mesh import on_accelerator

        return on_accelerator()

    def run_many(self, configs: list, run_dirs: list, *, race: bool = False, progress: bool = False) -> list:
        """K runs as one vmapped program (``scaling.lm.many.train_many``); summaries in order."""
        from scaling.lm.many import train_many

        return train_many(configs, run_dirs, race=race)
