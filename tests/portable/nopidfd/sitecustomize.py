"""Make this interpreter look like macOS or Windows to ddlkit: no ``os.pidfd_open``.

``make test-portable`` puts this folder on PYTHONPATH. Python imports ``sitecustomize`` at
start-up, and worker processes (forkserver and spawn alike) inherit PYTHONPATH, so the
removal reaches every process of a run.
"""
import os

if hasattr(os, "pidfd_open"):
    del os.pidfd_open
os.environ["DDLKIT_TEST_NO_PIDFD"] = "1"  # lets a test check the removal is in effect
