"""Document readers: C4 (gzip'd JSON lines), generic JSON lines, plain text.

Every reader yields ``Document(text, where)`` in a fixed order (files sorted by name, lines in
file order), so the same input always gives the same token stream.

- C4 (allenai/c4 "en"): ``en/c4-train.00000-of-01024.json.gz`` ... and
  ``en/c4-validation.0000X-of-00008.json.gz``; each line ``{"text", "timestamp", "url"}``.
- JSON lines (``.jsonl``/``.json``, optionally ``.gz``/``.xz``): one object per line; the text is
  in ``text_field``.
- Plain text (``.txt``, optionally ``.gz``/``.xz``): documents separated by blank lines.

Bad input (a corrupt or truncated gzip, a line that is not JSON, a missing or non-string field,
bytes that are not UTF-8) raises ``ScalingError`` naming the file and line. With
``skip_bad=True`` the bad line (or the rest of a corrupt file) is skipped and counted in
``ReadStats``.
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

from scaling.errors import ScalingError

Format = Literal["auto", "c4", "jsonl", "text"]
C4_TRAIN_RE = re.compile(r"c4-train\.\d{5}-of-\d{5}\.json(\.gz)?$")
C4_VALIDATION_RE = re.compile(r"c4-validation\.\d{5}-of-\d{5}\.json(\.gz)?$")
JSONL_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.xz", ".json.xz")
TEXT_SUFFIXES = (".txt", ".txt.gz", ".txt.xz")
_BLANK_LINE_RE = re.compile(r"\n[ \t\r\f\v]*\n")
_DECOMPRESS_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error, lzma.LZMAError, OSError)


@dataclass(frozen=True)
class Document:
    text: str
    where: str  # "file:line" of the document's first line


@dataclass
class ReadStats:
    """Counts of what was read and what was skipped (``skip_bad=True``)."""

    files: int = 0
    documents: int = 0
    bytes: int = 0
    skipped_lines: int = 0
    corrupt_files: int = 0
    problems: list[str] = field(default_factory=list)  # the first few, for the log

    MAX_PROBLEMS = 20

    def note(self, message: str) -> None:
        if len(self.problems) < self.MAX_PROBLEMS:
            self.problems.append(message)


def _open_text(path: Path) -> io.TextIOBase:
    name = path.name
    if name.endswith(".gz"):
        raw = gzip.open(path, "rb")
    elif name.endswith(".xz"):
        raw = lzma.open(path, "rb")
    else:
        raw = open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="\n")


def _lines(path: Path, stats: ReadStats, skip_bad: bool) -> Iterator[tuple[int, str]]:
    """Lines of a (possibly compressed) file with 1-based numbers; decode errors name the line."""
    lineno = 0
    try:
        with _open_text(path) as f:
            for line in f:
                lineno += 1
                yield lineno, line
    except UnicodeDecodeError:
        msg = f"{path}:{lineno + 1}: not valid UTF-8"
    except _DECOMPRESS_ERRORS as e:
        kind = "truncated" if isinstance(e, EOFError) else "corrupt"
        msg = f"{path}: {kind} compressed file after line {lineno} ({e})"
    else:
        return
    if not skip_bad:
        raise ScalingError(msg)
    stats.corrupt_files += 1
    stats.note(msg)


def iter_jsonl(path: Path, text_field: str = "text", *, skip_bad: bool = False,
               stats: ReadStats | None = None) -> Iterator[Document]:
    """Documents of one JSON-lines file (C4 or generic), text taken from ``text_field``."""
    stats = stats if stats is not None else ReadStats()
    stats.files += 1
    for lineno, line in _lines(path, stats, skip_bad):
        if not line.strip():
            continue
        problem = None
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problem = f"{path}:{lineno}: not JSON ({e.msg})"
        else:
            if not isinstance(obj, dict):
                problem = f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}"
            elif text_field not in obj:
                problem = f"{path}:{lineno}: missing field {text_field!r}"
            elif not isinstance(obj[text_field], str):
                problem = f"{path}:{lineno}: field {text_field!r} is {type(obj[text_field]).__name__}, not a string"
        if problem is not None:
            if not skip_bad:
                raise ScalingError(problem)
            stats.skipped_lines += 1
            stats.note(problem)
            continue
        text = obj[text_field]
        stats.documents += 1
        stats.bytes += len(text.encode("utf-8"))
        yield Document(text, f"{path}:{lineno}")


def iter_text(path: Path, *, skip_bad: bool = False, stats: ReadStats | None = None) -> Iterator[Document]:
    """Documents of a plain-text file: paragraphs separated by one or more blank lines."""
    stats = stats if stats is not None else ReadStats()
    stats.files += 1
    buf: list[str] = []
    start = 0
    for lineno, line in _lines(path, stats, skip_bad):
        if line.strip():
            if not buf:
                start = lineno
            buf.append(line)
        elif buf:
            yield _text_doc(buf, path, start, stats)
            buf = []
    if buf:
        yield _text_doc(buf, path, start, stats)


def _text_doc(lines: list[str], path: Path, start: int, stats: ReadStats) -> Document:
    text = "".join(lines).strip("\n")
    stats.documents += 1
    stats.bytes += len(text.encode("utf-8"))
    return Document(text, f"{path}:{start}")


def detect_format(paths: list[Path]) -> Format:
    names = [p.name for p in paths]
    if names and all(C4_TRAIN_RE.search(n) or C4_VALIDATION_RE.search(n) for n in names):
        return "c4"
    if names and all(n.endswith(JSONL_SUFFIXES) for n in names):
        return "jsonl"
    if names and all(n.endswith(TEXT_SUFFIXES) for n in names):
        return "text"
    raise ScalingError(
        "cannot tell the input format from the file names "
        f"({', '.join(sorted(set(n.split('.', 1)[-1] for n in names))[:5])}); pass --format c4|jsonl|text")


def list_files(source: str | Path, fmt: Format = "auto") -> tuple[list[Path], Format]:
    """Input files (sorted) of a file or directory, and the resolved format."""
    source = Path(source)
    if source.is_file():
        files = [source]
    elif source.is_dir():
        suffixes = JSONL_SUFFIXES + TEXT_SUFFIXES
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.name.endswith(suffixes)
                       and not p.name.startswith("."))
        if not files:
            raise ScalingError(f"{source}: no .json/.jsonl/.txt(.gz/.xz) files found")
    else:
        raise ScalingError(f"{source}: no such file or directory")
    if fmt == "auto":
        fmt = detect_format(files)
    return files, fmt


def c4_split(path: Path) -> str | None:
    """'train' or 'validation' for a C4 file name, else None."""
    if C4_TRAIN_RE.search(path.name):
        return "train"
    if C4_VALIDATION_RE.search(path.name):
        return "validation"
    return None


def iter_documents(path: Path, fmt: Format, text_field: str = "text", *, skip_bad: bool = False,
                   stats: ReadStats | None = None) -> Iterator[Document]:
    """Documents of one file in the given (resolved) format."""
    if fmt in ("c4", "jsonl"):
        return iter_jsonl(path, text_field if fmt == "jsonl" else "text", skip_bad=skip_bad, stats=stats)
    if fmt == "text":
        return iter_text(path, skip_bad=skip_bad, stats=stats)
    raise ScalingError(f"unknown format {fmt!r} (use c4, jsonl or text)")
