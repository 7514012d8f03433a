"""Rows of the benchmark table, their verdicts, and benchmarks/RESULTS.md.

Every row is one ratio measured in the same run as its baseline. A goal is either
``("≥", x)`` (the ratio must reach x) or ``("≤", x)`` (it must not exceed x); a row
without a goal is information only. A row that could not be measured says why.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

COLUMNS = ("#", "measurement", "setting", "ddlkit", "baseline", "ratio", "goal", "verdict")


@dataclass
class Row:
    """One line of the table."""

    number: str
    measurement: str
    setting: str
    value: str = ""
    baseline: str = ""
    ratio: float | None = None
    goal: tuple[str, float] | None = None
    aim: float | None = None
    not_measured: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool | None:
        if self.ratio is None or self.goal is None:
            return None
        op, x = self.goal
        return self.ratio >= x if op == "≥" else self.ratio <= x

    def verdict(self) -> str:
        if self.not_measured:
            return f"not measured ({self.not_measured})"
        if self.goal is None:
            return "no goal (information)"
        text = "met" if self.met else "not met"
        if self.met and self.aim is not None and self.ratio is not None and self.ratio >= self.aim:
            text += f" (aim {self.aim:g}× reached)"
        return text

    def cells(self) -> list[str]:
        goal = "—" if self.goal is None else f"{self.goal[0]} {self.goal[1]:g}×"
        if self.goal is not None and self.aim is not None:
            goal += f" (aim {self.aim:g}×)"
        if self.not_measured:
            return [self.number, self.measurement, self.setting, self.value or "—",
                    self.baseline or "—", "—", goal, self.verdict()]
        ratio = "—" if self.ratio is None else f"{self.ratio:.2f}×"
        return [self.number, self.measurement, self.setting, self.value, self.baseline, ratio,
                goal, self.verdict()]


def row_from_dict(d: dict) -> Row:
    d = dict(d)
    if d.get("goal") is not None:
        d["goal"] = tuple(d["goal"])
    return Row(**d)


def script_main(doc: str, measure: Callable[[bool, int], list[Row]],
                default_repeats: int = 3) -> None:
    """The command line every bench_*.py script shares: print a table, or JSON rows."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 repetition, tiny sizes")
    ap.add_argument("--repeats", type=int, default=default_repeats)
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args()
    rows = measure(args.quick, 1 if args.quick else max(1, args.repeats))
    if args.json:
        print(json.dumps([asdict(r) for r in rows]))
    else:
        print(text_table(rows))


def measure_in_subprocess(script: Path, quick: bool, repeats: int) -> list[Row]:
    """Run a bench_*.py script in a fresh Python process (its own forkserver); its rows."""
    cmd = [sys.executable, str(script), "--json", "--repeats", str(repeats)]
    if quick:
        cmd.append("--quick")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{script.name} exited with code {proc.returncode}")
    return [row_from_dict(d) for d in json.loads(proc.stdout.strip().splitlines()[-1])]


def skipped(number: str, measurement: str, setting: str, reason: str,
            goal: tuple[str, float] | None = None, aim: float | None = None) -> Row:
    """A row that was not measured, and why."""
    return Row(number, measurement, setting, goal=goal, aim=aim, not_measured=reason)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def paired_ratio(ours: Sequence[float], base: Sequence[float]) -> float:
    """The median over repetitions of ours/base, each pair measured back to back."""
    return median(a / b for a, b in zip(ours, base))


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [c.replace("|", "\\|") for c in row.cells()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def text_table(rows: Sequence[Row]) -> str:
    """The same table for a terminal: aligned columns."""
    grid = [list(COLUMNS)] + [row.cells() for row in rows]
    widths = [max(len(r[i]) for r in grid) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in grid)


def machine_facts(load_start: tuple[float, float, float],
                  load_end: tuple[float, float, float], elapsed_s: float,
                  quick: bool, repeats: dict[str, int]) -> list[str]:
    def load(t: tuple[float, float, float]) -> str:
        return " / ".join(f"{x:.2f}" for x in t)

    per = ", ".join(f"{n}: {k}" for n, k in repeats.items())
    how = ("--quick (1 repetition, tiny sizes: a smoke test, not a measurement)" if quick
           else f"full; repetitions per measurement (the median is reported) {per}")
    return [
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Linux "
        f"{platform.release()}",
        f"- python {platform.python_version()}, torch {torch.__version__}",
        f"- load average (1 / 5 / 15 min) at start: {load(load_start)}; at end: "
        f"{load(load_end)}",
        f"- mode: {how}; the suite took {elapsed_s:.0f} s",
    ]


def results_markdown(rows: Sequence[Row], facts: list[str], how: list[str]) -> str:
    met = [r for r in rows if r.met is True]
    unmet = [r for r in rows if r.met is False]
    missing = [r for r in rows if r.not_measured]
    parts = [
        "# ddlkit benchmarks",
        "",
        "Written by `python benchmarks/run_all.py` (`make bench`). Every ratio is measured in "
        "the same run as its baseline, on the same model, batch and world size. Throughput "
        "ratios are ddlkit ÷ baseline (higher is better); time ratios are ddlkit ÷ baseline "
        "(lower is better). The machine is shared, so read the load average with the "
        "numbers.",
        "",
        "## Machine",
        "",
        *facts,
        "",
        "## Results",
        "",
        markdown_table(rows),
        "",
        f"Goals met: {len(met)}; not met: {len(unmet)}; not measured: {len(missing)}; "
        f"information only: {len(rows) - len(met) - len(unmet) - len(missing)}.",
        "",
    ]
    row_notes: list[str] = []
    for r in rows:
        for n in r.notes:
            line = f"- ({r.number}) {n}"
            if line not in row_notes:  # one note may apply to several rows
                row_notes.append(line)
    if row_notes:
        parts += ["## Notes", "", *row_notes, ""]
    if how:
        parts += ["## How each figure is measured", "", *how, ""]
    return "\n".join(parts)
