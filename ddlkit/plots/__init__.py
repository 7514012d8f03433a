"""Plots of runs: every function takes RunResults and returns a matplotlib ``Figure``.

Figures are built with ``matplotlib.figure.Figure`` and never registered with pyplot,
so a notebook shows each exactly once. Colours are shared by every view: compute
(blue), communication (orange), waiting (purple), evaluation (green). Time axes count
seconds from the first recorded event, so process start-up never shifts a run.
"""
from ddlkit.plots._bounded_delay import bounded_delay
from ddlkit.plots._breakdown import time_breakdown
from ddlkit.plots._communication import communication
from ddlkit.plots._comparison import comparison
from ddlkit.plots._compression import compression
from ddlkit.plots._convergence import convergence, convergence_panel
from ddlkit.plots._cost_prediction import cost_prediction
from ddlkit.plots._display import register_notebook_display
from ddlkit.plots._live import LivePlot
from ddlkit.plots._shards import shards, shards_for
from ddlkit.plots._staleness import staleness
from ddlkit.plots._step_times import step_time_distribution
from ddlkit.plots._style import KIND_COLORS
from ddlkit.plots._timeline import timeline

register_notebook_display()

__all__ = ["KIND_COLORS", "LivePlot", "bounded_delay", "communication", "comparison",
           "compression", "convergence", "convergence_panel", "cost_prediction", "shards",
           "shards_for", "staleness", "step_time_distribution",
           "time_breakdown", "timeline"]
