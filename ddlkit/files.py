"""Writing a file so that a kill never leaves half of it: a temp file, then a rename.

A record, a checkpoint or a generated exercise is first written to a temporary file in the
same folder, flushed to disk, then renamed over the target with :func:`os.replace`, which
is atomic on every platform Python runs on. A crash while writing leaves the previous file
untouched; an exception also removes the temporary file. A ``SIGKILL`` cannot, so a
``.<name>.*.tmp`` file may stay behind (never the target half-written) until the next write
of the same file removes it: each file ddlkit writes has one writer at a time (the parent
for a record, one rank for a checkpoint).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable


def atomic_write(path: str | os.PathLike[str], data: bytes | Callable[[IO[bytes]], object],
                 mode: int = 0o644) -> Path:
    """Write ``data`` (bytes, or a function that writes to the open binary file) to a temp
    file beside ``path``, then rename it to ``path``. ``mode``: the new file's permission
    bits (``mkstemp`` alone would make it owner-only). Returns ``path``."""
    target = Path(path)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):  # left by a killed writer
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):  # not on Windows, where the bits mean little
                os.fchmod(f.fileno(), mode)
            if isinstance(data, bytes):
                f.write(data)
            else:
                data(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
