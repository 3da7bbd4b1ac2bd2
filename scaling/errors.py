"""The one exception type for bad user input, and the one-line account of an unwritable output.

Anything a user can get wrong (a config key, a CSV column, a missing file, a NaN) raises
``ScalingError`` with a one-line message naming the problem. The CLI prints it as a single
line on stderr and exits with status 2 (docs/design.md, "Command line"). An output the system
refuses (a read-only file system, a file where a directory should be, a full disk) arrives as
an ``OSError``; the CLI words it with ``os_error_line`` and exits 2 the same way.
"""

from __future__ import annotations

import errno
from typing import Optional

EXIT_BAD_INPUT = 2

# errno values that mean "the disk cannot take more": nothing a run did wrong, so a sweep stops
# (rather than recording its runs failed) and resumes when the same command is run again
OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# ... and those that mean no output can be written at all
STORAGE_FAILURES = OUT_OF_SPACE + (errno.EROFS,)

_WHAT = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (the disk or a file-size limit is full)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "not a directory (a part of the path is a file)",
    errno.EISDIR: "is a directory",
    errno.EEXIST: "exists and is not a directory",
    errno.ELOOP: "is a symbolic link (or a loop of them)",
    errno.ENOENT: "no such file or directory",
}


class ScalingError(Exception):
    """Bad input: reported as one line, exit status 2, never a traceback."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # always one line


class RecordWarning(UserWarning):
    """A damaged line of an append-only record was skipped or repaired (a crash or a full disk
    cut it short). The CLI prints each as one ``warning:`` line."""


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def storage_error(exc: BaseException, errnos=STORAGE_FAILURES) -> Optional[OSError]:
    """The ``OSError`` in ``exc``'s chain (itself, its cause or context) whose errno is in
    ``errnos`` (default: disk full or read-only), else None."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in errnos:
            return e
    return None


def os_error_line(exc: OSError) -> str:
    """One line for an OS error: the path (the destination of a rename) and what is wrong."""
    path = exc.filename2 or exc.filename
    what = _WHAT.get(exc.errno, exc.strerror or " ".join(str(exc).split()))
    line = f"{path}: {what}" if path else what
    if exc.errno in OUT_OF_SPACE:
        line += "; free some space and run the same command again (sweeps and training resume where they stopped)"
    return line
