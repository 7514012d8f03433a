"""Run several experiments one after another, with a progress bar, keyed by a label."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from ddlkit.config import Experiment
from ddlkit.result import RunResult
from ddlkit.runtime import run


def run_all(experiments: Mapping[str, Experiment], record_root: str | os.PathLike[str] | None
            = None, progress: bool = True) -> dict[str, RunResult]:
    """``{label: run(exp)}`` in order; one bar step per run.

    With ``record_root`` each run's record is saved in ``record_root/<label>``. A failing
    run raises as :func:`~ddlkit.runtime.run` does (its partial record is kept on disk
    when ``record_root`` is given); the runs before it are in the exception's context only,
    so keep ``record_root`` for long sweeps.
    """
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(experiments), desc="runs", unit="run", leave=False)
    results: dict[str, RunResult] = {}
    try:
        for label, exp in experiments.items():
            if bar is not None:
                bar.set_postfix_str(label)
            folder = None if record_root is None else Path(record_root) / _safe(label)
            results[label] = run(exp, record_dir=folder)
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    return results


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
