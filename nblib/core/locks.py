"""Locks on files and output folders, released by the kernel when their holder dies."""

from __future__ import annotations

import fcntl
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path | str):
    """Hold an exclusive ``flock`` on ``path`` while the block runs, waiting for any holder.

    For work that must happen once however many processes ask at the same moment (generating
    the default phantom); the kernel releases the lock if its holder is killed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield path


class FolderLocked(RuntimeError):
    """Another run holds the output folder's lock."""


@contextmanager
def lock_folder(folder: Path | str):
    """Hold ``<folder>/.lock`` while the block runs; raise :class:`FolderLocked` if held.

    The lock is an ``flock`` on the open file, so the kernel releases it when the holder exits
    or is killed: a stale lock can never block a later run. The file records the holder's pid,
    host and start time so that a refused run can say who holds it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".lock"
    f = open(path, "a+")  # noqa: SIM115 - held open for the life of the lock
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "an unknown process"
            raise FolderLocked(
                f"Output folder {folder} is in use by another run ({holder}). Wait for it to "
                "finish, stop it, or choose another output folder (--out)."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(
            f"pid {os.getpid()} on host {socket.gethostname()}, started "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        )
        f.flush()
        yield path
    finally:
        f.close()  # closing releases the flock
