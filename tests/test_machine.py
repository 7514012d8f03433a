"""The platform's facts and the advice fitted to them, for Windows, macOS and Linux, tested
here on Linux: every piece of advice is a pure function of the facts."""
from __future__ import annotations

from pathlib import Path

import pytest

from ddlkit.runtime.processes import START_METHOD_ENV
from ddlkit.tools import machine
from ddlkit.tools.machine import Platform

WINDOWS = Platform("win32", "11 (build 10.0.22631)", "AMD64", "3.11.9", cores=8)
MACOS = Platform("darwin", "14.5", "arm64", "3.11.9", cores=8)
LINUX = Platform("linux", "6.1.0-18-amd64", "x86_64", "3.11.9", cores=4)
WSL = Platform("linux", "5.15.153.1-microsoft-standard-WSL2", "x86_64", "3.11.9", wsl=2)
COLAB = Platform("linux", "6.1.85+", "x86_64", "3.11.13", host="Colab", cores=2)
LIBUV_ERROR = ("use_libuv was requested but PyTorch was built without libuv support, run with "
               "USE_LIBUV=0 to disable it.")


# -- the facts ----------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "version"), [
    ("Linux version 5.15.153.1-microsoft-standard-WSL2 (root@941d701f84f1) (gcc 11.2.0)", 2),
    ("Linux version 4.19.104-microsoft-standard (oe-user@oe-host)", 2),
    ("Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com) (gcc 5.4.0)", 1),
    ("Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)", None),
    (None, None),
])
def test_wsl_is_read_from_proc_version(text: str | None, version: int | None) -> None:
    assert machine.wsl_of(text) == version


def test_hosts_are_told_by_their_environment_variables() -> None:
    assert machine.host_of({"COLAB_RELEASE_TAG": "release-colab_20250101"}) == "Colab"
    assert machine.host_of({"JUPYTERHUB_API_URL": "http://hub:8081/hub/api"}) == "JupyterHub"
    assert machine.host_of({"HOME": "/home/me", "COLAB_RELEASE_TAG": ""}) == ""


def test_detect_reads_proc_version_only_where_it_exists(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "version"
    fake.write_text("Linux version 5.15.153.1-microsoft-standard-WSL2 (gcc)")
    monkeypatch.setattr(machine, "PROC_VERSION", fake)
    facts = machine.detect({"JUPYTERHUB_API_URL": "http://hub/api"}, cores=3)
    assert (facts.wsl, facts.host, facts.cores) == (2, "JupyterHub", 3)
    assert facts.python.startswith("3.") and facts.machine
    monkeypatch.setattr(machine, "PROC_VERSION", tmp_path / "missing")  # macOS, Windows
    assert machine.detect({}).wsl is None


def test_the_platform_row_names_system_version_machine_python_and_host() -> None:
    assert WINDOWS.describe() == (
        "Windows 11 (build 10.0.22631) (AMD64), Python 3.11.9, 8 cores")
    assert MACOS.describe() == "macOS 14.5 (arm64), Python 3.11.9, 8 cores"
    assert WSL.describe().endswith("1 core; WSL2")
    assert COLAB.describe() == "Linux 6.1.85+ (x86_64), Python 3.11.13, 2 cores; Colab"


# -- the advice ---------------------------------------------------------------------------
def test_where_gloo_cannot_run_on_windows_the_hint_is_wsl2_step_by_step() -> None:
    hint = machine.gloo_hint(WINDOWS)
    for step in ("wsl --install -d Ubuntu", "sudo apt install -y git make python3-venv",
                 f"git clone {machine.REPO_URL}", "make lab"):
        assert step in hint
    assert "Linux or macOS machine" in hint and "Colab" in hint
    assert machine.PIP_INSTALL_DDLKIT in hint


@pytest.mark.parametrize("facts", [MACOS, LINUX, WSL])
def test_where_gloo_is_missing_elsewhere_the_hint_is_the_official_cpu_wheel(
        facts: Platform) -> None:
    hint = machine.gloo_hint(facts)
    assert "--index-url https://download.pytorch.org/whl/cpu" in hint
    assert "wsl --install" not in hint
    assert "Colab" in hint


@pytest.mark.parametrize(("facts", "wsl"), [(WINDOWS, True), (MACOS, False), (LINUX, False)])
def test_a_torch_without_libuv_gets_the_platforms_way_out(facts: Platform, wsl: bool) -> None:
    hint = machine.error_hint(f"RuntimeError: {LIBUV_ERROR}", facts)
    assert hint is not None and "pytorch#139990" in hint
    assert ("wsl --install -d Ubuntu" in hint) is wsl
    assert "Colab" in hint


def test_errors_that_say_nothing_about_the_platform_get_no_advice() -> None:
    assert machine.error_hint("rank 1 raised ValueError: bad shape", WINDOWS) is None
    gloo = machine.error_hint("RuntimeError: Distributed package doesn't have Gloo built in",
                              WINDOWS)
    assert gloo is not None and "wsl --install" in gloo


@pytest.mark.parametrize(("facts", "pip"), [
    (WINDOWS, r".venv\Scripts\pip install torch"), (MACOS, ".venv/bin/pip install torch"),
    (LINUX, ".venv/bin/pip install torch"), (COLAB, "%pip install torch")])
def test_the_torch_hint_uses_the_pip_of_the_place(facts: Platform, pip: str) -> None:
    hint = machine.torch_hint(facts)
    assert pip in hint and "whl/cpu" in hint
    assert ("Restart session" in hint) is (facts.host == "Colab")


@pytest.mark.parametrize(("system", "method", "why"), [
    ("linux", "forkserver", "the default on Linux: a preloaded server forks each worker"),
    ("darwin", "spawn", "the default on macOS: forking after Apple's system frameworks"),
    ("win32", "spawn", "the default on Windows: Windows has no forkserver")])
def test_the_start_method_row_says_why(system: str, method: str, why: str) -> None:
    reason = machine.start_method_reason(method, "", system)
    assert reason.startswith(f"{method}: {why}")
    assert START_METHOD_ENV in reason
    assert ("imports torch itself" in reason) is (method == "spawn")


def test_a_start_method_from_the_environment_says_so() -> None:
    assert machine.start_method_reason("spawn", " spawn ", "linux") == (
        f"spawn: set by {START_METHOD_ENV}=spawn (the default on Linux is forkserver)")
    assert machine.start_method_reason("spawn", "spawn", "darwin").endswith(
        "(the default on macOS is spawn)")


def test_the_start_method_hint_unsets_the_variable_in_the_platforms_shell() -> None:
    assert f"Remove-Item Env:{START_METHOD_ENV}" in machine.start_method_hint("win32")
    for system in ("linux", "darwin"):
        hint = machine.start_method_hint(system)
        assert f"`unset {START_METHOD_ENV}`" in hint and "restart" in hint
