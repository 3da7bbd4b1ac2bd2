"""Shipped data files: the default corpus (corpus.jsonl.xz), tokenizer.json, MANIFEST.json, NOTICE."""
