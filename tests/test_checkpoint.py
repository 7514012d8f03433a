"""Checkpoint and resume: a server crash, then the same final parameters as without it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ddlkit
from ddlkit.train import checkpoint

BASE = ddlkit.Experiment(mode="sync", workers=3, dataset="digits", steps=24, eval_every=6,
                         optimizer="adam", lr=0.01, sharding="unbalanced", seed=5)


@pytest.mark.parametrize("mode", ["sync", "allreduce"])
def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path: Path, mode: str) -> None:
    exp = BASE.replace(mode=mode)
    uninterrupted = ddlkit.run(exp)
    holder = 0  # the server, or all-reduce's rank 0: it writes the checkpoints
    crashing = exp.replace(checkpoint_every=5, faults=(f"kill:{holder}@13",))
    with pytest.raises(ddlkit.WorkerFailed) as info:
        ddlkit.run(crashing, record_dir=tmp_path / "crashed")
    assert info.value.rank == holder
    saved = checkpoint.load(checkpoint.find(tmp_path / "crashed"))
    assert saved["step"] == 10  # the last checkpoint before the crash at step 13
    assert not list((tmp_path / "crashed" / "checkpoints").glob("*.tmp"))  # nothing half-written
    resumed = ddlkit.run(exp, resume_from=tmp_path / "crashed")
    assert resumed.meta["resumed_from"]["step"] == 10
    assert resumed.history[0]["step"] == 10 and resumed.history[-1]["step"] == 24
    assert np.array_equal(resumed.final_params, uninterrupted.final_params)


def test_resume_refuses_a_different_experiment(tmp_path: Path) -> None:
    ddlkit.run(BASE.replace(steps=10, checkpoint_every=5), record_dir=tmp_path)
    with pytest.raises(ddlkit.ConfigError, match="lr"):
        ddlkit.run(BASE.replace(lr=0.5), resume_from=tmp_path)
    with pytest.raises(ddlkit.ConfigError, match="steps"):
        ddlkit.run(BASE.replace(steps=10), resume_from=tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ddlkit.run(BASE, resume_from=tmp_path / "nowhere")


def test_checkpoints_need_a_record_folder(no_process_started: None) -> None:
    with pytest.raises(ddlkit.ConfigError, match="checkpoint_every"):
        ddlkit.run(BASE.replace(checkpoint_every=5))
