"""The mode registry is the one place a mode is described: its strategy exists, the
strategies' header constants agree with it, and the config, the cost model, the LR
schedule and the panel read it. Expected values are written out by hand from the
strategies' docstrings (what each message carries), not read from the registry."""
from __future__ import annotations

import importlib

import pytest

from ddlkit import ConfigError, Experiment
from ddlkit.analysis import cost, step_time
from ddlkit.config import COMPRESSIBLE_MODES
from ddlkit.modes import MODE_SETTINGS, MODES, CommPattern, Header, Mode, modes_with
from ddlkit.train.schedule import updates_per_step

#: (push, pull) header elements per mode, from what each strategy's messages carry
HEADERS = {"sync": (3, 1), "async": (3, 1), "ssp": (3, 1), "allreduce": (2, 0),
           "local-sgd": (2, 0)}


def test_the_five_modes_in_panel_order() -> None:
    assert list(MODES) == ["sync", "async", "ssp", "allreduce", "local-sgd"]
    assert all(name == mode.name for name, mode in MODES.items())


@pytest.mark.parametrize("name", list(MODES))
def test_every_mode_has_a_strategy_with_run(name: str) -> None:
    module = importlib.import_module(MODES[name].module)
    assert callable(module.run)
    assert MODES[name].strategy() is module.run


@pytest.mark.parametrize("name", list(MODES))
def test_registry_headers(name: str) -> None:
    """The sizes the strategies read from the registry (their counted bytes are checked
    against the cost formulas in test_bytes and test_cost)."""
    module = importlib.import_module(MODES[name].module)
    assert module.HEADER == MODES[name].header.push
    if hasattr(module, "PULL_HEADER"):
        assert module.PULL_HEADER == MODES[name].header.pull
    assert (MODES[name].header.push, MODES[name].header.pull) == HEADERS[name]


def test_cost_keeps_its_header_names() -> None:
    assert cost.Header is Header
    assert cost.NO_HEADER == Header(0, 0)
    assert {n: (h.push, h.pull) for n, h in cost.HEADERS.items()} == HEADERS


def test_roles_per_rank() -> None:
    sync, ring = MODES["sync"], MODES["allreduce"]
    assert (sync.world_size(4), ring.world_size(4)) == (5, 4)
    assert [sync.role(r) for r in range(3)] == ["server", "worker", "worker"]
    assert [ring.role(r) for r in range(3)] == ["worker"] * 3
    assert [sync.worker_index(r) for r in (1, 2)] == [0, 1]
    assert [ring.worker_index(r) for r in (0, 1)] == [0, 1]
    for mode in MODES.values():
        assert mode.has_server == mode.pattern.uses_server


def test_abilities_by_mode() -> None:
    assert COMPRESSIBLE_MODES == modes_with("compression") == ("sync", "allreduce")
    assert [n for n, m in MODES.items() if m.compresses_gradients] == ["sync", "allreduce"]
    assert step_time.PREDICTED_MODES == ("sync", "allreduce", "local-sgd")
    assert [n for n, m in MODES.items() if m.lr_per_gradient] == ["async", "ssp"]
    assert [n for n, m in MODES.items() if m.survives_worker_loss] == ["async"]
    assert {n: m.pattern for n, m in MODES.items()} == {
        "sync": CommPattern.PS_EVERY_STEP, "async": CommPattern.PS_PER_GRADIENT,
        "ssp": CommPattern.PS_PER_GRADIENT, "allreduce": CommPattern.ALLREDUCE_EVERY_STEP,
        "local-sgd": CommPattern.ALLREDUCE_EVERY_H}
    assert MODE_SETTINGS == {"staleness_bound", "local_steps", "allreduce_impl",
                             "compression", "backup_workers", "on_worker_loss"}


def test_settings_are_experiment_fields() -> None:
    assert MODE_SETTINGS <= set(Experiment().to_dict())


@pytest.mark.parametrize("name", list(MODES))
def test_what_asks_the_registry(name: str) -> None:
    """Config, schedule and cost model give each mode what its registry entry says."""
    mode = MODES[name]
    exp = Experiment(mode=name, workers=3, dataset="iris", model="linear")
    assert exp.continues_after_worker_loss == mode.survives_worker_loss
    assert updates_per_step(exp) == (3 if mode.lr_per_gradient else 1)
    if mode.pattern is CommPattern.PS_PER_GRADIENT:
        with pytest.raises(ValueError, match="async_traffic"):
            cost.step_traffic(exp, 1)
        assert len(cost.async_traffic(exp, [1, 1, 1])) == 4
    else:
        assert len(cost.run_traffic(exp)) == exp.world_size
    if mode.compresses_gradients:
        assert Experiment(mode=name, compression="topk").compression == "topk"
    else:
        with pytest.raises(ConfigError, match="compression"):
            Experiment(mode=name, compression="topk")


def test_a_mode_whose_roles_contradict_its_pattern_is_refused() -> None:
    with pytest.raises(ValueError, match="pattern"):
        Mode("bad", "bad", "a server mode that all-reduces", "ddlkit.strategies.allreduce",
             has_server=True, header=Header(2, 0), pattern=CommPattern.ALLREDUCE_EVERY_STEP)
    with pytest.raises(ValueError, match="push"):
        Header(-1, 0)


# -- the panel reads the registry ---------------------------------------------------------------
def test_mode_labels_on_the_toggle() -> None:
    from ddlkit.widgets import ExperimentPanel

    panel = ExperimentPanel(Experiment())
    assert list(panel.controls["mode"].options) == [
        ("sync", "sync"), ("async", "async"), ("SSP", "ssp"), ("all-reduce", "allreduce"),
        ("local SGD", "local-sgd")]
    assert [label for label, _ in panel.controls["mode"].options] == [
        m.label for m in MODES.values()]


def test_panel_shows_exactly_the_registered_settings() -> None:
    from ddlkit.widgets import ExperimentPanel
    from ddlkit.widgets.controls import DROPPED

    assert set(DROPPED) <= MODE_SETTINGS

    panel = ExperimentPanel(Experiment(workers=4, steps=20))
    for name, mode in MODES.items():
        panel.set(mode=name)
        shown = {s for s in MODE_SETTINGS if panel.controls[s].layout.display != "none"}
        assert shown == mode.settings, name
        panel.experiment()  # what is hidden is dropped, so every mode reads back valid
