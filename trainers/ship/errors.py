"""The one exception type users see: a single line naming the bad value."""


class ShipError(Exception):
    """A user-facing error (bad input, missing file, corrupt weights).

    Entry points print ``error: <message>`` and exit with status 2, without a
    traceback; the message must say what was wrong and what was expected.
    """
