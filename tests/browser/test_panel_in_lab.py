"""The experiment panel in a real JupyterLab, driven by a real Chromium.

Open a notebook that shows the panel, run all cells, switch the mode toggle and move the
worker slider, click Run, and wait until the plot has updated and the bar has finished;
then switch to SSP, whose staleness control must appear, and run again.
A screenshot is saved under test-artifacts/ and its path printed.
"""
from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import pytest

from tests.browser.lab import CHROMIUM, CHROMIUM_ARGS, Lab, clean, missing_reason, write_notebook

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

PANEL_CELLS = [
    "import ddlkit\nfrom ddlkit.widgets import ExperimentPanel",
    "panel = ExperimentPanel(ddlkit.Experiment(workers=3, dataset='digits', steps=60,"
    " eval_every=10))\npanel",
]


@pytest.fixture
def lab():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="ddlkit-lab-"))
    server = Lab(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        clean(root)


def test_panel_runs_in_jupyterlab(lab: Lab) -> None:
    from playwright.sync_api import sync_playwright

    write_notebook(lab.root / "panel.ipynb", PANEL_CELLS)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "panel-in-jupyterlab.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = None
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            drive(page, lab, shot)
        except Exception:
            if page is not None:
                page.screenshot(path=str(ARTIFACTS / "panel-failure.png"), full_page=True)
                print(f"failure screenshot: {ARTIFACTS / 'panel-failure.png'}")
            raise
        finally:
            browser.close()
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def accept_kernel_dialog(page) -> None:
    """JupyterLab may ask which kernel to start; take the proposed one."""
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    try:
        dialog.wait_for(state="visible", timeout=8_000)
    except Exception:  # noqa: BLE001 - no dialog this time
        return
    dialog.click()


def drive(page, lab: Lab, shot: Path) -> None:
    """Run the notebook, change two controls, click Run and check what renders."""
    from playwright.sync_api import expect

    page.goto(lab.url("panel.ipynb"))
    page.wait_for_selector(".jp-Notebook", state="attached", timeout=60_000)
    accept_kernel_dialog(page)
    # Wait for the kernel to be idle before running anything.
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           state="attached", timeout=60_000)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()

    mode = page.locator(".widget-toggle-buttons").first
    mode.wait_for(state="attached", timeout=30_000)
    mode.get_by_role("button", name="async", exact=True).click()
    slider = page.locator(".widget-hslider").filter(has_text="workers")
    slider.locator(".noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")  # 3 → 4 workers
    expect(slider.locator(".widget-readout").first).to_have_text("4")

    images = page.locator(".jp-OutputArea-output img")
    page.locator("button.jupyter-button", has_text=re.compile(r"^\s*Run\s*$")).click()
    clicked = time.monotonic()
    expect(images.first).to_be_attached(timeout=90_000)
    first_plot = time.monotonic() - clicked
    status = page.locator(".widget-html-content", has_text="async · 4 workers")
    expect(status.filter(has_text="accuracy")).to_be_visible(timeout=90_000)
    # The bar finished and the plots are on show.
    expect(page.locator(".widget-html-content", has_text="60/60").first
           ).to_be_attached(timeout=10_000)
    # live plot replaced by the final convergence panel, plus the views below it
    assert page.locator(".jp-OutputArea-output img").count() in (3, 4)
    finished = time.monotonic() - clicked
    print(f"\n4-worker run from click (cold kernel): first plotted point {first_plot:.2f} s, "
          f"finished {finished:.2f} s")
    summary = status.filter(has_text="accuracy").first.inner_text()
    assert "ok" in summary and "max staleness" in summary
    page.screenshot(path=str(shot), full_page=True)
    # A second click: the kernel's warm worker pool answers at once.
    page.locator("button.jupyter-button", has_text=re.compile(r"^\s*Run\s*$")).click()
    clicked = time.monotonic()
    expect(page.locator(".widget-html-content", has_text="Running")).to_be_attached(
        timeout=10_000)
    expect(status.filter(has_text="accuracy")).to_be_visible(timeout=90_000)
    print(f"4-worker run from click (warm pool): finished {time.monotonic() - clicked:.2f} s")
    # A mode beyond sync and async: its own control appears, and a run in it completes.
    bound = page.get_by_text("staleness bound s", exact=True)
    expect(bound).to_be_hidden()
    mode.get_by_role("button", name="SSP", exact=True).click()
    expect(bound).to_be_visible(timeout=10_000)
    page.locator("button.jupyter-button", has_text=re.compile(r"^\s*Run\s*$")).click()
    ssp = page.locator(".widget-html-content", has_text="ssp · s=2 · 4 workers")
    expect(ssp.filter(has_text="accuracy")).to_be_visible(timeout=90_000)
    assert "ok" in ssp.filter(has_text="accuracy").first.inner_text()

