"""Notebook 13's study: accuracy against bytes for compressed and uncompressed gradients.

:func:`variants` makes the four runs the lesson compares from one base experiment:
uncompressed, top-k with error feedback, top-k without it, and 8-bit QSGD. :func:`sweep`
runs them over several seeds, and :func:`summary` reduces each to its final accuracy and
the gradient bytes a worker pushed, so claims can be checked as ratios with margins.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ddlkit.config import Experiment
from ddlkit.runtime.result import RunResult

#: the variants of the lesson, in the order they are plotted
VARIANT_NAMES: tuple[str, ...] = ("uncompressed", "top-k + EF", "top-k, no EF", "QSGD")


def variants(base: Experiment, ratio: float = 0.01, bits: int = 8) -> dict[str, Experiment]:
    """The four experiments compared, differing from ``base`` only in compression."""
    plain = base.replace(compression="none")
    return {
        "uncompressed": plain,
        "top-k + EF": plain.replace(compression="topk", compress_ratio=ratio,
                                    error_feedback=True),
        "top-k, no EF": plain.replace(compression="topk", compress_ratio=ratio,
                                      error_feedback=False),
        "QSGD": plain.replace(compression="qsgd", quant_bits=bits),
    }


def sweep(base: Experiment, seeds: Sequence[int] = (0,), ratio: float = 0.01,
          bits: int = 8) -> dict[str, list[RunResult]]:
    """Run every variant for every seed (seed changes the model's initialisation, the
    batches and QSGD's draws); returns the runs by variant name, in seed order."""
    from ddlkit.analysis.sweep import run_all

    plan = {(name, seed): exp for seed in seeds
            for name, exp in variants(base.replace(seed=seed), ratio, bits).items()}
    results = run_all(plan)
    out: dict[str, list[RunResult]] = {name: [] for name in VARIANT_NAMES}
    for (name, seed), result in results.items():
        if result.status != "ok":
            raise RuntimeError(f"{result.config.label()} (seed {seed}) {result.status}: "
                               f"{result.error}")
        out[name].append(result)
    return out


@dataclass(frozen=True)
class VariantSummary:
    """One variant over its seeds: final accuracies and the bytes pushed per worker."""

    name: str
    accuracies: tuple[float, ...]
    pushed_bytes: int
    pulled_bytes: int

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(self.accuracies))


def gradient_bytes(result: RunResult) -> tuple[int, int]:
    """(pushed, pulled): payload bytes one worker sent and received in the whole run.

    On a parameter server the push is the (compressed) gradient and the pull the
    uncompressed model; on all-reduce both are the gradient exchange.
    """
    worker = next(r for r in result.ranks if r.role == "worker")
    return worker.payload_sent, worker.payload_received


def summary(runs: dict[str, list[RunResult]]) -> dict[str, VariantSummary]:
    """Each variant's final accuracies (seed order) and bytes (the same for every seed)."""
    out = {}
    for name, results in runs.items():
        pushed, pulled = gradient_bytes(results[0])
        accs = tuple(float(r.final["accuracy"]) for r in results)
        out[name] = VariantSummary(name, accs, pushed, pulled)
    return out


def table(runs: dict[str, list[RunResult]]) -> str:
    """A plain-text table: accuracy per seed, bytes pushed, and the compression factor."""
    rows = summary(runs)
    dense = rows[VARIANT_NAMES[0]].pushed_bytes
    lines = [f"{'variant':<14} {'accuracy by seed':<24} {'mean':>6} "
             f"{'pushed/worker':>14} {'factor':>7}"]
    for row in rows.values():
        accs = " ".join(f"{a:.1%}" for a in row.accuracies)
        lines.append(f"{row.name:<14} {accs:<24} {row.mean_accuracy:>6.1%} "
                     f"{row.pushed_bytes:>14,} {dense / row.pushed_bytes:>6.1f}×")
    return "\n".join(lines)
