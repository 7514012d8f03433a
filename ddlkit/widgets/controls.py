"""The panel's controls, built from :class:`~ddlkit.config.Experiment`'s fields.

Each control maps to one field (the straggler control maps to ``worker_delays``), so
reading the controls gives an Experiment, validated like any other.
"""
from __future__ import annotations

from typing import Any

import ipywidgets as w

from ddlkit.config import ALLREDUCE_IMPLS, MODELS, OPTIMIZERS, WORKER_LOSS, Experiment, models_for
from ddlkit.data import DATASETS, SCHEMES
from ddlkit.modes import MODES

#: workers a laptop panel offers (the config allows up to 16)
PANEL_MAX_WORKERS = 8
#: mode labels on the toggle buttons
MODE_LABELS = {"sync": "sync", "async": "async", "allreduce": "all-reduce"}
#: sharding parameters and the scheme that uses each one
SHARDING_PARAMS = {"dirichlet_alpha": "dirichlet", "classes_per_worker": "label-skew",
                   "size_ratio": "unbalanced"}

_STYLE = {"description_width": "150px"}


def _wide() -> w.Layout:
    """A fresh layout per widget: a shared one would hide every widget at once."""
    return w.Layout(width="420px")


def build_controls(exp: Experiment) -> dict[str, w.ValueWidget]:
    """One widget per field a learner may change, starting at ``exp``'s values."""
    c: dict[str, Any] = {
        "mode": w.ToggleButtons(options=[(MODE_LABELS.get(m, m), m) for m in MODES],
                                value=exp.mode, description="mode", style=_STYLE),
        "workers": w.IntSlider(value=exp.workers, min=1, max=PANEL_MAX_WORKERS,
                               description="workers", style=_STYLE, layout=_wide()),
        "dataset": w.Dropdown(options=list(DATASETS), value=exp.dataset,
                              description="dataset", style=_STYLE),
        "model": w.Dropdown(options=list(MODELS), value=exp.model, description="model",
                            style=_STYLE),
        "sharding": w.Dropdown(options=list(SCHEMES), value=exp.sharding,
                               description="sharding", style=_STYLE),
        "dirichlet_alpha": w.FloatLogSlider(value=exp.dirichlet_alpha, base=10, min=-2, max=2,
                                            step=0.1, description="Dirichlet α",
                                            style=_STYLE, layout=_wide()),
        "classes_per_worker": w.IntSlider(value=exp.classes_per_worker, min=1, max=10,
                                          description="classes per worker", style=_STYLE,
                                          layout=_wide()),
        "size_ratio": w.FloatSlider(value=exp.size_ratio, min=1.0, max=20.0, step=0.5,
                                    description="largest/smallest", style=_STYLE,
                                    layout=_wide()),
        "optimizer": w.Dropdown(options=list(OPTIMIZERS), value=exp.optimizer,
                                description="optimizer", style=_STYLE),
        "lr": w.FloatLogSlider(value=exp.lr, base=10, min=-4, max=0.5, step=0.1,
                               description="learning rate", style=_STYLE, layout=_wide()),
        "batch_size": w.IntSlider(value=exp.batch_size, min=1, max=256,
                                  description="batch per worker", style=_STYLE, layout=_wide()),
        "steps": w.IntSlider(value=exp.steps, min=10, max=2000, step=10, description="steps",
                             style=_STYLE, layout=_wide()),
        "straggler_s": w.FloatSlider(value=max(exp.worker_delays, default=0.0), min=0.0,
                                     max=0.1, step=0.005, readout_format=".3f",
                                     description="straggler delay (s)", style=_STYLE,
                                     layout=_wide()),
        "allreduce_impl": w.ToggleButtons(options=list(ALLREDUCE_IMPLS),
                                          value=exp.allreduce_impl,
                                          description="all-reduce", style=_STYLE),
        "seed": w.IntText(value=exp.seed, description="seed", style=_STYLE),
        "fault": w.Dropdown(options=[(label, key) for key, label in FAULTS.items()],
                            value="none", description="fault mid-run", style=_STYLE),
        "on_worker_loss": w.ToggleButtons(options=list(WORKER_LOSS), value=exp.on_worker_loss,
                                          description="on worker loss", style=_STYLE),
    }
    return c


#: the panel's fault menu: each choice becomes a ``faults`` spec at mid-run
FAULTS = {"none": "none", "kill-worker": "kill the last worker",
          "kill-server": "kill the server (rank 0)", "drop-worker": "the last worker leaves",
          "slow-worker": "slow the last worker down (+20 ms a step)"}


def fault_spec(choice: str, exp: Experiment, workers: int, has_server: bool) -> tuple[str, ...]:
    """The ``faults`` spec for a fault-menu choice, at half the run's steps."""
    step = max(1, exp.steps // 2)
    last = workers if has_server else workers - 1
    specs = {"none": (), "kill-worker": (f"kill:{last}@{step}",),
             "kill-server": (f"kill:0@{step}",), "drop-worker": (f"drop:{last}@{step}",),
             "slow-worker": (f"delay:{last}@{step}=0.02",)}
    return specs[choice]


def experiment_from(controls: dict[str, w.ValueWidget], base: Experiment) -> Experiment:
    """Read the controls into an Experiment (raises ConfigError for a bad value).

    The straggler delay slows the last worker, the usual picture of one slow machine.
    """
    values = {k: v.value for k, v in controls.items() if k not in ("straggler_s", "fault")}
    delay = float(controls["straggler_s"].value)
    workers = int(values["workers"])
    values["worker_delays"] = (0.0,) * (workers - 1) + (delay,) if delay > 0 else ()
    if not MODES[values["mode"]].has_server:  # the control is hidden: it does not apply
        values["on_worker_loss"] = "auto"
    exp = base.replace(**values)
    faults = fault_spec(controls["fault"].value, exp, workers, MODES[exp.mode].has_server)
    return exp.replace(faults=faults) if faults else exp


def refresh_visibility(controls: dict[str, w.ValueWidget]) -> None:
    """Show each sharding parameter only with its scheme, and the all-reduce choice only
    in all-reduce mode."""
    models = models_for(controls["dataset"].value)
    if tuple(controls["model"].options) != models:  # only the models that suit the data
        keep = controls["model"].value if controls["model"].value in models else models[0]
        controls["model"].options = list(models)
        controls["model"].value = keep
    scheme = controls["sharding"].value
    for name, owner in SHARDING_PARAMS.items():
        controls[name].layout.display = None if scheme == owner else "none"
    is_ar = controls["mode"].value == "allreduce"
    controls["allreduce_impl"].layout.display = None if is_ar else "none"
    controls["on_worker_loss"].layout.display = "none" if is_ar else None
