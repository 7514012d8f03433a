"""A chaos run that starts cold, in a fresh Python process.

A cold start imports torch and starts the forkserver first, and its ranks join slowly: the
hangs issue 15 measured needed one. ``python -m tests.chaos.cold SEED RECORD_DIR`` plans the
run from its seed, makes it with the killer (:func:`.trial.observe`) and prints the
:class:`~.trial.Observation` as JSON on its last line, with the processes it still had at
the end: its workers must be gone already, and its helpers (forkserver, resource tracker)
must end with it. :func:`run_cold` starts that process and checks both.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

from tests.chaos.plan import Case, plan
from tests.chaos.trial import Observation, observe
from tests.procs import PROC, infrastructure, leftover_workers

ROOT = Path(__file__).resolve().parents[2]
#: how long processes may take to end after the run (workers) or after this process (helpers)
GONE_WITHIN_S = 5.0
#: beyond the run's timeout_s, how long the fresh process may take (imports, forkserver)
STARTUP_ALLOWANCE_S = 90.0


def run_cold(case: Case, record_dir: Path) -> Observation:
    """Make ``case``'s run in a fresh ``python`` and return what it observed."""
    timeout = case.experiment().timeout_s + STARTUP_ALLOWANCE_S
    try:
        proc = subprocess.run([sys.executable, "-m", "tests.chaos.cold", str(case.seed),
                               str(record_dir)], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return Observation(case.seed, outcome="RunTimeout",
                           error=f"the fresh process did not end within {timeout:g} s")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return Observation(case.seed, outcome="HarnessError",
                           error=f"exit {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    report = json.loads(lines[-1])
    obs = Observation(**report["observation"])
    helpers = {int(pid): start for pid, start in report["helpers"].items()}
    left = _still_there(helpers)
    if left:
        obs.leaks.append(f"the fresh process's helpers outlived it: pids {sorted(left)}")
    return obs


def start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), which tells a reused PID apart."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _still_there(pids: dict[int, str | None], wait_s: float = GONE_WITHIN_S) -> set[int]:
    """The processes of ``pids`` (pid: start time) still running after up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        left = {p for p, start in pids.items() if start is not None and start_time(p) == start}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def main(seed: int, record_dir: Path) -> None:
    """Make the run for ``seed`` here; print the observation and the helpers as JSON."""
    from ddlkit.errors import OversubscribedWarning

    warnings.simplefilter("ignore", OversubscribedWarning)
    obs = observe(plan(seed), record_dir)
    deadline = time.monotonic() + GONE_WITHIN_S
    while leftover_workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    if leftover_workers():
        obs.leaks.append(f"workers still running after the run: {sorted(leftover_workers())}")
    helpers = {pid: start_time(pid) for pid in infrastructure()}
    print(json.dumps({"observation": json.loads(obs.to_json()), "helpers": helpers}),
          flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
