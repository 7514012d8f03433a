"""``ExperimentPanel``: change a control, press Run, watch real processes train.

The Run button starts the run on a background thread, so the kernel stays free to
handle Stop; ``panel.run()`` does the same run in the foreground, for notebooks under
nbval and for tests. Errors show as one readable line, with details folded away.
"""
from __future__ import annotations

import base64
import html
import io
import threading
import time
from typing import Any, Callable, Iterable

import ipywidgets as w
from IPython.display import display
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from ddlkit import plots
from ddlkit.config import Experiment
from ddlkit.errors import ConfigError, RunTimeout, WorkerFailed
from ddlkit.runtime import run as run_experiment
from ddlkit.runtime.live import Progress
from ddlkit.runtime.pool import WorkerPool, shared_pool
from ddlkit.runtime.result import RunResult
from ddlkit.widgets.controls import (
    ADVANCED,
    build_controls,
    experiment_from,
    refresh_visibility,
)

Runner = Callable[..., RunResult]


class ExperimentPanel:
    """An ipywidgets panel over :class:`~ddlkit.config.Experiment` and :func:`ddlkit.run`.

    ``lock`` names controls a notebook fixes for its lesson (shown disabled); ``show``
    limits which controls appear at all. Runs use the kernel's warm worker pool
    (``pool="shared"``), so a run answers quickly; pass ``pool=None`` for fresh
    processes. ``results`` holds every finished run, ``compared`` the runs kept for the
    comparison overlay.
    """

    def __init__(self, experiment: Experiment | None = None, *, lock: Iterable[str] = (),
                 show: Iterable[str] | None = None, runner: Runner = run_experiment,
                 pool: WorkerPool | str | None = "shared") -> None:
        self.base = experiment or Experiment(workers=4, steps=100)
        self.runner = runner
        #: warm workers for the runs: the kernel's shared pool by default, None for fresh
        self.pool = pool
        self.controls = build_controls(self.base)
        self.locked = set(lock)
        unknown = (self.locked | set(show or ())) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown control(s) {sorted(unknown)}; "
                             f"known: {sorted(self.controls)}")
        self.shown = list(show) if show is not None else list(self.controls)
        self.results: list[RunResult] = []
        self.compared: list[RunResult] = []
        self.error: str | None = None
        #: the figures on show, by view name (for notebooks and tests to inspect)
        self.figures: dict[str, Figure] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: Any = None

        self.run_button = w.Button(description="Run", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop",
                                    disabled=True)
        self.keep_button = w.Button(description="Keep for comparison", icon="thumb-tack",
                                    disabled=True)
        self.clear_button = w.Button(description="Clear comparison", icon="eraser",
                                     disabled=True)
        self.status = w.HTML(value="Ready.")
        self.details = w.Output()
        self.details_box = w.Accordion(children=[self.details], selected_index=None)
        self.details_box.set_title(0, "details")
        self.details_box.layout.display = "none"
        self.progress_box = w.Box()
        self.live = w.Output()
        self.views = w.Output()
        self.comparison = w.Output()

        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.keep_button.on_click(lambda _: self.keep())
        self.clear_button.on_click(lambda _: self.clear())
        for c in self.controls.values():
            c.observe(lambda _: refresh_visibility(self.controls), names="value")
        refresh_visibility(self.controls)
        self._set_running(False)

        shown: list[w.Widget] = [self.controls[k] for k in self.shown if k not in ADVANCED]
        advanced = [self.controls[k] for k in self.shown if k in ADVANCED]
        if advanced:
            shown += [w.HTML("<b>Beyond sync and async</b>: staleness, local steps, "
                             "compression, stragglers, network, learning-rate scaling "
                             "(each appears where it applies)"), *advanced]
        buttons = w.HBox([self.run_button, self.stop_button, self.keep_button,
                          self.clear_button])
        self.widget = w.VBox([w.VBox(shown), buttons, self.progress_box, self.status,
                              self.details_box, self.live, self.views, self.comparison])

    # -- the public, programmatic interface ---------------------------------------------
    def experiment(self) -> Experiment:
        """The Experiment the controls describe now (raises ConfigError if invalid)."""
        return experiment_from(self.controls, self.base)

    def set(self, **values: Any) -> ExperimentPanel:
        """Set controls by field name, e.g. ``panel.set(mode="async", workers=4)``."""
        for name, value in values.items():
            if name not in self.controls:
                raise ValueError(f"unknown control {name!r}; known: {sorted(self.controls)}")
            self.controls[name].value = value
        return self

    def run(self) -> RunResult | None:
        """Run the current settings in the foreground; returns the result (None on error)."""
        self._stop.clear()
        return self._run()

    def start(self) -> None:
        """Start a run in the background (what the Run button does)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ddlkit-panel-run", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the current run to stop; it ends every process and keeps what it has."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background run to finish."""
        if self._thread is not None:
            self._thread.join(timeout)

    def keep(self) -> None:
        """Add the last run to the comparison overlay."""
        if self.results and (not self.compared or self.compared[-1] is not self.results[-1]):
            self.compared.append(self.results[-1])
            self._draw_comparison()

    def clear(self) -> None:
        """Empty the comparison overlay."""
        self.compared.clear()
        self._draw_comparison()

    def _ipython_display_(self) -> None:
        display(self.widget)

    # -- one run -------------------------------------------------------------------------
    def _run(self) -> RunResult | None:
        self.error = None
        self.details.outputs = ()
        self.details_box.layout.display = "none"
        try:
            exp = self.experiment()
        except ConfigError as err:
            self._fail(f"Not started: {err}", None)
            return None
        self._set_running(True)
        live = plots.LivePlot(exp)
        self._bar = tqdm(total=exp.steps, desc=exp.label(), mininterval=0.1,
                         **({"display": False} if _notebook_bar() else {}))
        if hasattr(self._bar, "container"):
            self.progress_box.children = [self._bar.container]
        self.status.value = f"Running <b>{html.escape(exp.label())}</b> …"

        def on_event(event: object) -> None:  # cheap: it runs in the run's monitor loop
            live.update(event)
            if isinstance(event, Progress):
                self._bar.n = event.step
                self._bar.refresh()

        finished = threading.Event()

        def draw_live() -> None:
            """Redraw the live plot on its own thread, never more than a third of the time,
            so drawing neither delays the monitor loop nor starves the workers of CPU."""
            pause = 0.3
            while not finished.wait(pause):
                if live.due():
                    t = time.perf_counter()
                    self._show(self.live, live.figure(), "live")
                    pause = max(0.3, 2 * (time.perf_counter() - t))

        drawer = threading.Thread(target=draw_live, name="ddlkit-panel-draw", daemon=True)
        drawer.start()
        result: RunResult | None = None
        try:
            pool = shared_pool() if self.pool == "shared" else self.pool
            result = self.runner(exp, on_event=on_event, stop=self._stop, pool=pool)
        except (WorkerFailed, RunTimeout) as err:
            self._fail(f"Run failed: {err}", getattr(err, "traceback", None) or repr(err))
            result = err.result
        except Exception as err:  # noqa: BLE001 - shown in the panel, not as a traceback wall
            self._fail(f"Run failed: {type(err).__name__}: {err}", repr(err))
        finally:
            finished.set()
            drawer.join()
            self._bar.close()
            self._set_running(False)
        if result is not None:
            self.results.append(result)
            self._show(self.live, plots.convergence_panel(result), "convergence")
            self._draw_views(result)
            if self.error is None:
                self.status.value = _summary_html(result)
        self.keep_button.disabled = not self.results
        return result

    # -- drawing -----------------------------------------------------------------------
    def _draw_views(self, result: RunResult) -> None:
        self.figures["communication"] = plots.communication(result)
        self.figures["timeline"] = plots.timeline(result)
        self.figures.pop("staleness", None)
        if result.staleness:
            self.figures["staleness"] = plots.staleness(result)
        names = ("communication", "timeline", "staleness")
        self.views.outputs = tuple(_png(self.figures[n]) for n in names if n in self.figures)

    def _draw_comparison(self) -> None:
        self.clear_button.disabled = not self.compared
        self.figures.pop("comparison", None)
        self.comparison.outputs = ()
        if self.compared:
            self.figures["comparison"] = plots.comparison(self.compared)
            self.comparison.outputs = (_png(self.figures["comparison"]),)

    def _show(self, out: w.Output, fig: Figure, name: str) -> None:
        self.figures[name] = fig
        out.outputs = (_png(fig),)  # replace in one step: no flicker, safe from a thread

    def _fail(self, line: str, detail: str | None) -> None:
        self.error = line
        self.status.value = f'<span style="color:#b00020">{html.escape(line)}</span>'
        if detail:
            self.details.append_stdout(detail)
            self.details_box.layout.display = None

    def _set_running(self, running: bool) -> None:
        for name, c in self.controls.items():
            c.disabled = running or name in self.locked
        self.run_button.disabled = running
        self.stop_button.disabled = not running
        self.keep_button.disabled = running or not self.results
        self.clear_button.disabled = running or not self.compared


def _summary_html(result: RunResult) -> str:
    f = result.final
    acc = f.get("accuracy")
    parts = [f"<b>{html.escape(result.config.label())}</b>", result.status,
             f"{result.wall_time_s:.2f} s", f"test loss {f.get('test_loss', float('nan')):.4f}"]
    if acc is not None:
        parts.append(f"accuracy {acc:.3f}")
    parts.append(f"{result.total_bytes / 1e6:.2f} MB sent")
    if result.staleness:
        parts.append(f"max staleness {max(result.staleness)}")
    for lost in result.lost:
        parts.append(f"<b>lost rank {lost['rank']}</b> "
                     f"({html.escape(str(lost.get('how', '')))}), carried on")
    return " · ".join(parts)


def _png(fig: Figure) -> dict[str, Any]:
    """A figure as one PNG display output: renders the same in a kernel, in a static page
    and in a test, and can be set on an ``Output`` widget's ``outputs`` from any thread."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": data, "text/plain": f"<{fig.get_suptitle() or 'figure'}>"}}


def _notebook_bar() -> bool:
    """Whether tqdm.auto chose the widget bar (inside a Jupyter kernel)."""
    return tqdm.__module__.startswith("tqdm.notebook") or "notebook" in tqdm.__module__
