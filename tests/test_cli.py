"""Tests of ``python -m ddlkit``: bad arguments exit 2 before any process starts, and a
real run writes a record that loads back."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ddlkit
from ddlkit import Experiment, RunResult, RunTimeout, WorkerFailed
from ddlkit.cli import build_parser, experiment_from_args, flag, main
from ddlkit.runtime.live import EvalPoint, Progress

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Config files for ``--config``, by name."""
    texts = {
        "unknown": json.dumps({"workers": 2, "learning_rate": 0.1}),
        "bad_workers": json.dumps({"workers": 0}),
        "three": json.dumps({"workers": 3, "dataset": "iris"}),
        "broken": "{not json",
        "list": "[1, 2]",
    }
    out = {"missing": str(tmp_path / "missing.json")}
    for name, text in texts.items():
        (tmp_path / f"{name}.json").write_text(text)
        out[name] = str(tmp_path / f"{name}.json")
    return out


# argv (with {file} placeholders), then text stderr must contain: the flag, what is allowed
BAD_INVOCATIONS = [
    (["--mode", "foo"], "--mode", "'sync', 'async', 'ssp'"),
    (["--dataset", "mnist"], "--dataset", "'iris'"),
    (["--workers", "two"], "--workers", "whole number"),
    (["--workers", "0"], "--workers", "from 1 to 16"),
    (["--workers", "17"], "--workers", "from 1 to 16"),
    (["--lr", "-1"], "--lr", "(0, 10]"),
    (["--lr", "nan"], "--lr", "finite number"),
    (["--steps", "1.5"], "--steps", "whole number"),
    (["--worker-delays", "a,b"], "--worker-delays", "comma-separated list of seconds"),
    (["--worker-delays", "0,0,0"], "--worker-delays", "one delay per worker (2 values)"),
    (["--worker-delays", "0,-1"], "--worker-delays", "[0, 10]"),
    (["--dataset", "linreg", "--sharding", "label-skew"], "--sharding", "'iid'"),
    (["--dataset", "iris", "--sharding", "label-skew", "--classes-per-worker", "4"],
     "--classes-per-worker", "from 1 to 3"),
    (["--dataset", "iris", "--batch-size", "100"], "--batch-size", "≤ 112"),
    (["--dataset", "iris", "--workers", "16"], "--batch-size (default)", "≤ 112"),
    (["--staleness-bound", "lots"], "--staleness-bound", "not a whole number or inf"),
    (["--staleness-bound", "-1"], "--staleness-bound", "from 0 to 1000000, or ∞"),
    (["--bogus-flag", "1"], "--bogus-flag", "unrecognized arguments"),
    (["--work", "3"], "--work", "unrecognized arguments"),  # no prefix matching
    (["--config", "{missing}"], "--config", "cannot read"),
    (["--config", "{broken}"], "--config", "not valid JSON"),
    (["--config", "{list}"], "--config", "JSON object"),
    (["--config", "{unknown}"], "--config", "'learning_rate'"),
    (["--config", "{bad_workers}"], "--workers", "bad_workers.json"),
    (["--config", "{three}", "--worker-delays", "0,0"], "--worker-delays", "(3 values)"),
]


@pytest.mark.parametrize(("argv", "name", "allowed"), BAD_INVOCATIONS,
                         ids=[" ".join(a) for a, _, _ in BAD_INVOCATIONS])
def test_bad_invocation_exits_2_naming_flag(
        argv: list[str], name: str, allowed: str, files: dict[str, str],
        capsys: pytest.CaptureFixture[str], no_process_started: None) -> None:
    argv = ["run"] + [a.format(**files) for a in argv] + ["--quiet"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err
    assert name in err
    assert allowed.format(**files) in err


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "run" in capsys.readouterr().err


def test_help_lists_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for f in dataclasses.fields(Experiment):
        assert flag(f.name) in text, f.name
    flat = " ".join(text.split())
    for phrase in ("(default: 0)", "(default: 0.1)", "(default: none)", "(seconds)"):
        assert phrase in flat
    for extra in ("--out", "--quiet", "--config"):
        assert extra in text
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "run" in capsys.readouterr().out


def test_config_file_is_overridden_by_flags(tmp_path: Path) -> None:
    base = Experiment(mode="async", workers=3, dataset="iris", model="linear")
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(base.to_dict()))
    args = build_parser().parse_args(
        ["run", "--config", str(path), "--lr", "0.5", "--worker-delays", "0,0,0.05"])
    exp = experiment_from_args(args, args.parser)
    assert exp == base.replace(lr=0.5, worker_delays=(0.0, 0.0, 0.05))


@pytest.mark.parametrize("text", ["inf", "∞", "INF"])
def test_staleness_bound_inf_is_none(text: str) -> None:
    args = build_parser().parse_args(["run", "--mode", "ssp", "--staleness-bound", text])
    exp = experiment_from_args(args, args.parser)
    assert exp.staleness_bound is None and exp.staleness_limit is None
    args = build_parser().parse_args(["run", "--mode", "ssp", "--staleness-bound", "3"])
    assert experiment_from_args(args, args.parser).staleness_bound == 3


def test_unbounded_record_json_can_be_a_config(tmp_path: Path) -> None:
    base = Experiment(mode="ssp", workers=3, dataset="iris", staleness_bound=None)
    RunResult(config=base).save(tmp_path)
    assert '"staleness_bound": null' in (tmp_path / "record.json").read_text()
    args = build_parser().parse_args(["run", "--config", str(tmp_path / "record.json")])
    assert experiment_from_args(args, args.parser) == base
    args = build_parser().parse_args(["run", "--config", str(tmp_path / "record.json"),
                                      "--staleness-bound", "4"])
    assert experiment_from_args(args, args.parser).staleness_bound == 4


def test_record_json_can_be_a_config(tmp_path: Path) -> None:
    base = Experiment(workers=3, dataset="iris", steps=7)
    RunResult(config=base).save(tmp_path)
    args = build_parser().parse_args(["run", "--config", str(tmp_path / "record.json")])
    assert experiment_from_args(args, args.parser) == base


# -- outcomes, with ddlkit.runtime.run replaced by a stand-in (no processes) ------------------
def fake_run(outcome: BaseException | None) -> Any:
    """A stand-in for ddlkit.runtime.run that reports two steps, then ends with ``outcome``."""
    def run(exp: Experiment, on_event: Any = None, record_dir: Any = None,
            stop: Any = None, resume_from: Any = None) -> RunResult:
        row = {"step": 2, "samples": 64, "t": 0.1, "train_loss": 1.0, "test_loss": 0.9,
               "accuracy": 0.5}
        on_event(Progress(2, exp.steps, 64, 0.1))
        on_event(EvalPoint(row))
        result = RunResult(config=exp, history=[row], status="ok" if outcome is None else "failed")
        result.meta["record"] = str(Path(record_dir) / "record.json")
        result.save(record_dir)
        if outcome is None:
            return result
        outcome.result = result  # type: ignore[attr-defined]
        raise outcome
    return run


@pytest.mark.parametrize(("outcome", "code", "message"), [
    (None, 0, "record: "),
    (WorkerFailed(2, -9), 1, "error: rank 2 (worker) was killed by signal 9"),
    (RunTimeout(1.0, [0, 1]), 1, "--timeout-s"),
    (KeyboardInterrupt(), 130, "interrupted; partial record at "),
], ids=["ok", "failed", "timeout", "interrupted"])
def test_outcome_sets_exit_code_and_names_record(
        outcome: BaseException | None, code: int, message: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("ddlkit.runtime.run", fake_run(outcome))
    out = tmp_path / "r"
    assert main(["run", "--dataset", "iris", "--steps", "2", "--out", str(out)]) == code
    cap = capsys.readouterr()
    text = cap.out + cap.err
    assert message in text
    assert str(out / "record.json") in text
    assert (out / "record.json").exists()
    if code == 0:
        assert "sync · 2 workers · iid" in cap.out  # the summary
        assert "test_loss=0.9000" in cap.err  # the bar's postfix


def test_default_out_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ddlkit.runtime.run", fake_run(None))
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # a second run in the same second gets its own directory
        assert main(["run", "--mode", "async", "--workers", "3", "--quiet"]) == 0
    records = sorted((tmp_path / "runs").glob("async-3w-*/record.json"))
    assert len(records) == 2


# -- one real run ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_run_writes_a_loadable_record(tmp_path: Path) -> None:
    out = tmp_path / "r"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run(
        [sys.executable, "-m", "ddlkit", "run", "--mode", "sync", "--workers", "2",
         "--dataset", "iris", "--model", "linear", "--steps", "20", "--out", str(out),
         "--quiet"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"record: {out / 'record.json'}" in proc.stdout
    assert (out / "record.json").exists()
    result = ddlkit.load_result(out)
    assert result.status == "ok"
    assert result.config == Experiment(mode="sync", workers=2, dataset="iris", model="linear",
                                       steps=20)
    assert result.final["step"] == 20
