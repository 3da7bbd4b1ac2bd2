"""Data pipeline: default corpus, tokenizers, readers, token files, deterministic batches.

Public entry points: ``tokenizers.load_tokenizer``, ``dataset.open_dataset``,
``loader.BatchLoader`` / ``loader.validation_batch`` (placed on devices by ``scaling.lm.mesh``),
``prepare.prepare`` (``scaling data prepare``).
"""
