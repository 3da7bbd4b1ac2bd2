"""The one exception type for bad user input.

Anything a user can get wrong (a config key, a CSV column, a missing file, a NaN) raises
``ScalingError`` with a one-line message naming the problem. The CLI prints it as a single
line on stderr and exits with status 2 (docs/design.md, "Command line").
"""

from __future__ import annotations

EXIT_BAD_INPUT = 2


class ScalingError(Exception):
    """Bad input: reported as one line, exit status 2, never a traceback."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # always one line
