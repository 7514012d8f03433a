"""The panel's controls, built from :class:`~ddlkit.config.Experiment`'s fields.

Each control maps to one field (the straggler control maps to ``worker_delays``), so
reading the controls gives an Experiment, validated like any other. Which mode-specific
control shows in which mode, and the mode toggle's labels, come from the mode registry
(:data:`ddlkit.modes.MODES`).
"""
from __future__ import annotations

from typing import Any

import ipywidgets as w

from ddlkit.comm.network import PRESETS, network_label
from ddlkit.config import (
    ALLREDUCE_IMPLS,
    BATCH_SPLITS,
    COMPRESSIONS,
    LR_SCALINGS,
    MODELS,
    OPTIMIZERS,
    QUANT_BITS,
    WORKER_LOSS,
    Experiment,
    models_for,
)
from ddlkit.data import DATASETS, SCHEMES
from ddlkit.modes import MODE_SETTINGS, MODES

#: workers a laptop panel offers (the config allows up to 16)
PANEL_MAX_WORKERS = 8
#: the staleness slider's positions; the last one, ∞ (``staleness_bound=None``), never
#: blocks (async). A panel opened with another bound gets a stop for it.
STALENESS_STOPS: tuple[int | str, ...] = (0, 1, 2, 3, 4, 6, 8, 12, 16, "∞")
#: emulated networks (latency ms, bandwidth Mbit/s) the panel offers
NETWORKS = PRESETS
#: controls for the techniques beyond sync and async, shown under their own heading
ADVANCED = ("staleness_bound", "local_steps", "compression", "compress_ratio", "error_feedback",
            "quant_bits", "backup_workers", "random_delay_s", "batch_split", "network",
            "lr_scaling", "warmup_steps")
#: mode-specific settings a mode that does not read them refuses (at other than these
#: values): the panel drops them to these values there
DROPPED = {"compression": "none", "backup_workers": 0, "on_worker_loss": "auto"}
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
        "mode": w.ToggleButtons(options=[(m.label, m.name) for m in MODES.values()],
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
        # -- beyond sync and async ----------------------------------------------------
        "staleness_bound": w.SelectionSlider(options=_staleness_stops(exp.staleness_bound),
                                             value=_staleness_stop(exp.staleness_bound),
                                             description="staleness bound s", style=_STYLE,
                                             layout=_wide()),
        "local_steps": w.IntSlider(value=exp.local_steps, min=1, max=32,
                                   description="local steps H", style=_STYLE, layout=_wide()),
        "compression": w.Dropdown(options=list(COMPRESSIONS), value=exp.compression,
                                  description="compression", style=_STYLE),
        "compress_ratio": w.FloatLogSlider(value=exp.compress_ratio, base=10, min=-3, max=0,
                                           step=0.1, readout_format=".3f",
                                           description="top-k fraction", style=_STYLE,
                                           layout=_wide()),
        "error_feedback": w.Checkbox(value=exp.error_feedback, description="error feedback",
                                     style=_STYLE),
        "quant_bits": w.IntSlider(value=exp.quant_bits, min=QUANT_BITS[0], max=QUANT_BITS[1],
                                  description="QSGD bits", style=_STYLE, layout=_wide()),
        "backup_workers": w.IntSlider(value=exp.backup_workers, min=0,
                                      max=PANEL_MAX_WORKERS - 1, description="backup workers b",
                                      style=_STYLE, layout=_wide()),
        "random_delay_s": w.FloatSlider(value=exp.random_delay_s, min=0.0, max=0.1, step=0.005,
                                        readout_format=".3f",
                                        description="random delay, mean (s)", style=_STYLE,
                                        layout=_wide()),
        "batch_split": w.ToggleButtons(options=list(BATCH_SPLITS), value=exp.batch_split,
                                       description="split batches by", style=_STYLE),
        "network": w.Dropdown(options=_network_options(exp),
                              value=(exp.net_latency_ms, exp.net_bandwidth_mbps),
                              description="emulated network", style=_STYLE),
        "lr_scaling": w.ToggleButtons(options=list(LR_SCALINGS), value=exp.lr_scaling,
                                      description="lr scaling", style=_STYLE),
        "warmup_steps": w.IntSlider(value=exp.warmup_steps, min=0, max=200,
                                    description="warm-up steps", style=_STYLE, layout=_wide()),
    }
    return c


def _staleness_stop(bound: int | None) -> int | str:
    """The slider position for ``staleness_bound``: the bound itself, or ∞ for None."""
    return "∞" if bound is None else bound


def _staleness_stops(bound: int | None) -> list[int | str]:
    """The slider's stops: :data:`STALENESS_STOPS`, with ``bound`` in its place if it is
    not one of them (so a panel keeps any bound it is opened with)."""
    numbers = [s for s in STALENESS_STOPS if isinstance(s, int)]
    if bound is not None and bound not in numbers:
        numbers = sorted([*numbers, bound])
    return [*numbers, "∞"]


def _network_options(exp: Experiment) -> list[tuple[str, tuple[float, float]]]:
    """The network presets as (label, (latency ms, Mbit/s)), plus ``exp``'s if it is not one."""
    options = list(NETWORKS.items())
    mine = (exp.net_latency_ms, exp.net_bandwidth_mbps)
    if mine not in NETWORKS.values():
        options.append((network_label(*mine), mine))
    return options


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
    values = {k: v.value for k, v in controls.items()
              if k not in ("straggler_s", "fault", "network", "staleness_bound")}
    stop = controls["staleness_bound"].value
    values["staleness_bound"] = None if stop == "∞" else int(stop)
    values["net_latency_ms"], values["net_bandwidth_mbps"] = controls["network"].value
    delay = float(controls["straggler_s"].value)
    workers = int(values["workers"])
    values["worker_delays"] = (0.0,) * (workers - 1) + (delay,) if delay > 0 else ()
    reads = MODES[values["mode"]].settings
    for name, dropped in DROPPED.items():
        if name not in reads:  # the control is hidden: it does not apply
            values[name] = dropped

    exp = base.replace(**values)
    faults = fault_spec(controls["fault"].value, exp, workers, MODES[exp.mode].has_server)
    return exp.replace(faults=faults) if faults else exp


def refresh_visibility(controls: dict[str, w.ValueWidget]) -> None:
    """Show each control only where it applies: sharding parameters with their scheme,
    mode-specific controls in their modes, compression settings with their compressor."""
    models = models_for(controls["dataset"].value)
    if tuple(controls["model"].options) != models:  # only the models that suit the data
        keep = controls["model"].value if controls["model"].value in models else models[0]
        controls["model"].options = list(models)
        controls["model"].value = keep
    scheme = controls["sharding"].value
    for name, owner in SHARDING_PARAMS.items():
        controls[name].layout.display = None if scheme == owner else "none"
    reads = MODES[controls["mode"].value].settings
    for name in MODE_SETTINGS:
        controls[name].layout.display = None if name in reads else "none"
    comp = controls["compression"].value if "compression" in reads else "none"
    controls["compress_ratio"].layout.display = None if comp == "topk" else "none"
    controls["error_feedback"].layout.display = None if comp == "topk" else "none"
    controls["quant_bits"].layout.display = None if comp == "qsgd" else "none"
    scaled = controls["lr_scaling"].value != "none"
    controls["warmup_steps"].layout.display = None if scaled else "none"
