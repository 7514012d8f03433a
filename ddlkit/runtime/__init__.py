"""The runtime: starting ranks as real processes, watching them, collecting what they report.

:func:`run` runs an :class:`~ddlkit.config.Experiment`; :func:`run_ranks` runs any
importable rank job (checks, exercises, benchmarks). :mod:`.processes` picks the start
method, :mod:`.pool` keeps warm workers, :mod:`.worker` is every rank's entry point,
:mod:`.collector` turns what ranks report into a :class:`~.result.RunResult`, and
:mod:`.torchrun` runs one rank under PyTorch's own launcher.
"""
from ddlkit.runtime.rendezvous import loopback_store
from ddlkit.runtime.session import run, run_ranks

__all__ = ["loopback_store", "run", "run_ranks"]
