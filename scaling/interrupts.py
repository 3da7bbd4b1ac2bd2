"""Ctrl-C: one clean ``interrupted`` line, never swallowed, never in the middle of a checkpoint.

Two things go wrong with Python's default SIGINT handler in a JAX process (found by sending
SIGINT to ``scaling train``):

- a ``KeyboardInterrupt`` raised while the interpreter runs a garbage-collection callback (JAX
  registers one), a weakref callback or a ``__del__`` is printed as "Exception ignored" and
  dropped: the run goes on to its end and exits 0;
- one raised while orbax writes a checkpoint leaves orbax's writer threads running into
  interpreter shutdown, where they print pages of tracebacks after the command's own line.

``install()`` (called by the CLI) sets a handler that raises, and a ``sys.unraisablehook`` that
re-delivers an interrupt a moment later when the interpreter dropped it; ``deferred()`` holds an
interrupt back until a block (a checkpoint save or restore) is done, then raises it. Resuming is
exact either way: a run restarts from its last complete checkpoint. A process started with SIGINT
ignored (``nohup cmd &``) keeps ignoring it; stop such a sweep with SIGTERM.
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading

REDELIVER_S = 0.05  # seconds before an interrupt that the interpreter dropped is raised again


def _redeliver_dropped(previous_hook):
    """``sys.unraisablehook`` that re-raises a dropped ``KeyboardInterrupt`` in the main thread.

    Every place where the interpreter prints "Exception ignored" and drops an exception (a gc
    callback, a weakref callback run by the collector, a ``__del__``) reports it through
    ``sys.unraisablehook``; anything else goes on to the hook that was there before."""

    def hook(unraisable):
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            timer = threading.Timer(REDELIVER_S, _thread.interrupt_main)
            timer.daemon = True
            timer.start()
            return
        previous_hook(unraisable)

    hook.redelivers = True
    return hook


def _handler(signum, frame):
    raise KeyboardInterrupt


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def install() -> None:
    """SIGINT raises ``KeyboardInterrupt``, and one the interpreter drops is raised again a
    moment later (main thread only)."""
    if _main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handler)
        if not getattr(sys.unraisablehook, "redelivers", False):
            sys.unraisablehook = _redeliver_dropped(sys.unraisablehook)


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
