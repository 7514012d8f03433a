"""What this machine is, and what to do on it when something fails.

:func:`detect` gathers the platform's facts (operating system, architecture, Python, WSL,
Colab or JupyterHub) cheaply: from :mod:`platform`, environment variables and, on Linux,
``/proc/version``. Every piece of advice is a pure function of those facts, so that the
advice for Windows and macOS is tested on Linux.
"""
from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ddlkit.runtime.processes import START_METHOD_ENV, default_start_method

#: where ddlkit's source lives (a placeholder until the public repository exists)
REPO_URL = "https://github.com/ddlkit/ddlkit"
#: installs ddlkit with pip: it is not on a package index yet
PIP_INSTALL_DDLKIT = f'pip install "ddlkit @ git+{REPO_URL}"'
#: installs the CPU build of torch (never the multi-GB CUDA one)
PIP_INSTALL_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cpu"
#: where Linux (and WSL) tell their kernel's name; a test points it elsewhere
PROC_VERSION = Path("/proc/version")

#: environment variables a hosted notebook service sets in its kernels
HOST_MARKERS = (("COLAB_RELEASE_TAG", "Colab"), ("JUPYTERHUB_API_URL", "JupyterHub"))
#: the friendly name of each ``sys.platform``
OS_NAMES = {"linux": "Linux", "darwin": "macOS", "win32": "Windows"}


@dataclass(frozen=True)
class Platform:
    """The facts about this machine that decide how workers start and what advice fits."""

    system: str  # sys.platform: linux, darwin, win32
    os_version: str  # a kernel release, a macOS version, a Windows build
    machine: str  # x86_64, arm64, AMD64
    python: str  # 3.11.9
    wsl: int | None = None  # 1 or 2 under Windows' Subsystem for Linux
    host: str = ""  # Colab, JupyterHub, or "" for anything else
    cores: int = 1

    @property
    def os_name(self) -> str:
        return OS_NAMES.get(self.system, self.system)

    def describe(self) -> str:
        """One line: ``Linux 6.1.0 (x86_64), Python 3.11.9, 2 cores; WSL2``."""
        where = [f"WSL{self.wsl}"] if self.wsl else []
        where += [self.host] if self.host else []
        cores = f"{self.cores} core{'s' if self.cores != 1 else ''}"
        text = f"{self.os_name} {self.os_version} ({self.machine}), Python {self.python}, {cores}"
        return text + (f"; {', '.join(where)}" if where else "")


def host_of(environ: Mapping[str, str]) -> str:
    """``Colab`` or ``JupyterHub`` when their kernels' environment variables are set."""
    return next((name for var, name in HOST_MARKERS if environ.get(var)), "")


def wsl_of(proc_version: str | None) -> int | None:
    """WSL's version from ``/proc/version``'s text (None: not WSL, or no such file).

    WSL2 kernels say ``microsoft-standard`` (``…-microsoft-standard-WSL2``); WSL1 says
    ``Microsoft``."""
    text = (proc_version or "").lower()
    if "microsoft" not in text:
        return None
    return 2 if "wsl2" in text or "microsoft-standard" in text else 1


def detect(environ: Mapping[str, str] = os.environ, cores: int | None = None) -> Platform:
    """This machine's facts; reads ``/proc/version`` only where it exists."""
    system = sys.platform
    if system == "darwin":
        version = platform.mac_ver()[0] or platform.release()
    elif system == "win32":
        version = f"{platform.release()} (build {platform.version()})"
    else:
        version = platform.release()
    proc_version = None
    if PROC_VERSION.is_file():
        try:
            proc_version = PROC_VERSION.read_text(errors="replace")
        except OSError:
            pass
    return Platform(system=system, os_version=version, machine=platform.machine() or "?",
                    python=platform.python_version(), wsl=wsl_of(proc_version),
                    host=host_of(environ), cores=cores or os.cpu_count() or 1)


# -- advice: pure functions of the facts -------------------------------------------------
def pip_command(facts: Platform) -> str:
    """How to call the course's pip here: ``%pip`` in a hosted notebook, else the venv's."""
    if facts.host:
        return "%pip"
    return r".venv\Scripts\pip" if facts.system == "win32" else ".venv/bin/pip"


def wsl_steps() -> str:
    """Setting up the course in WSL2, command by command."""
    return ("in PowerShell as administrator `wsl --install -d Ubuntu`, restart Windows, open "
            "Ubuntu from the Start menu, then `sudo apt update && sudo apt install -y git make "
            f"python3-venv`, `git clone {REPO_URL}`, `cd ddlkit` and `make lab`")


def elsewhere(facts: Platform) -> str:
    """What to use instead of a platform that cannot run gloo."""
    colab = f"or Colab (`%{PIP_INSTALL_DDLKIT}`)"
    if facts.system == "win32":
        return f"use WSL2: {wsl_steps()}; or a Linux or macOS machine, {colab}"
    return f"use a Linux or macOS machine with the official torch wheels, {colab}"


def torch_hint(facts: Platform) -> str:
    """What to do when torch is missing or outside ddlkit's range."""
    pip = pip_command(facts)
    return f"install the CPU build of torch: {PIP_INSTALL_TORCH.replace('pip', pip, 1)}" + (
        "; then restart the session (Runtime → Restart session)" if facts.host == "Colab"
        else " (see the README)")


def gloo_hint(facts: Platform) -> str:
    """What to do when this torch has no torch.distributed or no gloo backend."""
    if facts.system == "win32" and not facts.wsl:
        return f"this torch for Windows cannot run gloo here; {elsewhere(facts)}"
    return (f"this torch has no gloo backend: {torch_hint(facts)}; if it still has none, "
            f"{elsewhere(facts)}")


def error_hint(error: str, facts: Platform) -> str | None:
    """Advice for an error that says this platform cannot run gloo (None: not such an error).

    Windows builds of torch without libuv fail in TCPStore ("use_libuv was requested but
    PyTorch was built without libuv support", pytorch#139990)."""
    text = error.lower()
    if "libuv" in text:
        return (f"this torch's TCPStore has no libuv (pytorch#139990), so gloo cannot start "
                f"here; {elsewhere(facts)}")
    if "gloo" in text and any(p in text for p in ("built in", "not built", "not available")):
        return gloo_hint(facts)  # "Distributed package doesn't have Gloo built in"
    return None


def start_method_reason(method: str, env_value: str, system: str) -> str:
    """Why ``method`` starts the workers here: the platform's default, or the value
    ``env_value`` of ``$DDLKIT_START_METHOD``."""
    env_name = START_METHOD_ENV
    if env_value.strip():
        return (f"{method}: set by {env_name}={env_value.strip()} (the default on "
                f"{OS_NAMES.get(system, system)} is {default_start_method(system)})")
    why = {"linux": "a preloaded server forks each worker in milliseconds",
           "darwin": "forking after Apple's system frameworks load is unsafe",
           "win32": "Windows has no forkserver"}.get(system, "the safe choice elsewhere")
    cost = "" if method == "forkserver" else ", each worker imports torch itself (~1 s)"
    return (f"{method}: the default on {OS_NAMES.get(system, system)}: {why}{cost} "
            f"({env_name} overrides it)")


def start_method_hint(system: str) -> str:
    """What to do when ``$DDLKIT_START_METHOD`` holds a value the platform cannot use."""
    env_name = START_METHOD_ENV
    unset = (f"PowerShell: `Remove-Item Env:{env_name}`" if system == "win32"
             else f"`unset {env_name}`")
    return (f"set {env_name} to a value allowed above, or remove it where it is set "
            f"({unset}) to get this platform's default; then restart Jupyter or the kernel")
