"""``open_dataset``: token arrays for training and validation, from any source.

``source="default"`` is the embedded corpus, tokenized once on first use and cached under
``$SCALING_CACHE`` (else ``~/.cache/scaling``) in a directory named by the corpus sha256 and the
tokenizer identity, written with the same atomic protocol as ``scaling data prepare``; any
other source is a directory that ``scaling data prepare`` wrote.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaling.data import corpus
from scaling.data.shards import existing_index, open_token_dir, write_token_dir
from scaling.data.tokenizers import load_tokenizer
from scaling.errors import ScalingError

CACHE_ENV = "SCALING_CACHE"
HASH_CHARS = 16  # of each sha256 in a cache directory name


@dataclass(frozen=True)
class TokenDataset:
    """EOS-separated documents as flat integer arrays (memmaps)."""

    train: np.ndarray
    validation: np.ndarray
    vocab_size: int
    eos_id: int
    meta: dict
    path: Path

    @property
    def train_tokens(self) -> int:
        return int(self.train.size)


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "scaling")


def default_cache_dir(tokenizer_identity: str) -> Path:
    return cache_root() / f"default-{corpus.corpus_sha256()[:HASH_CHARS]}-{tokenizer_identity[:HASH_CHARS]}"


def build_default(tokenizer: str = "default", progress: bool | None = None) -> Path:
    """Tokenize the embedded corpus into the cache (no-op when already there)."""
    tok = load_tokenizer(tokenizer)
    out = default_cache_dir(tok.identity)
    fingerprint = f"default-corpus:{corpus.corpus_sha256()}:{tok.identity}"
    if existing_index(out, fingerprint) is not None:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:  # one builder at a time (sweep workers)
        fcntl.flock(lock, fcntl.LOCK_EX)
        write_token_dir(out, corpus.iter_split_texts(), tok, fingerprint=fingerprint,
                        source={"path": "default", "corpus_sha256": corpus.corpus_sha256()}, progress=progress)
    return out


def open_dataset(source: str = "default", tokenizer: str = "default") -> TokenDataset:
    """The embedded corpus ("default") with ``tokenizer``, or a prepared directory.

    For a prepared directory the tokenizer is the one it was prepared with; a different
    ``tokenizer`` other than "default" is refused rather than silently ignored.
    """
    if source == "default":
        path = build_default(tokenizer)
    else:
        path = Path(os.path.expanduser(source))
        if not path.is_dir():
            raise ScalingError(f"data source {source!r}: not 'default' and not a prepared directory")
    tdir = open_token_dir(path)
    tinfo = tdir.index["tokenizer"]
    if source != "default" and tokenizer not in ("default", None):
        want = load_tokenizer(tokenizer).identity
        if want != tinfo["identity"]:
            raise ScalingError(f"{path} was prepared with tokenizer {tinfo['name']!r}, not {tokenizer!r}")
    meta = {
        "source": tdir.index["source"],
        "tokenizer": tinfo,
        "dtype": tdir.index["dtype"],
        "eos": tdir.index["eos"],
        "split_rule": tdir.index["split_rule"],
        "splits": {s: {k: v for k, v in info.items() if k != "file"} for s, info in tdir.index["splits"].items()},
    }
    return TokenDataset(train=tdir.train, validation=tdir.validation, vocab_size=int(tinfo["vocab_size"]),
                        eos_id=int(tinfo["eos_id"]), meta=meta, path=path)
