"""The one exception type users see: a single line naming the bad value; and what every entry point prints
for it, for Ctrl-C and for a failed read or write."""
from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from typing import Callable


class ShipError(Exception):
    """A user-facing error (bad input, missing file, corrupt weights).

    Entry points print ``error: <message>`` and exit with status 2, without a
    traceback; the message must say what was wrong and what was expected.
    """


INTERRUPTED = "interrupted; rerun the same command to resume from the last finished stage"


def one_line(exc: BaseException) -> tuple[str, int] | None:
    """The single line and exit status a user sees for ``exc``: a :class:`ShipError` (2), Ctrl-C (130), an
    ``OSError`` such as a full disk or a folder without permission (2, naming the path). None for anything
    else: a bug, whose traceback is the right report."""
    if isinstance(exc, KeyboardInterrupt) or _interrupted:  # after Ctrl-C, e.g. "DataLoader worker exited"
        return INTERRUPTED, 130
    if isinstance(exc, ShipError):
        return f"error: {exc}", 2
    if isinstance(exc, OSError):
        paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
        reason = exc.strerror or str(exc) or type(exc).__name__
        return f"error: {reason}{': ' + paths if paths else ''}", 2
    return None


_interrupted = False  # Ctrl-C came during this run
_owner = 0  # the process that installed the handler; a loader worker forked from it inherits the handler


def _on_sigint(signum, frame) -> None:
    """Remember Ctrl-C and raise KeyboardInterrupt in the run's own process. A loader worker forked from it (which
    gets the terminal's SIGINT too) ends at once and silently: the run stops itself, and a worker that raised
    instead could print a traceback from wherever the signal landed (its exit handlers, its fd-sharing thread)."""
    global _interrupted
    if os.getpid() != _owner:
        os._exit(130)
    _interrupted = True
    raise KeyboardInterrupt


def remember_interrupts() -> Callable[[], None]:
    """Ctrl-C raises KeyboardInterrupt as usual and is also remembered, so that an interrupt Python swallowed
    (raised inside a ``__del__`` or a logging lock: "Exception ignored in ...") still stops the run at the next
    :func:`stop_if_interrupted`. Returns the function that restores the previous handler."""
    global _interrupted, _owner
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    _interrupted, _owner = False, os.getpid()
    previous, previous_hook = signal.signal(signal.SIGINT, _on_sigint), sys.unraisablehook

    def quiet_swallowed_interrupt(unraisable) -> None:
        """No "Exception ignored" traceback for an interrupt (remembered already), nor, after Ctrl-C, for what it
        left half done (a loader iterator whose __init__ it cut, failing in its __del__)."""
        if not (issubclass(unraisable.exc_type, KeyboardInterrupt) or _interrupted):
            previous_hook(unraisable)

    sys.unraisablehook = quiet_swallowed_interrupt

    def restore() -> None:
        global _interrupted
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook, _interrupted = previous_hook, False

    return restore


def stop_if_interrupted() -> None:
    """Raise KeyboardInterrupt when Ctrl-C came since :func:`remember_interrupts` (long loops call it each step)."""
    if _interrupted:
        raise KeyboardInterrupt


def _log_files() -> list[logging.FileHandler]:
    """The ``log.txt`` handlers of the core's ``ship`` logger."""
    return [h for h in logging.getLogger("ship").handlers if isinstance(h, logging.FileHandler)]


def print_and_log(line: str, opened_before: list[logging.FileHandler] = ()) -> None:
    """Print ``line`` to stderr and append it to the run's ``log.txt``: the core's (a ``ship`` log file opened
    since ``opened_before``, i.e. by this run) and Dassl's (``setup_logger`` tees stdout into a file). Before
    a run opens its log (a bad config, before OUTPUT_DIR is known) the console has it alone."""
    print(line, file=sys.stderr)
    try:  # the console has the line already: a log that cannot take it (a full disk, the cause) adds nothing
        for handler in _log_files():
            if handler not in opened_before:
                handler.handle(logging.makeLogRecord({"msg": line, "levelno": logging.ERROR, "levelname": "ERROR"}))
        dassl_log = getattr(sys.stdout, "file", None)  # dassl.utils.Logger: console and log.txt
        if dassl_log is not None and not dassl_log.closed:
            dassl_log.write(line + "\n")
            dassl_log.flush()
    except Exception:  # noqa: BLE001
        pass


def report_errors(run: Callable[[], object]) -> int:
    """Exit status of a command: 0, or the status of :func:`one_line` after printing its line (no traceback),
    which also goes to the run's ``log.txt`` when one is open."""
    restore = remember_interrupts()
    opened_before = _log_files()
    status = 0
    try:
        try:
            run()
        except BaseException as exc:
            reported = one_line(exc) if isinstance(exc, Exception | KeyboardInterrupt) else None
            if reported is None:
                raise
            line, status = reported
            print_and_log(line.replace("\n", " "), opened_before)
        if status == 130:  # what the interrupt left half built (its frames are free now) goes while the hook quiets it
            gc.collect()
    finally:
        restore()
    return status
