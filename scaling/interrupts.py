"""Ctrl-C: one clean ``interrupted`` line, never swallowed, never in the middle of a checkpoint.

Two things go wrong with Python's default SIGINT handler in a JAX process (found by sending
SIGINT to ``scaling train``):

- a ``KeyboardInterrupt`` raised while the interpreter runs a garbage-collection callback (JAX
  registers one) or a ``__del__`` is printed as "Exception ignored" and dropped: the run goes
  on to its end and exits 0;
- one raised while orbax writes a checkpoint leaves orbax's writer threads running into
  interpreter shutdown, where they print pages of tracebacks after the command's own line.

``install()`` (called by the CLI) sets a handler that re-delivers an interrupt a moment later
when it arrives in such a place; ``deferred()`` holds an interrupt back until a block (a
checkpoint save or restore) is done, then raises it. Resuming is exact either way: a run
restarts from its last complete checkpoint.
"""

from __future__ import annotations

import _thread
import contextlib
import gc
import signal
import threading

REDELIVER_S = 0.05  # seconds before an interrupt that arrived in a gc callback is raised again
SWALLOWING = ("__del__",)  # functions whose exceptions the interpreter prints and drops


def _swallowed_here(frame) -> bool:
    """Whether an exception raised in ``frame`` would be dropped: it runs inside a gc callback or
    a finalizer."""
    codes = {getattr(cb, "__code__", None) for cb in gc.callbacks} - {None}
    while frame is not None:
        if frame.f_code in codes or frame.f_code.co_name in SWALLOWING:
            return True
        frame = frame.f_back
    return False


def _handler(signum, frame):
    if _swallowed_here(frame):
        threading.Timer(REDELIVER_S, _thread.interrupt_main).start()
        return
    raise KeyboardInterrupt


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def install() -> None:
    """SIGINT raises ``KeyboardInterrupt`` where it cannot be swallowed (main thread only)."""
    if _main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handler)


@contextlib.contextmanager
def deferred():
    """Hold SIGINT back for the duration of the block; raise it (as the handler before would
    have) once the block is done. A no-op outside the main thread."""
    if not _main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    pending = []
    signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending and previous is not signal.SIG_IGN:
            if callable(previous):
                previous(signal.SIGINT, None)
            else:
                raise KeyboardInterrupt
