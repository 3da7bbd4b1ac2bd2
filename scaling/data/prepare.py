"""``scaling data prepare``: tokenize a corpus on disk into a prepared token directory.

Inputs are read by ``scaling.data.readers`` (C4, JSON lines, plain text). C4 keeps its own
train/validation files; any other input is split by the fixed document rule of
``scaling.data.split``. Output and its guarantees: ``scaling.data.shards``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterator

from scaling.data import readers
from scaling.data.shards import write_token_dir
from scaling.data.split import RULE, split_of
from scaling.data.tokenizers import load_tokenizer

C4_SPLIT_RULE = "C4's own files: c4-train.* -> train, c4-validation.* -> validation"


def _fingerprint(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def _text_bytes(files: list[Path]) -> int | None:
    """Total size for the progress bar when the files are uncompressed, else unknown."""
    if any(p.name.endswith((".gz", ".xz")) for p in files):
        return None
    return sum(p.stat().st_size for p in files)


def prepare(source: str | Path, tokenizer: str, out: str | Path, *, fmt: readers.Format = "auto",
            text_field: str = "text", skip_bad: bool = False, progress: bool | None = None) -> dict:
    """Tokenize ``source`` (file or directory) with ``tokenizer`` into ``out``; returns the index."""
    files, fmt = readers.list_files(source, fmt)
    tok = load_tokenizer(tokenizer)
    root = Path(source) if Path(source).is_dir() else Path(source).parent
    listing = [{"path": str(p.relative_to(root)), "size": p.stat().st_size,
                "mtime_ns": p.stat().st_mtime_ns} for p in files]
    fingerprint = _fingerprint({"tokenizer": tok.identity, "format": fmt, "text_field": text_field,
                                "skip_bad": skip_bad, "files": listing})
    stats = readers.ReadStats()
    if fmt == "c4":
        files = [p for p in files if readers.c4_split(p) is not None]

    def docs() -> Iterator[tuple[str, str]]:
        for p in files:
            fixed = readers.c4_split(p) if fmt == "c4" else None
            for doc in readers.iter_documents(p, fmt, text_field, skip_bad=skip_bad, stats=stats):
                yield (fixed or split_of(doc.text)), doc.text

    src = {"path": str(Path(source).resolve()), "format": fmt, "text_field": text_field,
           "files": len(files), "split_rule": C4_SPLIT_RULE if fmt == "c4" else RULE}
    return write_token_dir(out, docs(), tok, fingerprint=fingerprint, source=src, progress=progress,
                           total_bytes=_text_bytes(files), read_stats=stats)
