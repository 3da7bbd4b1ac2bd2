"""The language-model trainer: the only package of ``scaling`` that imports JAX, Flax, Optax or Orbax.

Table of contents (one concept per module; docs/design.md, "Layers"):

- ``config``      TrainConfig and its sections (frozen dataclasses; no JAX)
- ``model``       the OLMo-style decoder-only transformer (Flax)
- ``optim``       AdamW, clipping and the lr schedules (Optax)
- ``ewa``         exponential weight averages of the parameters
- ``gns``         the gradient-noise-scale estimators inside the step (McCandlish et al. 2018, App. A)
- ``mesh``        the device mesh, shardings, multi-host start-up, microbatch memory sizing
- ``evaluation``  the eval schedule and the compiled validation loss
- ``step``        the pure training step and its compiled forms (one run, or K runs vmapped)
- ``record``      the host-side record of one run: rows, evals, target crossing, status, summary
- ``loop``        the one host loop, with eval, checkpoint, target stop and racing as policies
- ``checkpoint``  orbax checkpoints of a run or a vectorised group
- ``train``       ``train(config, run_dir)``: one run
- ``many``        ``train_many(configs, run_dirs)``: K runs that share shapes as one program

Importing this package imports nothing; ``scaling.lm.config`` is importable without JAX.
"""
