"""Claims on runs through atomic lock files, with heartbeats (works on a shared filesystem).

A claim on run R is a file ``locks/R.<generation>`` created with ``O_CREAT | O_EXCL`` (atomic
on local filesystems and NFSv3+), holding the owner's token, host and pid. The owner's
heartbeat thread touches it every ``heartbeat_s`` seconds. A claim is stale when its file has
not been touched for ``stale_after_s`` seconds, or at once when its owner is a dead process on
this host. The file appears with its content (written to a temporary file and hard-linked to
its name, which fails if the name exists), so a claim file that names no owner (empty: its
writer died between creating and writing it, or the disk was full) is no live claim: it is
stale once ``EMPTY_GRACE_S`` old. ``clean`` removes the stale claims of a finished sweep. A stale claim of generation g is taken over by creating generation g + 1 (again
``O_EXCL``, so exactly one worker wins); the live claim is the highest generation. An owner
whose claim was superseded notices at its next heartbeat (``Claim.lost``) -- with
``stale_after_s`` many heartbeats long, that only happens to a worker that stopped beating.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from scaling.errors import ScalingError

DEFAULT_HEARTBEAT_S = 5.0
DEFAULT_STALE_AFTER_S = 120.0
EMPTY_GRACE_S = 1.0  # an ownerless claim file younger than this may be one being written by create-then-write


@dataclass(frozen=True)
class LockInfo:
    path: Path
    generation: int
    token: str
    host: str
    pid: int
    worker: str
    age_s: float  # seconds since the last heartbeat

    def owner_dead(self) -> bool:
        """The owner is a process on this host that no longer exists."""
        if self.host != socket.gethostname() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def stale(self, stale_after_s: float) -> bool:
        if not self.token and self.pid <= 0:  # names no owner: nobody holds it
            return self.age_s > min(EMPTY_GRACE_S, stale_after_s)
        return self.age_s > stale_after_s or self.owner_dead()


def _generations(lock_dir: Path, name: str) -> list:
    out = []
    try:
        entries = os.listdir(lock_dir)
    except FileNotFoundError:
        return out
    prefix = name + "."
    for e in entries:
        if e.startswith(prefix) and e[len(prefix):].isdigit():
            out.append(int(e[len(prefix):]))
    return sorted(out)


def read_lock(lock_dir: Path, name: str) -> Optional[LockInfo]:
    """The live (highest-generation) claim on ``name``, or None."""
    for gen in reversed(_generations(lock_dir, name)):
        info = _read_one(lock_dir / f"{name}.{gen}", gen)
        if info is not None:
            return info
    return None


def _read_one(path: Path, gen: int) -> Optional[LockInfo]:
    try:
        st = path.stat()
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {}  # cut short (a full disk, or an old worker writing it right now)
    if not isinstance(data, dict):
        data = {}
    return LockInfo(path=path, generation=gen, token=str(data.get("token", "")), host=str(data.get("host", "")),
                    pid=int(data.get("pid", 0) or 0), worker=str(data.get("worker", "")),
                    age_s=max(0.0, time.time() - st.st_mtime))


class Claim:
    """A held claim; ``release()`` (or leaving the ``with`` block) gives it back."""

    def __init__(self, path: Path, token: str, heartbeat_s: float):
        self.path = path
        self.token = token
        self.heartbeat_s = heartbeat_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{path.name}", daemon=True)
        self._thread.start()

    def still_mine(self) -> bool:
        info = read_lock(self.path.parent, self.path.name.rsplit(".", 1)[0])
        return info is not None and info.path == self.path and info.token == self.token

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                pass
            if not self.still_mine():
                self.lost = True

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.heartbeat_s + 1)
        if self.still_mine():
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _create(path: Path, worker: str) -> Optional[str]:
    """Create the claim file ``path`` holding its owner, atomically and exclusively: written to a
    temporary file, then hard-linked to ``path`` (fails if it exists: exactly one creator wins, on
    NFS too); where the file system has no hard links, ``O_CREAT | O_EXCL`` then write. None if
    ``path`` exists."""
    token = uuid.uuid4().hex
    text = json.dumps({"token": token, "host": socket.gethostname(), "pid": os.getpid(), "worker": worker,
                       "claimed": time.time()})
    tmp = path.with_name(f".{path.name}.{token}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
            return token
        except FileExistsError:
            return None
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    try:  # no hard links here
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return token


def try_claim(lock_dir: Path, name: str, worker: str, *, heartbeat_s: float = DEFAULT_HEARTBEAT_S,
              stale_after_s: float = DEFAULT_STALE_AFTER_S) -> Optional[Claim]:
    """Claim ``name`` if nobody holds it, or take over a stale claim; None if someone else holds it."""
    lock_dir = Path(lock_dir)
    if lock_dir.is_symlink():
        raise ScalingError(f"{lock_dir}: is a symbolic link; claims are never written through links (remove it)")
    lock_dir.mkdir(parents=True, exist_ok=True)
    info = read_lock(lock_dir, name)
    if info is not None and not info.stale(stale_after_s):
        return None
    gen = 0 if info is None else info.generation + 1
    path = lock_dir / f"{name}.{gen}"
    token = _create(path, worker)
    if token is None:
        return None  # another worker won this generation
    if info is not None:  # clean the superseded generations (best effort)
        for g in _generations(lock_dir, name):
            if g < gen:
                try:
                    (lock_dir / f"{name}.{g}").unlink()
                except FileNotFoundError:
                    pass
    claim = Claim(path, token, heartbeat_s)
    if read_lock(lock_dir, name).path != path:  # a later generation appeared meanwhile
        claim._stop.set()
        return None
    return claim


def _claimed_names(lock_dir: Path) -> tuple:
    """(every entry of ``lock_dir``, the run names that have a claim file ``NAME.<generation>``)."""
    try:
        entries = os.listdir(lock_dir)
    except FileNotFoundError:
        return [], set()
    return entries, {e.rsplit(".", 1)[0] for e in entries if "." in e and e.rsplit(".", 1)[1].isdigit()}


def live_claims(lock_dir: Path, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> dict:
    """name -> LockInfo of every claim that is not stale."""
    out = {}
    for name in _claimed_names(lock_dir)[1]:
        info = read_lock(Path(lock_dir), name)
        if info is not None and not info.stale(stale_after_s):
            out[name] = info
    return out


def clean(lock_dir: Path, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> int:
    """Remove every stale claim file (and temporary files of dead creators) from ``lock_dir``;
    live claims stay. Returns how many files were removed. Called when a sweep has finished."""
    lock_dir = Path(lock_dir)
    entries, names = _claimed_names(lock_dir)
    stale = [lock_dir / f"{name}.{gen}" for name in names for gen in _generations(lock_dir, name)
             if (info := _read_one(lock_dir / f"{name}.{gen}", gen)) is not None and info.stale(stale_after_s)]
    stale += [lock_dir / e for e in entries if e.startswith(".") and e.endswith(".tmp")
              and _age(lock_dir / e) > stale_after_s]
    removed = 0
    for path in stale:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
