"""How many local steps? Bytes saved against the drift of non-IID workers.

Local SGD (mode ``local-sgd``) averages models every H = ``local_steps`` steps, so it
sends about 1/H of the bytes of all-reduce SGD (McMahan et al. 2017; Stich 2019). On IID
shards the workers' models stay close between averages and little is lost. On non-IID
shards (label skew, Dirichlet α small) each worker drifts towards its own classes and the
average is worse (Zhao et al. 2018, "Federated learning with non-IID data").

:func:`sweep` runs one experiment per (data split, H); :func:`summary` puts the numbers
side by side: final accuracy and test loss, bytes, and bytes against H=1 on the same split.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from ddlkit.analysis.sweep import run_all
from ddlkit.config import Experiment
from ddlkit.runtime.result import RunResult

#: data splits to compare, as Experiment fields; label-skew with 1 class per worker on 4
#: workers gives each worker 2–3 classes that no other worker has
SPLITS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "iid": MappingProxyType({"sharding": "iid"}),
    "label-skew": MappingProxyType({"sharding": "label-skew", "classes_per_worker": 1}),
    "dirichlet α=0.1": MappingProxyType({"sharding": "dirichlet", "dirichlet_alpha": 0.1}),
})


def sweep(base: Experiment, runs: Sequence[tuple[str, int]],
          splits: Mapping[str, Mapping[str, Any]] = SPLITS
          ) -> dict[tuple[str, int], RunResult]:
    """Run ``base`` in mode ``local-sgd`` once per (split name, H) in ``runs``, in order.

    ``splits`` maps a split name to the Experiment fields that make it (default
    :data:`SPLITS`). Returns the results keyed by (split name, H).
    """
    for name, _ in runs:
        if name not in splits:
            raise ValueError(f"runs: split {name!r} is unknown; one of "
                             f"{', '.join(map(repr, splits))}")
    return run_all({(name, h): base.replace(mode="local-sgd", local_steps=h,
                                            **dict(splits[name])) for name, h in runs})


@dataclass(frozen=True)
class Row:
    """One run of a sweep: its split and H, final scores, and bytes sent by all ranks."""

    split: str
    local_steps: int
    accuracy: float
    test_loss: float
    bytes: int
    #: bytes over those of the H=1 run on the same split (None without that run)
    bytes_vs_h1: float | None

    def line(self) -> str:
        ratio = "" if self.bytes_vs_h1 is None else f" ({self.bytes_vs_h1:.3f} of H=1)"
        return (f"{self.split:<16} H={self.local_steps:<3} accuracy {self.accuracy:6.1%}  "
                f"test loss {self.test_loss:.3f}  sent {self.bytes / 1e6:6.2f} MB{ratio}")


def summary(results: Mapping[tuple[str, int], RunResult]) -> list[Row]:
    """One :class:`Row` per run of :func:`sweep`, in the same order."""
    rows = []
    for (split, h), r in results.items():
        base = results.get((split, 1))
        ratio = r.total_bytes / base.total_bytes if base is not None else None
        rows.append(Row(split, h, float(r.final["accuracy"]), float(r.final["test_loss"]),
                        r.total_bytes, ratio))
    return rows
