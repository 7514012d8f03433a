"""Old module paths, kept importable for one release (0.2) after the modules moved.

Before 0.2 every module sat directly in ``ddlkit/``. A learner's exercise file or an old
script may still say ``from ddlkit.models import build_model``: that import keeps working,
with a :class:`DeprecationWarning` naming the new path. An old path that maps to one new
module *is* that module (same object); one whose names went to several modules gets a
thin module holding them all. Nothing inside ddlkit imports an old path (a test checks).
Delete this file, and its one line in ``ddlkit/__init__.py``, in the release after.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Sequence

#: old path → the module(s) its names live in now
MOVED: dict[str, tuple[str, ...]] = {
    "ddlkit.accounting": ("ddlkit.comm.accounting",),
    "ddlkit.aggregation": ("ddlkit.lessons.sharing_data",),
    "ddlkit.checkpoint": ("ddlkit.train.checkpoint",),
    "ddlkit.checks": ("ddlkit.tools.checks",),
    "ddlkit.collector": ("ddlkit.runtime.collector",),
    "ddlkit.compression_study": ("ddlkit.lessons.gradient_compression",),
    "ddlkit.context": ("ddlkit.strategies.context", "ddlkit.comm.protocol"),
    "ddlkit.cost": ("ddlkit.analysis.cost",),
    "ddlkit.doctor": ("ddlkit.tools.doctor",),
    "ddlkit.iris_bugs": ("ddlkit.lessons.case_iris_corrected",),
    "ddlkit.launcher": ("ddlkit.runtime.processes",),
    "ddlkit.linreg_maths": ("ddlkit.lessons.one_worker",),
    "ddlkit.live": ("ddlkit.runtime.live",),
    "ddlkit.local_steps": ("ddlkit.lessons.local_sgd",),
    "ddlkit.lr_scaling": ("ddlkit.train.schedule", "ddlkit.lessons.learning_rate_scaling"),
    "ddlkit.models": ("ddlkit.train.models",),
    "ddlkit.optim": ("ddlkit.train.optim",),
    "ddlkit.pool": ("ddlkit.runtime.pool",),
    "ddlkit.reference": ("ddlkit.analysis.reference",),
    "ddlkit.result": ("ddlkit.runtime.result",),
    "ddlkit.staleness_sweep": ("ddlkit.lessons.bounded_staleness",),
    "ddlkit.step_time": ("ddlkit.analysis.step_time",),
    "ddlkit.stragglers": ("ddlkit.train.delays", "ddlkit.train.trainer",
                          "ddlkit.analysis.metrics"),
    "ddlkit.sweep": ("ddlkit.analysis.sweep",),
    "ddlkit.textgen": ("ddlkit.lessons.case_language_model",),
    "ddlkit.tradeoffs": ("ddlkit.lessons.choosing_a_strategy",),
    "ddlkit.training": ("ddlkit.train.trainer",),
    "ddlkit.warm": ("ddlkit.runtime.warm",),
    "ddlkit.worker": ("ddlkit.runtime.worker",),
    "ddlkit.comm.compression": ("ddlkit.comm.compress",),
    "ddlkit.comm.topk": ("ddlkit.comm.compress.topk",),
    "ddlkit.comm.qsgd": ("ddlkit.comm.compress.qsgd",),
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path in :data:`MOVED` and loads it as its new module(s)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default: an empty module, replaced or filled in exec_module

    def exec_module(self, module: ModuleType) -> None:
        old, new = module.__name__, MOVED[module.__name__]
        warnings.warn(f"{old} moved to {' and '.join(new)}; the old path goes in the next "
                      f"release", DeprecationWarning, stacklevel=2)
        targets = [importlib.import_module(n) for n in new]
        if len(targets) == 1:
            # The import system returns whatever sys.modules holds once this returns.
            sys.modules[old] = targets[0]
            return
        for target in targets:
            module.__dict__.update({k: v for k, v in vars(target).items()
                                    if not k.startswith("__")})


def install() -> None:
    """Make the old paths importable (once per interpreter)."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
