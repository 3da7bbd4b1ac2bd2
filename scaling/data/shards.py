"""Token files on disk: one memory-mapped array per split plus ``index.json``, written last.

Layout of a prepared directory (``scaling data prepare`` and the default-corpus cache)::

    DIR/train.bin         tokens of the training documents, each followed by EOS
    DIR/validation.bin    the same for validation documents
    DIR/index.json        tokenizer identity, dtype, per-split document/token counts and sha256,
                          the input fingerprint, EOS handling, read statistics

dtype is uint16 when the vocabulary fits in 16 bits, else uint32. The new directory is built
beside the old one (``.DIR.tmp-<pid>``, index written last) and renamed over it only when
complete, so a prepare that fails (a corrupt input, a full disk, Ctrl-C) leaves an existing
directory exactly as it was, and no directory where there was none (``open_token_dir`` requires
the index and checks every file's size against it). A directory holding anything else is never
replaced. Re-running with the same fingerprint (same inputs, tokenizer and options) returns the
existing index: a no-op.

Tokenization runs in the tokenizer's native threads (HF ``tokenizers`` encode_batch and
SentencePiece use every core); a reader thread decompresses and parses the next chunk meanwhile.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from scaling.data.split import RULE, SPLITS
from scaling.data.tokenizers import Tokenizer, encode_documents, token_dtype
from scaling.errors import ScalingError
from scaling.store import atomic_write_json, fsync_dir, read_json

INDEX_NAME = "index.json"
INDEX_VERSION = 1
CHUNK_BYTES = 4 << 20  # text per tokenizer call
QUEUE_CHUNKS = 4  # chunks read ahead
EOS_HANDLING = "eos appended after every document"


@dataclass(frozen=True)
class TokenDir:
    """An opened prepared directory."""

    path: Path
    index: dict
    train: np.ndarray
    validation: np.ndarray


def _readahead(chunks: Iterable[Any]) -> Iterator[Any]:
    """Iterate ``chunks`` in a background thread (bounded queue); re-raise its errors here."""
    q: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for item in chunks:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(e)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)


def chunk_documents(docs: Iterable[tuple[str, str]], chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[str, list[str], int]]:
    """Group (split, text) pairs into (split, texts, nbytes) chunks of about ``chunk_bytes``."""
    bufs: dict[str, list[str]] = {s: [] for s in SPLITS}
    sizes = {s: 0 for s in SPLITS}
    for split, text in docs:
        bufs[split].append(text)
        sizes[split] += len(text)
        if sizes[split] >= chunk_bytes:
            yield split, bufs[split], sizes[split]
            bufs[split], sizes[split] = [], 0
    for s in SPLITS:
        if bufs[s]:
            yield s, bufs[s], sizes[s]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def existing_index(out: Path, fingerprint: str) -> dict | None:
    """The index of ``out`` if it is complete and was made from ``fingerprint``."""
    try:
        tdir = open_token_dir(out)
    except ScalingError:
        return None
    return tdir.index if tdir.index.get("fingerprint") == fingerprint else None


def write_token_dir(out: str | Path, docs: Iterable[tuple[str, str]], tokenizer: Tokenizer, *,
                    fingerprint: str, source: dict, progress: bool | None = None,
                    total_bytes: int | None = None, read_stats: Any = None) -> dict:
    """Tokenize (split, text) documents into ``out``; returns the index (no-op if up to date).
    Built beside ``out`` and swapped in when complete (see the module docstring)."""
    out = Path(out)
    index = existing_index(out, fingerprint)
    if index is not None:
        return index
    _check_replaceable(out)
    created = [p for p in reversed(out.parents) if not p.exists()]
    build = out.parent / f".{out.name}.tmp-{os.getpid()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(out)
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir()
        index = _write_into(build, docs, tokenizer, fingerprint=fingerprint, source=source, progress=progress,
                            total_bytes=total_bytes, read_stats=read_stats)
        _swap_in(build, out)
    except BaseException as e:
        shutil.rmtree(build, ignore_errors=True)
        for d in reversed(created):  # no empty directory left behind
            try:
                d.rmdir()
            except OSError:
                break
        if isinstance(e, OSError) and e.errno:
            raise OSError(e.errno, e.strerror, str(out)) from None
        raise
    return index


def _check_replaceable(out: Path) -> None:
    """``out`` may be (re)written: absent, empty, or a token directory (ours, complete or not)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ScalingError(f"{out}: exists and is not a directory")
    ours = {f"{s}.bin" for s in SPLITS} | {INDEX_NAME}
    foreign = sorted(e for e in os.listdir(out) if e not in ours and not e.startswith("."))
    if foreign:
        raise ScalingError(f"{out}: not a prepared token directory (it holds {foreign[0]!r}); give a new or "
                           "empty --out")


def _remove_abandoned(out: Path) -> None:
    """Build directories of prepares into ``out`` that died (their pid is gone)."""
    prefix = f".{out.name}."
    for p in out.parent.glob(f".{out.name}.*-*"):
        kind, _, pid = p.name[len(prefix):].partition("-")
        if kind in ("tmp", "old") and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _swap_in(build: Path, out: Path) -> None:
    """Rename the complete ``build`` to ``out``; an old ``out`` is moved aside first and removed
    after (restored if the second rename fails)."""
    if not out.exists():
        os.rename(build, out)
    else:
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(out, old)
        try:
            os.rename(build, out)
        except BaseException:
            os.rename(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(out.parent)


def _write_into(out: Path, docs, tokenizer: Tokenizer, *, fingerprint: str, source: dict, progress, total_bytes,
                read_stats) -> dict:
    """Tokenize into the (new, empty) directory ``out``; the index is written last."""
    dtype = token_dtype(tokenizer.vocab_size)
    tmp = {s: out / f".{s}.bin.tmp" for s in SPLITS}
    counts = {s: {"documents": 0, "tokens": 0, "bytes": 0} for s in SPLITS}
    from tqdm import tqdm

    bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="tokenizing", file=sys.stderr,
               disable=(not sys.stderr.isatty()) if progress is None else not progress)
    files = {s: open(tmp[s], "wb") for s in SPLITS}
    try:
        for split, texts, nbytes in _readahead(chunk_documents(docs)):
            arr = encode_documents(tokenizer, texts, dtype)
            files[split].write(arr.tobytes())
            c = counts[split]
            c["documents"] += len(texts)
            c["tokens"] += int(arr.size)
            c["bytes"] += sum(len(t.encode("utf-8")) for t in texts)
            bar.update(nbytes)
        for s in SPLITS:
            files[s].flush()
            os.fsync(files[s].fileno())
            files[s].close()
        if counts["train"]["tokens"] == 0:
            raise ScalingError(f"{source.get('path', 'input')}: no training documents found")
        splits = {}
        for s in SPLITS:
            final = out / f"{s}.bin"
            os.replace(tmp[s], final)
            splits[s] = {"file": final.name, **counts[s], "sha256": _sha256_file(final)}
    except BaseException:
        for s in SPLITS:
            files[s].close()
            try:
                tmp[s].unlink()
            except FileNotFoundError:
                pass
        raise
    finally:
        bar.close()
    index = {
        "format_version": INDEX_VERSION,
        "fingerprint": fingerprint,
        "tokenizer": {"name": tokenizer.name, "identity": tokenizer.identity,
                      "vocab_size": tokenizer.vocab_size, "eos_id": tokenizer.eos_id},
        "dtype": dtype.name,
        "eos": EOS_HANDLING,
        "split_rule": source.get("split_rule", RULE),
        "source": source,
        "splits": splits,
        "read": _stats_dict(read_stats),
    }
    atomic_write_json(out / INDEX_NAME, index)
    return index


def _stats_dict(stats: Any) -> dict | None:
    if stats is None:
        return None
    return {"files": stats.files, "documents": stats.documents, "skipped_lines": stats.skipped_lines,
            "corrupt_files": stats.corrupt_files, "problems": list(stats.problems)}


def open_token_dir(path: str | Path) -> TokenDir:
    """Open a complete prepared directory as memmaps; refuse anything incomplete."""
    path = Path(path)
    ipath = path / INDEX_NAME
    if not ipath.is_file():
        raise ScalingError(f"{path}: not a prepared token directory (no {INDEX_NAME}; "
                           "run `scaling data prepare` or it was interrupted)")
    try:
        index = read_json(ipath)
        dtype = np.dtype(index["dtype"])
        arrays = {}
        for s in SPLITS:
            info = index["splits"][s]
            f = path / info["file"]
            expected = int(info["tokens"]) * dtype.itemsize
            if not f.is_file() or f.stat().st_size != expected:
                raise ScalingError(f"{f}: missing or of the wrong size (expected {expected} bytes); re-run prepare")
            arrays[s] = (np.memmap(f, dtype=dtype, mode="r", shape=(int(info["tokens"]),))
                         if expected else np.zeros(0, dtype=dtype))
    except (KeyError, TypeError, ValueError) as e:
        raise ScalingError(f"{ipath}: malformed index ({e})") from None
    return TokenDir(path=path, index=index, train=arrays["train"], validation=arrays["validation"])
