"""Locks between processes: a run folder held by one run (:class:`RunLock`), and work done once per key however
many processes need it at once (:func:`once_per_key`: the feature cache).

Both are POSIX record locks (``fcntl.lockf``) on a small lock file holding the owner's process id. Such a lock
belongs to the process alone, so a loader's forked workers never hold it, and the kernel drops it the moment the
process dies (kill -9 included); on NFS it is served by the lock manager (lockd / NFSv4), on Lustre with the
``flock`` or ``localflock`` mount option, on GPFS and BeeGFS natively. A file system that refuses record locks is one
log line, and each process then works on its own.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from pathlib import Path
from typing import IO, Callable, Iterator

from trainers.ship.common.errors import ShipError

logger = logging.getLogger("ship")

_LOCKED: set[str] = set()  # lock files this process holds (POSIX record locks never conflict within a process)
BUSY = (errno.EAGAIN, errno.EACCES)  # what lockf raises while another process holds the lock
POLL_SECONDS = 0.2  # how often a waiting process tries the lock again
WAIT_LINE_SECONDS = 30.0  # the longest silence of a waiting process


def _try_lock(handle: IO) -> bool:
    """Take the exclusive lock of an open lock file without waiting: True when taken, False while another
    process holds it; any other refusal (no lock support) is raised."""
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in BUSY:
            return False
        raise
    return True


def _holder(handle: IO) -> str:
    handle.seek(0)
    return handle.read().strip() or "unknown"


def _own(handle: IO) -> None:
    """Write this process's id into a lock file it holds."""
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()


class RunLock:
    """An exclusive lock on a run folder (``.lock``, holding the owner's process id), so two runs never
    write one ``log.txt`` or checkpoint at once; the second run stops with one line. A killed run's lock goes
    with it, so it can be rerun at once."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / ".lock"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._key = str(self.path.resolve())
        if self._key in _LOCKED:
            raise self._busy(str(os.getpid()))
        self._file = open(self.path, "a+")
        try:
            taken = _try_lock(self._file)
        except OSError:  # no lock support: as a held lock (two runs into one folder must not both write)
            taken = False
        if not taken:
            holder = _holder(self._file)
            self._file.close()
            raise self._busy(holder)
        _LOCKED.add(self._key)
        _own(self._file)

    def _busy(self, holder: str) -> ShipError:
        return ShipError(f"another run (process {holder}) is writing to {self.path.parent}; wait for it to finish "
                         f"or choose another output folder")

    def release(self) -> None:
        if not self._file.closed:
            _LOCKED.discard(self._key)
            fcntl.lockf(self._file, fcntl.LOCK_UN)
            self._file.close()


@contextlib.contextmanager
def once_per_key(lock_path: Path, what: str, clock: Callable[[], float] = time.monotonic) -> Iterator[bool]:
    """Hold ``lock_path`` exclusively for the block, so that work on one key (``what``: e.g. a feature set) is done
    by one process at a time. Yields whether this process waited for another holder: only then may the work be
    done already, and the block checks for it.

    A process that finds the lock held logs one line (which key, which process holds it) and a progress line at
    least every :data:`WAIT_LINE_SECONDS` while it waits; when the holder dies, its lock is released with it and
    the next waiter takes over. Where the file system refuses record locks: one log line, and the block runs
    unlocked (yielding False), as without this lock.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    key = str(lock_path.resolve())
    if key in _LOCKED:  # this process holds it already (a nested call): nobody else worked on it meanwhile
        yield False
        return
    handle = open(lock_path, "a+")
    try:
        start = last = clock()
        waiting = False
        while True:
            try:
                if _try_lock(handle):
                    break
            except OSError as exc:
                logger.info(f"{lock_path.parent} does not support file locks ({exc.strerror or exc}); this process "
                            f"works on {what} on its own, whatever other processes do")
                yield False
                return
            now = clock()
            if not waiting:
                waiting = True
                logger.info(f"{what}: process {_holder(handle)} is making it (lock {lock_path}); waiting for it")
            elif now - last >= WAIT_LINE_SECONDS:
                last = now
                logger.info(f"{what}: still waiting for process {_holder(handle)}, {now - start:.0f} s so far")
            time.sleep(POLL_SECONDS)
        if waiting:
            logger.info(f"{what}: the lock is free after {clock() - start:.0f} s")
        _LOCKED.add(key)
        _own(handle)
        try:
            yield waiting
        finally:
            _LOCKED.discard(key)
            fcntl.lockf(handle, fcntl.LOCK_UN)
    finally:
        handle.close()
