"""The embedded default corpus: mixed English prose shipped inside the package.

``scaling/data/default/corpus.jsonl.xz`` holds one JSON object per document,
``{"source": ..., "id": ..., "text": ...}``, in a fixed order; ``MANIFEST.json`` lists the sources
(registry package, pinned version, licence, counts) and ``NOTICE`` the attributions. It is
rebuilt by ``scripts/build_default_corpus.py``. Whole documents are held out for validation by
the rule in ``scaling.data.split`` (1/64 of documents, by content hash).
"""

from __future__ import annotations

import hashlib
import json
import lzma
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from scaling.data.split import split_of
from scaling.data.tokenizers import DEFAULT_DIR
from scaling.errors import ScalingError

CORPUS_PATH = DEFAULT_DIR / "corpus.jsonl.xz"
MANIFEST_PATH = DEFAULT_DIR / "MANIFEST.json"


def _require() -> Path:
    if not CORPUS_PATH.is_file():
        raise ScalingError(f"the default corpus is missing from the package ({CORPUS_PATH})")
    return CORPUS_PATH


@lru_cache(maxsize=None)
def corpus_sha256() -> str:
    """sha256 of the shipped compressed corpus file (keys every cache built from it)."""
    h = hashlib.sha256()
    with open(_require(), "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def manifest() -> dict:
    if not MANIFEST_PATH.is_file():
        return {}
    return json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))


def iter_corpus() -> Iterator[dict]:
    """Every record of the default corpus, in the shipped order."""
    with lzma.open(_require(), "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def iter_split_texts() -> Iterator[tuple[str, str]]:
    """(split, text) for every document of the default corpus."""
    for rec in iter_corpus():
        yield split_of(rec["text"]), rec["text"]

