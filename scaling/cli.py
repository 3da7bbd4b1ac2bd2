"""The ``scaling`` command line: one entry point, a subcommand per job.

Each subcommand lives in ``scaling/commands/<name>.py`` and exposes ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``, and mirrors a Python function of the
package (docs/design.md, "Interfaces"). Command modules import heavy libraries (JAX) inside
``run`` so that ``scaling --help`` and argument errors stay fast.

Errors: a ``ScalingError`` anywhere prints ``scaling <cmd>: error: <one line>`` on stderr and
exits with status 2; argument errors do the same. No traceback reaches the user for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from scaling import __version__
from scaling.errors import EXIT_BAD_INPUT, ScalingError

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return int(args._run(args) or 0)
    except ScalingError as e:
        print(f"scaling {args.command}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"scaling {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
