"""The one exception type users see: a single line naming the bad value."""
from __future__ import annotations

import sys
from typing import Callable


class ShipError(Exception):
    """A user-facing error (bad input, missing file, corrupt weights).

    Entry points print ``error: <message>`` and exit with status 2, without a
    traceback; the message must say what was wrong and what was expected.
    """


def report_errors(run: Callable[[], object]) -> int:
    """Exit status of a command: 0, or 2 after printing a :class:`ShipError` as one ``error:`` line."""
    try:
        run()
    except ShipError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
