"""ddlkit: a teaching kit for distributed deep learning on real processes over gloo.

Start with :class:`Experiment` and :func:`run`::

    import ddlkit
    result = ddlkit.run(ddlkit.Experiment(mode="sync", workers=4, dataset="digits"))
    print(result.summary())

Where everything lives, and where new things go: ``ddlkit/ARCHITECTURE.md``.
"""
from ddlkit import _moved
from ddlkit.config import Experiment
from ddlkit.errors import (
    CheckpointError,
    ConfigError,
    RecordError,
    RunTimeout,
    WorkerFailed,
    WorkerUnresponsive,
)
from ddlkit.modes import MODES
from ddlkit.runtime import run
from ddlkit.runtime.result import RunResult, load_result

_moved.install()

__version__ = "0.1.0"
__all__ = ["Experiment", "ConfigError", "WorkerFailed", "WorkerUnresponsive", "RunTimeout",
           "RecordError", "CheckpointError", "MODES", "RunResult", "load_result", "run",
           "__version__"]
