"""The experiment panel, driven programmatically (no browser): controls, runs, errors, Stop."""
from __future__ import annotations

import time

import numpy as np
import pytest
from matplotlib.legend import Legend

import ddlkit
from ddlkit.widgets import ExperimentPanel

SMALL = ddlkit.Experiment(workers=2, dataset="iris", model="linear", steps=30, eval_every=5,
                          batch_size=8)


@pytest.mark.portable
def test_controls_drive_the_run() -> None:
    panel = ExperimentPanel(SMALL)
    panel.set(mode="async", workers=3, sharding="dirichlet", dirichlet_alpha=0.3, seed=7)
    result = panel.run()
    assert result is not None and result.status == "ok"
    cfg = result.config
    assert (cfg.mode, cfg.workers, cfg.sharding, cfg.seed) == ("async", 3, "dirichlet", 7)
    assert cfg.dirichlet_alpha == pytest.approx(0.3, rel=0.01)
    assert panel.results == [result]
    assert "async · 3 workers" in panel.status.value and "accuracy" in panel.status.value
    assert panel.run_button.disabled is False and panel.stop_button.disabled is True


def test_figures_hold_the_runs_data() -> None:
    panel = ExperimentPanel(SMALL.replace(worker_delays=(0.0, 0.002)))
    result = panel.run()
    fig = panel.figures["convergence"]
    losses = [row["test_loss"] for row in result.history]
    ydata = [list(line.get_ydata()) for ax in fig.axes for line in ax.get_lines()]
    assert any(np.allclose(y, losses) for y in ydata if len(y) == len(losses))
    assert {"communication", "timeline"} <= set(panel.figures)
    assert len(panel.views.outputs) >= 2  # the pictures were put on show
    assert panel.controls["straggler_s"].value == pytest.approx(0.002)
    assert result.config.worker_delays == (0.0, 0.002)


def test_bad_value_shows_one_line_and_starts_nothing(no_process_started: None) -> None:
    panel = ExperimentPanel(SMALL)
    panel.set(seed=-1)
    assert panel.run() is None
    assert "seed=-1" in panel.status.value and "Not started" in panel.status.value
    assert panel.results == []
    panel.set(seed=0, workers=8, batch_size=64)  # 8 × 64 > iris's 112 training samples
    assert panel.run() is None
    assert "batch_size" in panel.error


def test_stop_ends_the_run_and_leaves_no_process() -> None:
    panel = ExperimentPanel(SMALL.replace(steps=2000, dataset="digits", model="mlp"))
    panel.start()
    assert panel.stop_button.disabled is False or panel.results  # running (or already done)
    time.sleep(1.0)
    panel.stop()
    panel.wait(timeout=20)
    assert panel.results and panel.results[-1].status == "stopped"
    assert panel.controls["mode"].disabled is False  # controls are back
    # the autouse fixture checks that no child process is left


def test_keep_and_clear_manage_the_overlay() -> None:
    panel = ExperimentPanel(SMALL)
    panel.run()
    panel.keep()
    panel.keep()  # the same run is kept once
    panel.set(mode="allreduce")
    panel.run()
    panel.keep()
    assert [r.config.mode for r in panel.compared] == ["sync", "allreduce"]
    legend = [t.get_text() for leg in panel.figures["comparison"].findobj(Legend)
              for t in leg.get_texts()]
    assert any("sync" in t for t in legend) and any("allreduce" in t for t in legend)
    panel.clear()
    assert panel.compared == [] and "comparison" not in panel.figures
    assert panel.clear_button.disabled is True


def test_lock_show_and_relevant_parameters() -> None:
    panel = ExperimentPanel(SMALL, lock=["workers"], show=["mode", "workers", "sharding"])
    assert panel.controls["workers"].disabled is True
    assert panel.controls["mode"].disabled is False
    assert len(panel.widget.children[0].children) == 3
    alpha = panel.controls["dirichlet_alpha"].layout
    panel.set(sharding="iid")
    assert alpha.display == "none"
    panel.set(sharding="dirichlet")
    assert alpha.display is None
    assert panel.controls["size_ratio"].layout.display == "none"
    with pytest.raises(ValueError, match="unknown control"):
        ExperimentPanel(SMALL, lock=["nonsense"])


def test_fault_menu_kills_a_worker_and_the_timeline_shows_it() -> None:
    panel = ExperimentPanel(SMALL.replace(steps=40))
    panel.set(mode="async", workers=3, fault="kill-worker")
    result = panel.run()
    assert result.config.faults == ("kill:3@20",)
    assert [x["rank"] for x in result.lost] == [3]
    assert "lost rank 3" in panel.status.value
    marks = [line for ax in panel.figures["timeline"].axes for line in ax.get_lines()
             if line.get_gid() == "end:3"]
    assert marks, "the timeline marks where the lost worker stopped"
    panel.set(mode="sync", fault="kill-server")
    assert panel.run() is not None  # the partial result of the failed run
    assert "rank 0 (server)" in panel.status.value and "killed by signal 9" in panel.status.value
    assert any(line.get_gid() == "end:0" for ax in panel.figures["timeline"].axes
               for line in ax.get_lines())


def test_beyond_sync_controls_map_to_fields_and_show_where_they_apply() -> None:
    from ddlkit.widgets.controls import NETWORKS

    panel = ExperimentPanel(ddlkit.Experiment(workers=4, steps=20))
    modes = [value for _, value in panel.controls["mode"].options]
    assert modes == ["sync", "async", "ssp", "allreduce", "local-sgd"]
    shown = lambda name: panel.controls[name].layout.display != "none"  # noqa: E731

    panel.set(mode="ssp", staleness_bound=3)
    assert panel.experiment().staleness_bound == 3
    assert shown("staleness_bound") and not shown("local_steps") and not shown("compression")
    panel.set(staleness_bound="∞")
    assert panel.experiment().staleness_bound is None
    assert "s=∞" in panel.experiment().label()

    panel.set(mode="local-sgd", local_steps=8)
    assert panel.experiment().local_steps == 8 and shown("local_steps")
    assert not shown("backup_workers") and not shown("staleness_bound")

    panel.set(mode="sync", compression="topk", compress_ratio=0.01, error_feedback=False,
              backup_workers=1, random_delay_s=0.02, batch_split="speed",
              network=NETWORKS["100 Mbit/s, 1 ms (slow LAN)"], lr_scaling="linear", warmup_steps=5)
    exp = panel.experiment()
    assert (exp.compression, exp.compress_ratio, exp.error_feedback) == ("topk", 0.01, False)
    assert (exp.backup_workers, exp.random_delay_s, exp.batch_split) == (1, 0.02, "speed")
    assert (exp.net_latency_ms, exp.net_bandwidth_mbps) == (1.0, 100.0)
    assert (exp.lr_scaling, exp.warmup_steps) == ("linear", 5)
    assert shown("compress_ratio") and shown("error_feedback") and not shown("quant_bits")
    assert shown("backup_workers") and shown("warmup_steps")
    panel.set(compression="qsgd")
    assert shown("quant_bits") and not shown("compress_ratio")

    panel.set(mode="async")  # settings that do not apply to async are dropped, not refused
    exp = panel.experiment()
    assert exp.compression == "none" and exp.backup_workers == 0
    assert not shown("compression") and not shown("backup_workers")

    panel.set(mode="sync", workers=2, backup_workers=2)
    with pytest.raises(ddlkit.ConfigError, match="backup_workers"):
        panel.experiment()


@pytest.mark.parametrize("bound", [5, 2, 0, 20, 1_000_000, None])
def test_panel_reads_back_the_staleness_bound_it_was_given(bound: int | None) -> None:
    """No snapping to the slider's next stop: s=5 stays 5 (it ran s=6), ∞ stays ∞."""
    exp = ddlkit.Experiment(mode="ssp", workers=4, steps=20, staleness_bound=bound)
    panel = ExperimentPanel(exp)
    assert panel.experiment().staleness_bound == bound
    assert panel.experiment() == exp
    stops = [s for s in panel.controls["staleness_bound"].options if s != "∞"]
    assert stops == sorted(stops) and panel.controls["staleness_bound"].options[-1] == "∞"


def test_qsgd_bits_slider_stays_within_what_the_config_allows() -> None:
    """quant_bits is validated 2…16 (one bit is the sign): the slider cannot offer 1."""
    panel = ExperimentPanel(ddlkit.Experiment(compression="qsgd", quant_bits=2))
    bits = panel.controls["quant_bits"]
    assert (bits.min, bits.max) == (2, 16)
    panel.set(quant_bits=1)
    assert panel.experiment().quant_bits == 2
