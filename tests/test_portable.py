"""The worker runtime's platform paths: start method, parent channel, rendezvous.

The last tests ask real workers how they were made, so under ``make test-portable`` they
prove the condition is in effect (no pidfd; spawn) rather than assume it.
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import warnings

import pytest
import torch.distributed as dist

import ddlkit
from ddlkit.data import load_dataset
from ddlkit.errors import OversubscribedWarning
from ddlkit.runtime import lifeline, processes, rendezvous, run_ranks
from ddlkit.tools.checks import process_facts


# -- the start method ---------------------------------------------------------------------
def test_default_start_method_per_platform() -> None:
    assert processes.default_start_method("linux") == "forkserver"
    assert processes.default_start_method("darwin") == "spawn"
    assert processes.default_start_method("win32") == "spawn"


@pytest.mark.parametrize("value", ["fork", "Spawn", "threads"])
def test_unknown_start_method_is_a_clear_error_before_any_process(
        monkeypatch: pytest.MonkeyPatch, no_process_started: None, value: str) -> None:
    monkeypatch.setenv(processes.START_METHOD_ENV, value)
    with pytest.raises(ddlkit.ConfigError) as info:
        ddlkit.run(ddlkit.Experiment(workers=2, dataset="iris", steps=2))
    message = str(info.value)
    assert processes.START_METHOD_ENV in message and repr(value) in message
    assert "forkserver, spawn" in message


@pytest.mark.parametrize("value", ["forkserver", "spawn", ""])
def test_start_method_follows_the_environment(monkeypatch: pytest.MonkeyPatch,
                                              value: str) -> None:
    monkeypatch.setenv(processes.START_METHOD_ENV, value)
    assert processes.start_method() == (value or processes.default_start_method())


# -- the parent channel -------------------------------------------------------------------
def _watch_in_thread(line: object, pidfd: int | None = None) -> threading.Thread:
    t = threading.Thread(target=lifeline.wait_until_gone, args=(line, pidfd), daemon=True)
    t.start()
    return t


def test_lifeline_ends_when_the_parent_end_closes() -> None:
    import multiprocessing

    parent_end, worker_end = lifeline.pair(multiprocessing.get_context("spawn"))
    watcher = _watch_in_thread(worker_end)
    parent_end.send("a heartbeat is not an ending")
    watcher.join(0.3)
    assert watcher.is_alive()
    parent_end.close()  # what the OS does when the parent dies
    watcher.join(5.0)
    assert not watcher.is_alive()
    worker_end.close()


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="this system has no pidfd")
def test_pidfd_ends_the_wait_when_the_process_exits() -> None:
    import multiprocessing

    parent_end, worker_end = lifeline.pair(multiprocessing.get_context("spawn"))
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        pidfd = lifeline.open_pidfd(child.pid)
        assert pidfd is not None
        watcher = _watch_in_thread(worker_end, pidfd)
        watcher.join(0.3)
        assert watcher.is_alive()
        child.stdin.close()  # the child exits; the lifeline stays open
        watcher.join(5.0)
        assert not watcher.is_alive()
        os.close(pidfd)
    finally:
        child.wait(10)
        parent_end.close()
        worker_end.close()


def test_without_pidfd_open_the_pipe_alone_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "pidfd_open", raising=False)
    assert lifeline.open_pidfd(os.getpid()) is None


# -- rendezvous and gloo, per platform ------------------------------------------------------
def test_loopback_interface_per_platform() -> None:
    assert rendezvous.loopback_ifname("linux") == "lo"
    assert rendezvous.loopback_ifname("darwin") == "lo0"
    assert rendezvous.loopback_ifname("win32") is None


def test_store_without_a_listening_socket_of_ours_still_serves() -> None:
    """The Windows path (no master_listen_fd, no libuv), run here."""
    store = rendezvous.loopback_store(platform="win32")
    client = rendezvous.client_store(rendezvous.HOST, store.port, "run", platform="win32")
    client.set("k", "v")
    assert dist.PrefixStore("run", store).get("k") == b"v"
    del client, store


def test_more_processes_than_cores_warns_once_in_one_line() -> None:
    with pytest.warns(OversubscribedWarning) as caught:
        processes.warn_if_oversubscribed(5, cores=2)
    (w,) = caught
    text = str(w.message)
    assert "\n" not in text and "5 processes share 2 CPU cores" in text
    assert "bytes, messages and losses are unaffected" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        processes.warn_if_oversubscribed(2, cores=2)  # no warning


# -- what real workers say about themselves ---------------------------------------------------
@pytest.mark.portable
def test_workers_are_made_as_the_environment_says() -> None:
    load_dataset("digits")  # fills the on-disk cache if it was empty
    facts = run_ranks(functools.partial(process_facts, dataset="digits"), 2, timeout_s=120)
    spawned = processes.start_method() == "spawn"
    no_pidfd = os.environ.get("DDLKIT_TEST_NO_PIDFD") == "1"
    for f in facts:
        assert f["pidfd"] is (hasattr(os, "pidfd_open") and not no_pidfd)
        assert f["preloaded"] is (not spawned)
        assert f["threads"] == 1
        if spawned:  # a fresh interpreter: the data came from the cache, not scikit-learn
            assert not f["sklearn_before"] and not f["sklearn_after"]


def _nested_job() -> object:
    def job(comm: object, reporter: object) -> int:
        return 0
    return job


@pytest.mark.parametrize("job", [lambda comm, reporter: 0, _nested_job(),
                                 functools.partial(_nested_job())])
def test_a_job_workers_cannot_import_is_refused_before_any_process(
        no_process_started: None, job: object) -> None:
    with pytest.raises(TypeError, match="cannot import it.*top level of a .py module"):
        run_ranks(job, 2)  # type: ignore[arg-type]
