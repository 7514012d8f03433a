"""Let a notebook show a bare ``Figure`` as a picture without ``%matplotlib inline``.

ddlkit's figures are never registered with pyplot, so Jupyter has not necessarily been
told how to draw them. When a kernel is running, register a PNG formatter for
``matplotlib.figure.Figure`` (what ``%matplotlib inline`` would do for pyplot figures).
"""
from __future__ import annotations

import io

from matplotlib.figure import Figure


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def register_notebook_display() -> None:
    """Register the PNG formatter in the running IPython kernel, if there is one."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None)
    if formatters and "image/png" in formatters:
        formatters["image/png"].for_type(Figure, _png)
