"""The ``scaling`` command line: one entry point, a subcommand per job.

Each subcommand lives in ``scaling/commands/<name>.py`` and exposes ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``, and mirrors a Python function of the
package (docs/design.md, "Interfaces"). Command modules import heavy libraries (JAX) inside
``run`` so that ``scaling --help`` and argument errors stay fast.

Errors: a ``ScalingError`` anywhere prints ``scaling <cmd>: error: <one line>`` on stderr and
exits with status 2; argument errors do the same, and so does an output the system refuses (an
``OSError``: a read-only file system, a file where a directory should be, a full disk; worded by
``scaling.errors.os_error_line``). No traceback reaches the user for bad input. A damaged line
of an append-only record (``RecordWarning``) prints one ``warning:`` line. Ctrl-C prints one
``interrupted`` line and exits 130 (``scaling.interrupts``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import Sequence

from scaling import __version__, interrupts
from scaling.errors import EXIT_BAD_INPUT, RecordWarning, ScalingError, os_error_line, storage_error

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it

# name -> module under scaling.commands (dispatch table, in the order shown by --help)
COMMANDS = {
    "demo": "demo",
    "data": "data",
    "train": "train",
    "sweep": "sweep",
    "status": "status",
    "steps": "steps",
    "cbs": "cbs",
    "fit": "fit",
    "predict": "predict",
    "optimum": "optimum",
    "plan": "plan",
    "figs": "figs",
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {' '.join(message.split())}\n")


def _load(name: str):
    return importlib.import_module(f"scaling.commands.{COMMANDS[name]}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"scaling {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = _load(name)
        except ModuleNotFoundError as e:  # a command not built yet
            if e.name and e.name.startswith("scaling.commands"):
                continue
            raise
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _warning_printer(command: str):
    """``warnings.showwarning`` that prints a ``RecordWarning`` as one line, others as usual."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, RecordWarning):
            print(f"scaling {command}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)
    return show


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    interrupts.install()
    with warnings.catch_warnings():
        warnings.simplefilter("default", RecordWarning)
        warnings.showwarning = _warning_printer(args.command)
        return _run(args)


def _run(args) -> int:
    try:
        return int(args._run(args) or 0)
    except ScalingError as e:
        print(f"scaling {args.command}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"scaling {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 - an output the system refuses is one line, not a traceback
        os_error = e if isinstance(e, OSError) else storage_error(e)
        if os_error is None:
            raise
        print(f"scaling {args.command}: error: {os_error_line(os_error)}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
