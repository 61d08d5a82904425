"""Files the commands write: checked before the work, written whole or not at all.

Why: ``tuner ladder`` plays for minutes before it writes, so an ``--out`` that cannot
be written (a directory, a read-only folder) is refused before the first game; and a
write that fails half-way leaves neither a half-written file nor a stray ``.tmp``
beside it. One rule for every command that writes a file (ladder, export, trials).
"""

from __future__ import annotations

import os
from pathlib import Path

from tuner.base.errors import UserError


def check_writable(path: Path, flag: str = "--out") -> Path:
    """``path`` if a file can be written there, else a :class:`UserError` in one line."""
    if path.is_dir():
        raise UserError(f"{flag}: expected a file to write, but got {str(path)!r}, a directory")
    folder = _existing_ancestor(path.parent)
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(
            f"{flag}: expected a file in a folder that can be written, but got {str(path)!r} "
            f"({str(folder)!r} is {'not a folder' if not folder.is_dir() else 'read-only'})"
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{flag}: expected a file that can be written, but got {str(path)!r}")
    return path


def _existing_ancestor(folder: Path) -> Path:
    """The nearest folder above (or at) ``folder`` that exists: where a new one is made."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def write_atomic(path: Path, text: str, flag: str = "--out") -> Path:
    """Write ``text`` to ``path`` through a temporary file beside it, replaced in one step.

    On any failure the temporary file is removed and the old file (if any) is left as
    it was: a :class:`UserError` in one line.
    """
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        name = str(path.with_name(f".{path.name}.{os.getpid()}.tmp"))
        # O_EXCL: never another writer's file; mode 0o666 less the umask, as open() gives
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        tmp = name
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        raise UserError(
            f"{flag}: expected a file that can be written, but got {str(path)!r}: "
            f"{err.strerror or err}; nothing was written"
        ) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path
