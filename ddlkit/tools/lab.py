"""``ddlkit lab [DIR]``: open JupyterLab on a course folder, without ``make``.

:func:`lab_argv` is the command: this Python's JupyterLab, listening on 127.0.0.1 only,
serving the course folder and opening on its welcome notebook; ``--allow-root`` only when
running as root (Jupyter refuses root otherwise). :func:`launch` replaces this process
with it on POSIX (so Ctrl-C and the exit code are JupyterLab's own) and waits for it
elsewhere.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from ddlkit.paths import WELCOME


def is_root() -> bool:
    """True when running as root (POSIX); Jupyter then needs ``--allow-root``."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab_argv(folder: Path, port: int | None = None, browser: bool = True,
             root: bool | None = None) -> list[str]:
    """The command that opens JupyterLab on the course in ``folder``."""
    argv = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1",
            f"--ServerApp.root_dir={folder}", f"--LabApp.default_url=/lab/tree/{WELCOME}"]
    if is_root() if root is None else root:
        argv.append("--allow-root")
    if port is not None:
        argv.append(f"--port={port}")
    if not browser:
        argv.append("--no-browser")
    return argv


def jupyterlab_missing() -> str | None:
    """Why JupyterLab cannot start from this Python, or None when it can."""
    if importlib.util.find_spec("jupyterlab") is None:
        return (f"JupyterLab is not installed in this Python ({sys.executable}): "
                "pip install 'jupyterlab>=4.0'")
    return None


def launch(argv: list[str]) -> int:
    """Run ``argv``: in place of this process on POSIX, else as a child; its exit code."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execv(argv[0], argv)
    try:
        return subprocess.call(argv)
    except KeyboardInterrupt:
        return 130
