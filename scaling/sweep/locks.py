"""Claims on runs through atomic lock files, with heartbeats (works on a shared filesystem).

A claim on run R is a file ``locks/R.<generation>`` created with ``O_CREAT | O_EXCL`` (atomic
on local filesystems and NFSv3+), holding the owner's token, host and pid. The owner's
heartbeat thread touches it every ``heartbeat_s`` seconds. A claim is stale when its file has
not been touched for ``stale_after_s`` seconds, or at once when its owner is a dead process on
this host. A stale claim of generation g is taken over by creating generation g + 1 (again
``O_EXCL``, so exactly one worker wins); the live claim is the highest generation. An owner
whose claim was superseded notices at its next heartbeat (``Claim.lost``) -- with
``stale_after_s`` many heartbeats long, that only happens to a worker that stopped beating.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

DEFAULT_HEARTBEAT_S = 5.0
DEFAULT_STALE_AFTER_S = 120.0


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
        path = lock_dir / f"{name}.{gen}"
        try:
            st = path.stat()
            with open(path, "r", encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            continue
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}  # being written right now: still a claim
        return LockInfo(path=path, generation=gen, token=data.get("token", ""),
                        host=data.get("host", ""), pid=int(data.get("pid", 0) or 0),
                        worker=data.get("worker", ""), age_s=max(0.0, time.time() - st.st_mtime))
    return None


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
    token = uuid.uuid4().hex
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"token": token, "host": socket.gethostname(), "pid": os.getpid(), "worker": worker,
                   "claimed": time.time()}, f)
        f.flush()
        os.fsync(f.fileno())
    return token


def try_claim(lock_dir: Path, name: str, worker: str, *, heartbeat_s: float = DEFAULT_HEARTBEAT_S,
              stale_after_s: float = DEFAULT_STALE_AFTER_S) -> Optional[Claim]:
    """Claim ``name`` if nobody holds it, or take over a stale claim; None if someone else holds it."""
    lock_dir = Path(lock_dir)
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


def live_claims(lock_dir: Path, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> dict:
    """name -> LockInfo of every claim that is not stale."""
    out = {}
    try:
        entries = os.listdir(lock_dir)
    except FileNotFoundError:
        return out
    names = {e.rsplit(".", 1)[0] for e in entries if "." in e and e.rsplit(".", 1)[1].isdigit()}
    for name in names:
        info = read_lock(Path(lock_dir), name)
        if info is not None and not info.stale(stale_after_s):
            out[name] = info
    return out
