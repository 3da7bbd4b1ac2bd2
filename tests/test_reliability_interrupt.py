"""Ctrl-C (issue 20, item 5): a real SIGINT to ``scaling train`` while it compiles and while it
writes checkpoints, and to ``scaling sweep``, prints exactly ``scaling <cmd>: interrupted`` and
exits 130 (no orbax tracebacks, never swallowed by a gc callback), and the work resumes."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest
import yaml

from scaling import interrupts
from scaling.cli import main
from sweep_helpers import check_exactly_once, check_records_intact, env, scaling_cmd, write_grid
from train_helpers import B, L, tiny_spec

INTERRUPTED = 130


@pytest.fixture()
def default_sigint():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_hook = sys.unraisablehook
    yield
    signal.signal(signal.SIGINT, previous)
    sys.unraisablehook = previous_hook


def interrupt_here():
    """SIGINT to this process; the Python handler runs at the next bytecode boundary, here."""
    os.kill(os.getpid(), signal.SIGINT)
    sum(range(1000))


def raises_interrupt_soon(action):
    """Whether ``KeyboardInterrupt`` reaches this frame during ``action()`` or within 5 s of it."""
    try:
        action()
        deadline = time.time() + 5
        while time.time() < deadline:
            time.sleep(0.01)
    except KeyboardInterrupt:
        return True
    return False


def test_an_interrupt_inside_a_gc_callback_is_raised_after_it(default_sigint):
    fired = []

    def callback(phase, info):
        if phase == "start" and not fired:
            fired.append(phase)
            interrupt_here()  # raised inside the callback, where the interpreter drops it

    interrupts.install()
    gc.callbacks.append(callback)
    try:
        assert raises_interrupt_soon(gc.collect)
    finally:
        gc.callbacks.remove(callback)
    assert fired


def test_an_interrupt_inside_a_weakref_callback_run_by_the_collector_is_raised_after_it(default_sigint):
    """The case CI met: the handler ran in ``WeakKeyDictionary``'s removal callback during gc."""
    fired = []

    class Node:
        pass

    def on_collect(_ref):
        fired.append(True)
        interrupt_here()

    def collect_a_cycle():
        node = Node()
        node.self = node
        ref = weakref.ref(node, on_collect)
        del node
        gc.collect()
        return ref

    interrupts.install()
    assert raises_interrupt_soon(collect_a_cycle)
    assert fired


def test_other_unraisable_exceptions_reach_the_previous_hook(default_sigint):
    seen = []
    sys.unraisablehook = lambda unraisable: seen.append(unraisable.exc_type)
    interrupts.install()

    class Finalised:
        def __del__(self):
            raise ValueError("from a finalizer")

    Finalised()
    assert seen == [ValueError]


def test_deferred_holds_an_interrupt_until_the_block_is_done(default_sigint):
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            done.append(True)
    assert done == [True]


def interrupt_when(cmd: list, ready, settle_s: float = 0.0, timeout: float = 180.0):
    """Start ``cmd``, send SIGINT once ``ready()`` holds (then ``settle_s`` later); (rc, stderr)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    deadline = time.time() + timeout
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(settle_s)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


@pytest.fixture()
def long_run(tmp_path):
    """A tiny LM run long enough never to finish here, checkpointing every step."""
    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump(tiny_spec(steps=5000, checkpoint_every_tokens=B * L)))
    return cfg, tmp_path / "run"


@pytest.mark.parametrize("moment", ["compiling", "checkpointing"])
def test_ctrl_c_in_train_is_one_line(long_run, moment):
    cfg, run = long_run
    ready = {"compiling": lambda: (run / "config.json").exists(),
             "checkpointing": lambda: (run / "checkpoints").is_dir()}[moment]
    rc, err = interrupt_when(scaling_cmd("train", cfg, "--out", run, "--quiet"), ready,
                             settle_s=0.3 if moment == "checkpointing" else 0.0)
    assert (rc, err) == (INTERRUPTED, "scaling train: interrupted\n")
    assert not (run / "status").exists()  # interrupted, not finished: it resumes


def test_ctrl_c_in_a_sweep_is_one_line_and_it_resumes(tmp_path):
    grid = write_grid(tmp_path / "g.yaml")
    out = tmp_path / "s"
    rc, err = interrupt_when(scaling_cmd("sweep", grid, "--out", out, "--quiet"),
                             lambda: (out / "events.jsonl").exists())
    assert (rc, err) == (INTERRUPTED, "scaling sweep: interrupted\n")
    assert main(["sweep", str(grid), "--out", str(out), "--quiet"]) == 0
    check_records_intact(out)
    check_exactly_once(out)
    assert list(Path(out, "locks").iterdir()) == []
