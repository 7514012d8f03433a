"""The benchmark suite runs and writes a well-formed RESULTS.md (no timing is asserted).

``benchmarks/run_all.py --quick`` is a smoke test of every benchmark: one repetition of
tiny sizes. Its numbers mean nothing on a shared machine; only the table's shape is
checked: every measurement has its rows, and each row has a ratio and a verdict, or says
why it was not measured.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["#", "measurement", "setting", "ddlkit", "baseline", "ratio", "goal", "verdict"]
VERDICT = re.compile(r"^(met( \(aim [0-9.]+× reached\))?|not met|no goal \(information\)"
                     r"|not measured \(.+\))$")
RATIO = re.compile(r"^[0-9]+\.[0-9]{2}×$")


def table_rows(markdown: str) -> list[list[str]]:
    """The cells of the results table's body (header and separator checked)."""
    lines = [ln for ln in markdown.splitlines() if ln.startswith("|")]
    assert lines, "no table in RESULTS.md"
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == COLUMNS
    assert re.fullmatch(r"\|(---\|)+", lines[1]) and lines[1].count("|") == len(COLUMNS) + 1
    rows = [[c.strip() for c in re.split(r"(?<!\\)\|", ln.strip("|"))] for ln in lines[2:]]
    for row in rows:
        assert len(row) == len(COLUMNS), row
    return rows


@pytest.mark.slow
def test_quick_suite_writes_a_well_formed_table(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    for fact in ("cores", "torch 2", "load average", "at start:", "at end:", "date:"):
        assert fact in text, f"machine facts lack {fact!r}"
    rows = table_rows(text)
    assert {r[0] for r in rows} == {"1", "2", "3", "4", "5", "6", "7"}
    for number, measurement, setting, value, _base, ratio, _goal, verdict in rows:
        assert VERDICT.match(verdict), f"row {number} {measurement} {setting}: {verdict!r}"
        if not verdict.startswith("not measured"):
            assert RATIO.match(ratio), f"row {number} {setting}: ratio {ratio!r}"
            assert value not in ("", "—")
    # the rows the brief names, each present once per setting
    measurements = {(r[0], r[1]) for r in rows}
    for needed in [("1", "allreduce(ring) samples/s vs torch DDP"),
                   ("1", "allreduce(doubling) samples/s vs torch DDP"),
                   ("1", "allreduce(gloo) samples/s vs torch DDP"),
                   ("2", "Communicator.all_reduce vs dist.all_reduce"),
                   ("2", "ring_all_reduce vs dist.all_reduce"),
                   ("3", "async PS updates/s vs Ray actor PS"),
                   ("6", "peak RSS per worker"),
                   ("7", "step time, measured vs α–β prediction")]:
        assert needed in measurements, f"missing row {needed}"
    assert sum(r[0] == "1" for r in rows) == 12  # 2 models × 2 world sizes × 3 impls
    assert sum(r[0] == "2" for r in rows) == 16  # 4 sizes × 2 world sizes × 2 ways
    assert sum(r[0] == "7" for r in rows) == 6  # sync and ring × N = 2, 3, 4
    assert any(r[1].startswith("run() to first event, cold") for r in rows)
    assert any(r[1].startswith("run() to first event, warm") for r in rows)
