"""Atomic file writes and tolerant readers for run records: the one place for JSON and JSONL I/O.

Every record a reader may see is written to a temporary file in the same directory, flushed,
fsync'd and renamed over the target, so a reader sees either the old or the new file, never a
half-written one (the pattern of Marin's executor: the success marker is written last).

Append-only files (``metrics.jsonl``, ``events.jsonl``) survive a torn last line, which a crash
or a full disk leaves behind: a reader skips any line that is cut short or is not a JSON record
and reports it (``RecordWarning``); a writer, holding an exclusive ``flock`` on the file, cuts a
torn tail back to the last complete line before it appends, and never writes through a
symbolic link. Every write names its target path in the ``OSError`` it raises.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator

from scaling.errors import RecordWarning, ScalingError

FILE_MODE = 0o644  # permissions of every record written (readable by other workers/users)
TAIL_CHUNK = 1 << 16  # bytes read backwards at a time when repairing a torn last line


def fsync_dir(directory: Path) -> None:
    """fsync a directory (a rename in it is durable); best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` re-raised as the same kind of OSError naming ``path`` (not a temporary file)."""
    return OSError(exc.errno, exc.strerror, str(path)) if exc.errno else exc


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _naming(e, path.parent) from None
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp creates 0600; records are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise _naming(e, path) from None
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _clean(obj: Any) -> Any:
    """Make ``obj`` strict-JSON: NaN/inf become null, tuples lists, numpy scalars Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "shape", None) == ():
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def to_json(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(_clean(obj), indent=indent, sort_keys=False, allow_nan=False)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, to_json(obj) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)


def append_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Append rows as JSON lines, fsync'd, under an exclusive lock on the file; a torn last line
    left by a crash or a full disk is cut off first (reported), and a link is never followed."""
    data = "".join(to_json(r, indent=None) + "\n" for r in rows).encode("utf-8")
    if not data:
        return
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ScalingError(f"{path}: is a symbolic link; records are never written through links "
                               "(remove it, or give another directory)") from None
        raise _naming(e, path) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass  # a file system without locks: appends of one write each still do not interleave
        _repair_tail(fd, path)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as e:
        raise _naming(e, path) from None
    finally:
        os.close(fd)  # releases the lock


def _repair_tail(fd: int, path: Path) -> None:
    """Cut a last line that has no newline (a crash or a full disk tore it) back to the end of the
    last complete line, so the next record starts on a line of its own."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    end = size
    keep = 0
    while end > 0:
        start = max(0, end - TAIL_CHUNK)
        i = os.pread(fd, end - start, start).rfind(b"\n")
        if i >= 0:
            keep = start + i + 1
            break
        end = start
    os.ftruncate(fd, keep)
    warnings.warn(f"{path}: removed a last line cut short by an earlier crash or full disk "
                  f"({size - keep} bytes) before appending", RecordWarning, stacklevel=3)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read JSON lines, skipping (and reporting) lines that a crash or a full disk damaged."""
    return list(iter_jsonl(path))


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """The JSON records of an append-only file. A line cut short (no newline: being torn, or torn
    by a crash) or not a JSON object (a torn line that a later append ran into) is never half a
    record: it is skipped and reported as a ``RecordWarning``."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            if not raw.endswith(b"\n"):
                _skipped(path, n, "is cut short (a crash or a full disk)")
                return
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict):
                _skipped(path, n, "is not a JSON record (damaged by a crash or a full disk)")
                continue
            yield row


def _skipped(path, n: int, why: str) -> None:
    warnings.warn(f"{path}: line {n} {why}; skipped", RecordWarning, stacklevel=4)


def truncate_jsonl(path: str | os.PathLike, keep: "callable") -> None:
    """Atomically rewrite a JSON-lines file keeping only rows for which ``keep(row)``."""
    path = Path(path)
    if not path.exists():
        return
    rows = [r for r in read_jsonl(path) if keep(r)]
    atomic_write_text(path, "".join(to_json(r, indent=None) + "\n" for r in rows))


# --- outputs ----------------------------------------------------------------------------------
def _nearest_existing(path: Path) -> Path:
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    return probe


def _writable(directory: Path, path: Path) -> None:
    try:
        read_only = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        raise ScalingError(f"{path}: {directory} is on a read-only file system")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ScalingError(f"{path}: {directory} is not writable (permission denied)")


def check_output_dir(path: str | os.PathLike) -> None:
    """Before any work: ``path`` is a directory this process can write into, or can be created as
    one; a ``ScalingError`` naming the problem otherwise (a file there or above it, read-only)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ScalingError(f"{path}: exists and is not a directory")
    probe = _nearest_existing(path)
    if not probe.is_dir():
        raise ScalingError(f"{path}: {probe} is a file, not a directory")
    _writable(probe, path)


def check_output_file(path: str | os.PathLike) -> None:
    """Before any work: ``path`` can be written as a file (``atomic_write_*``); ``ScalingError``
    otherwise (a directory of that name, a file where a directory should be, read-only)."""
    path = Path(path)
    if path.is_dir():
        raise ScalingError(f"{path}: is a directory; give a file name")
    probe = _nearest_existing(path.parent)
    if not probe.is_dir():
        raise ScalingError(f"{path}: {probe} is a file, not a directory")
    _writable(probe, path)


def refuse_links(root: str | os.PathLike, *paths: str | os.PathLike) -> None:
    """``ScalingError`` if any of ``paths`` (inside ``root``), or a directory between it and
    ``root``, is a symbolic link: records inside a sweep directory are never written through
    links planted in it (``root`` itself may be one)."""
    root = Path(root)
    for path in paths:
        path = Path(path)
        try:
            probe, parts = root, path.relative_to(root).parts
        except ValueError:
            probe, parts = path.parent, (path.name,)  # not inside root: the path itself
        for part in parts:
            probe = probe / part
            if probe.is_symlink():
                raise ScalingError(f"{probe}: is a symbolic link inside the sweep directory {root}; records "
                                   "are never written through links (remove it)")


def refuse_links_in(root: str | os.PathLike, directory: str | os.PathLike) -> None:
    """``refuse_links`` for ``directory`` (inside ``root``) and everything directly in it (a run
    directory's files and its checkpoints)."""
    refuse_links(root, directory)
    directory = Path(directory)
    if directory.is_dir():
        refuse_links(root, *directory.iterdir())
