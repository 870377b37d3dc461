"""State files are private: created 0600 in a 0700 directory (the SQLite file and its -wal/-shm, the .snail
folder, sandbox info files). Other users on a CI runner or a shared host must not read the trail or the lock."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def private_dir(path: str | Path) -> Path:
    """Create `path` (and missing parents) as 0700; tighten it to 0700 if it exists and is ours."""
    p = Path(path)
    missing = []
    probe = p
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for d in reversed(missing):  # mkdir(parents=True) would give the parents the default mode, not ours
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=DIR_MODE)
        _chmod_if_ours(d, DIR_MODE)
    _chmod_if_ours(p, DIR_MODE)
    return p


def private_file(path: str | Path) -> Path:
    """Create `path` empty as 0600 if missing (in a private directory); tighten it to 0600 if it exists."""
    p = Path(path)
    private_dir(p.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    _chmod_if_ours(p, FILE_MODE)
    return p


def private_sqlite(path: str | Path) -> Path:
    """Prepare an SQLite database path: the file 0600 before SQLite opens it (SQLite creates -wal/-shm with the
    database file's mode), existing sidecars tightened, the folder 0700. Call before sqlite3.connect."""
    p = private_file(path)
    for suffix in SQLITE_SIDECARS:
        side = Path(str(p) + suffix)
        if side.exists():
            _chmod_if_ours(side, FILE_MODE)
    return p


def write_private(path: str | Path, text: str) -> Path:
    """Write a text file (an info file, a trail written with -o into .snail) as 0600, replacing it atomically."""
    p = Path(path)
    private_dir(p.parent)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, p)
    return p


def _chmod_if_ours(p: Path, mode: int) -> None:
    # Never fight over a folder someone else owns (a shared state.path on a CI runner): only our own files.
    try:
        st = p.stat()
        if st.st_uid == os.getuid() and (st.st_mode & 0o777) != mode:
            p.chmod(mode)
    except OSError:
        pass


def private_state(state_dir: str | Path, sqlite_path: str | Path | None = None) -> None:
    """Tighten the local state folder (0700) and an opened SQLite store's files (0600); for stores made by an
    older snail, which created them with the default mode."""
    if Path(state_dir).is_dir():
        _chmod_if_ours(Path(state_dir), DIR_MODE)
    if sqlite_path is not None and Path(sqlite_path).is_file():
        _chmod_if_ours(Path(sqlite_path).parent, DIR_MODE)
        private_sqlite(sqlite_path)
