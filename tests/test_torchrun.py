"""The same experiment through torchrun: two agents as two "nodes" on 127.0.0.1.

torchrun (PyTorch's own launcher) starts the ranks; ddlkit.launch runs the same strategy
code and writes the same record. Sync training is deterministic, so the final parameters
must equal those of ddlkit.run on one machine, bit for bit.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

import ddlkit

FLAGS = ["--mode", "sync", "--workers", "3", "--dataset", "iris", "--steps", "20",
         "--sharding", "unbalanced", "--quiet"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_torchrun_agents_match_ddlkit_run(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "record"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=2",
           "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=ddlkit-test",
           "--max-restarts=0", "-m", "ddlkit.launch", *FLAGS, "--out", str(out)]
    scratch = tmp_path / "tmp"  # torchrun leaves its torchelastic_* log folders in TMPDIR
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch))
    agents = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True, env=env) for _ in range(2)]
    try:
        logs = [a.communicate(timeout=240)[0] for a in agents]
    finally:
        for a in agents:  # only on a hang: end the agent and what it started, by group
            if a.poll() is None:
                os.killpg(a.pid, signal.SIGKILL)
                a.wait()
    assert [a.returncode for a in agents] == [0, 0], "\n".join(logs)
    result = ddlkit.load_result(out)
    assert result.status == "ok" and result.meta["launcher"] == "torchrun"
    assert [r.role for r in result.ranks] == ["server", "worker", "worker", "worker"]
    assert result.ranks[0].messages_received == 20 * 3
    local = ddlkit.run(result.config)
    assert np.array_equal(result.final_params, local.final_params)
    assert [h["step"] for h in result.history] == [h["step"] for h in local.history]


def test_launch_refuses_the_wrong_number_of_processes(tmp_path: Path) -> None:
    env = dict(os.environ, RANK="0", WORLD_SIZE="3", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(free_port()))
    proc = subprocess.run([sys.executable, "-m", "ddlkit.launch", "--mode", "sync",
                           "--workers", "3", "--out", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "torchrun started 3 processes" in proc.stderr and "needs 4" in proc.stderr
