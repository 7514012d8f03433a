"""An on-disk cache of the prepared datasets, so a cold start need not import scikit-learn.

Files live in ``$DDLKIT_CACHE``, else ``$XDG_CACHE_HOME/ddlkit``, else ``~/.cache/ddlkit``,
one ``.npz`` per dataset and scikit-learn version (the data ships with scikit-learn, and
its train/test split is scikit-learn's). Writes are atomic (a temporary file renamed into
place), so two processes filling the cache at once cannot leave a torn file. A cache that
cannot be read or written is ignored: the data is then computed as before.
``make clean`` does not remove it; delete the folder to force a rebuild.
"""
from __future__ import annotations

import os
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

KEYS = ("x_train", "y_train", "x_test", "y_test")
#: one dataset's arrays, in :data:`KEYS` order
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
#: bump when the preparation in :mod:`ddlkit.data.datasets` changes
FORMAT = 1


def folder() -> Path:
    """Where the cache lives (see the module docstring)."""
    if os.environ.get("DDLKIT_CACHE"):
        return Path(os.environ["DDLKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ddlkit"


def path(name: str) -> Path:
    """The cache file of dataset ``name`` for the installed scikit-learn."""
    try:
        version = metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        version = "none"
    return folder() / f"{name}-v{FORMAT}-sklearn{version}.npz"


def load(name: str) -> Arrays | None:
    """The cached arrays of ``name`` in :data:`KEYS` order, or None."""
    try:
        with np.load(path(name), allow_pickle=False) as f:
            x_train, y_train, x_test, y_test = (np.array(f[k]) for k in KEYS)
            return x_train, y_train, x_test, y_test
    except (OSError, KeyError, ValueError):
        return None


def save(name: str, arrays: Arrays) -> None:
    """Store ``arrays`` for ``name``; silently does nothing if the folder is not writable."""
    target = path(name)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                x_train, y_train, x_test, y_test = arrays  # the names are KEYS
                np.savez(f, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        return
