"""Run several experiments one after another, with a progress bar, keyed as the caller likes."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Hashable, Mapping, TypeVar

from ddlkit.config import Experiment
from ddlkit.runtime import run
from ddlkit.runtime.result import RunResult

K = TypeVar("K", bound=Hashable)


def run_all(experiments: Mapping[K, Experiment], record_root: str | os.PathLike[str] | None
            = None, progress: bool = True) -> dict[K, RunResult]:
    """``{key: run(exp)}`` in order; one bar step per run, showing the run's label.

    With ``record_root`` each run's record is saved in ``record_root/<key>``. A failing
    run raises as :func:`~ddlkit.runtime.run` does (its partial record is kept on disk
    when ``record_root`` is given); the runs before it are in the exception's context only,
    so keep ``record_root`` for long sweeps.
    """
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(experiments), desc="runs", unit="run", leave=False)
    results: dict[K, RunResult] = {}
    try:
        for key, exp in experiments.items():
            if bar is not None:
                bar.set_postfix_str(exp.label())
            folder = None if record_root is None else Path(record_root) / _safe(str(key))
            results[key] = run(exp, record_dir=folder)
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    return results


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
