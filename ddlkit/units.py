"""Units shown to people: byte counts in decimal units (1 KB = 1000 bytes)."""
from __future__ import annotations

#: byte units, largest first, with their size in bytes
BYTE_UNITS: tuple[tuple[str, float], ...] = (("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1.0))


def byte_unit(n: float) -> str:
    """The largest unit in which ``n`` bytes is at least 1 (``B`` for small counts)."""
    return next((u for u, s in BYTE_UNITS if abs(n) >= s), "B")


def format_bytes(n: float, unit: str | None = None) -> str:
    """``n`` bytes in decimal units, e.g. ``1.5 MB``; ``unit`` fixes the unit (a plot axis)."""
    unit = byte_unit(n) if unit is None else unit
    v = n / dict(BYTE_UNITS)[unit]
    if unit == "B" or v == 0:
        return f"{v:.0f} {unit}" if v else "0"
    return f"{v:.3g} {unit}"
