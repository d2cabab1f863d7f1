"""One server per data directory: an exclusive lock taken before anything is touched.

Two servers on one ``DATA_DIR`` would each think the other's running jobs were left over
by a crash and re-queue them (and the first would then fail its finished analysis). So the
server takes ``flock(DATA_DIR/server.lock)`` before recovery, before binding its port, and
holds it while it runs; the kernel drops the lock when the process dies, kill -9 included,
so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from dsp.errors import InputError

LOCK_NAME = "server.lock"

_held: dict[Path, int] = {}


class DataDirInUse(InputError):
    """Another running server holds the data directory."""

    code = "server.data_dir_in_use"


def acquire(data_dir: Path) -> None:
    """Hold ``data_dir`` for this process (idempotent); ``DataDirInUse`` when another
    process does. Creates the folder and the lock file, nothing else."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key = data_dir.resolve()
    if key in _held:
        return
    fd = os.open(key / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = b""
        with contextlib.suppress(OSError):
            holder = os.pread(fd, 32, 0).strip()
        os.close(fd)
        pid = f" (pid {holder.decode(errors='replace')})" if holder.isdigit() else ""
        raise DataDirInUse(
            f"another mirrorline server{pid} is using the data directory {data_dir}; stop it "
            "first, or give this one its own MIRRORLINE_DATA_DIR"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = fd


def release(data_dir: Path) -> None:
    """Let ``data_dir`` go (at shutdown; a dying process releases it anyway)."""
    fd = _held.pop(data_dir.resolve(), None)
    if fd is not None:
        os.close(fd)
