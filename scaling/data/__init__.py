"""Data pipeline: default corpus, tokenizers, readers, token files, deterministic batches.

Public entry points: ``tokenizers.load_tokenizer``, ``dataset.open_dataset``,
``loader.BatchLoader`` / ``loader.validation_batch`` / ``loader.shard_batch``,
``prepare.prepare`` (``scaling data prepare``).
"""
