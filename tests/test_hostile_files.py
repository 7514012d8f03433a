"""Corrupt and hostile files (issue 15, item 4): records, checkpoints, exercise files.

Every file ddlkit reads back may be cut off, damaged, from another version or another
experiment, or written by someone else. Each case must end in a clear error naming the
file and what to do (a ``ValueError`` subclass), must never unpickle an object, and must
never change or delete a file. Writes are atomic: an interrupted save leaves the previous
file as it was and no temp file behind.

The hypothesis tests run ``DDLKIT_FUZZ_EXAMPLES`` examples each (default 40, a few seconds
in all); ``make fuzz`` runs a long campaign with many more.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ddlkit import Experiment, load_result
from ddlkit.comm.accounting import rank_totals
from ddlkit.comm.events import Event
from ddlkit.comm.protocol import MESSAGE_TYPES, from_json
from ddlkit.errors import CheckpointError, ConfigError, RecordError
from ddlkit.exercises import build, get_exercise, grade, limits
from ddlkit.exercises.build import MANIFEST
from ddlkit.exercises.grading import Learner
from ddlkit.files import atomic_write
from ddlkit.runtime.result import FORMAT_VERSION, RunResult
from ddlkit.train import checkpoint

EXAMPLES = int(os.environ.get("DDLKIT_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
EXP = Experiment(mode="sync", workers=2, dataset="iris", model="linear", steps=4,
                 eval_every=2)
#: any JSON value, small
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=8)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes: reading must change none of them."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- records ------------------------------------------------------------------------------------
def sample_result() -> RunResult:
    """A small but complete result, built by hand (no processes)."""
    events = [Event(1, "compute", -1, 0, 0, 0.0, 0.0, 0.1, 1),
              Event(1, "send", 0, 72, 60, 0.1, 0.1, 0.2, 1),
              Event(0, "recv", 1, 72, 60, 0.1, 0.15, 0.2, 1)]
    history = [{"step": 0, "samples": 0, "t": 0.05, "train_loss": None, "test_loss": 0.9,
                "accuracy": 0.5, "bytes": 0},
               {"step": 4, "samples": 128, "t": 0.5, "train_loss": 0.7, "test_loss": 0.6,
                "accuracy": 0.75, "bytes": 72}]
    return RunResult(config=EXP, wall_time_s=1.0, first_event_s=0.01, history=history,
                     ranks=rank_totals(events, ["server", "worker", "worker"]), events=events,
                     staleness=[0, 1], lost=[{"rank": 2, "step": 3, "how": "killed"}],
                     applied=[[1, 2]], dropped=[[]], final_params=np.arange(5.0),
                     meta={"world_size": 3})


def use(result: RunResult, tmp: Path) -> None:
    """What a learner does with a loaded run: none of it may fail."""
    shown = [repr(result), result.summary(), result._repr_html_()]
    numbers = [result.total_bytes, result.training_s, result.training_samples_per_s]
    assert all(shown) and all(isinstance(n, (int, float)) for n in numbers)
    again = load_result(result.save(tmp))
    assert again.summary() == result.summary()


@pytest.fixture
def record(tmp_path: Path) -> Path:
    sample_result().save(tmp_path / "run")
    return tmp_path / "run" / "record.json"


def write_record(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data) if not isinstance(data, (bytes, str)) else
                    data if isinstance(data, str) else data.decode("latin-1"))


def test_a_saved_record_loads_back(record: Path, tmp_path: Path) -> None:
    loaded = load_result(record.parent)
    assert load_result(record).summary() == loaded.summary()  # the file itself works too
    assert loaded.events == sample_result().events
    use(loaded, tmp_path / "again")


@pytest.mark.parametrize("text, says", [
    ("", "is empty; the run may have been killed while saving"),
    ('{\n "format": 1,\n "config": {\n  "mode"', "was cut off: it ends at line 4"),
    ("\x00\x01garbage", "is not valid JSON"),
    ("[1, 2, 3]", "holds a list, not the JSON object a record is"),
    ('"record"', "holds the string 'record'"),
    ('{"config": {}}', 'has no "format" field: it is not a record ddlkit wrote'),
    ('{"format": "1"}', "has \"format\": \"1\", not a format number"),
    (f'{{"format": {FORMAT_VERSION + 1}}}', "was written by a newer ddlkit"),
    ("[" * 100_000, "nested too deeply"),
    ('{"format": ' + "9" * 5000 + "}", "Exceeds the limit"),
])
def test_a_damaged_record_says_what_is_wrong(record: Path, text: str, says: str) -> None:
    record.write_text(text)
    before = snapshot(record.parent)
    with pytest.raises(RecordError) as info:
        load_result(record.parent)
    assert str(record) in str(info.value) and says in str(info.value)
    assert isinstance(info.value, ValueError) and info.value.path == str(record)
    assert snapshot(record.parent) == before


@pytest.mark.parametrize("change, says", [
    (lambda d: d.pop("history"), 'has no "history" field'),
    (lambda d: d.update(status=3), '"status" should be a text, not the number 3'),
    (lambda d: d.update(history={}), '"history" should be a list of rows, not an object'),
    (lambda d: d["history"][1].update(t="late"), "item 1 is not: it should be an object with "
                                                 "a number 't', not the string 'late'"),
    (lambda d: d["ranks"][0].pop("role"), "an object with 'role'"),
    (lambda d: d["events"]["rows"][2].__setitem__(3, "72"), "row 2 has nbytes = the string"),
    (lambda d: d["events"].update(fields=["rank"]), "whose fields are ['rank', 'op'"),
    (lambda d: d["config"].update(workers="two"), '"config" is not an experiment this ddlkit'),
    (lambda d: d["config"].update(colour="red"), "unknown field"),
    (lambda d: d["lost"][0].pop("rank"), "an integer 'rank'"),
])
def test_a_record_with_a_wrong_field_names_it(record: Path, change: Any, says: str) -> None:
    data = json.loads(record.read_text())
    change(data)
    write_record(record, data)
    with pytest.raises(RecordError, match="edited by hand") as info:
        load_result(record.parent)
    assert says in str(info.value), str(info.value)


def test_a_folder_without_a_record(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"no record.json in {tmp_path}: load_result "
                                                "reads the record.json that ddlkit.run"):
        load_result(tmp_path)
    with pytest.raises(FileNotFoundError, match="no folder"):
        load_result(tmp_path / "nowhere")


def test_final_params_are_read_without_unpickling(record: Path, tmp_path: Path) -> None:
    params = record.parent / "final_params.npy"
    marker = tmp_path / "marker"
    np.save(params, np.array([Marker(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(RecordError, match="final_params.npy: cannot be read as a NumPy array"):
        load_result(record.parent)
    assert not marker.exists()
    params.write_bytes(params.read_bytes()[:60])
    with pytest.raises(RecordError, match="cut short"):
        load_result(record.parent)
    np.savez(params.open("wb"), a=np.zeros(2))
    with pytest.raises(RecordError, match="an .npz archive"):
        load_result(record.parent)
    np.save(params, np.zeros((2, 2)))
    with pytest.raises(RecordError, match=r"shape \(2, 2\), not the flat vector"):
        load_result(record.parent)


def test_a_record_is_saved_atomically(record: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = record.parent
    before = snapshot(folder)
    changed = sample_result()
    changed.status = "failed"

    def half_then_crash(f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(b"\x93NUMPY half")
        raise KeyboardInterrupt  # as if killed (Ctrl-C) in the middle of writing

    monkeypatch.setattr(np, "save", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        changed.save(folder)
    assert snapshot(folder) == before  # no temp file, nothing replaced
    monkeypatch.undo()
    changed.meta["bad"] = object()  # not JSON: refused before anything is written
    with pytest.raises(TypeError):
        changed.save(folder)
    assert snapshot(folder) == before


def test_atomic_write_keeps_the_old_file_on_any_failure(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("old")

    def half(f: Any) -> None:
        f.write(b"new, but only ha")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half)
    assert snapshot(tmp_path) == {"file.txt": b"old"}
    atomic_write(target, b"new")
    assert snapshot(tmp_path) == {"file.txt": b"new"}
    assert (target.stat().st_mode & 0o777) == 0o644 or os.name == "nt"


@FUZZ
@given(data=st.binary(max_size=300))
def test_fuzz_garbage_records(record: Path, data: bytes) -> None:
    record.write_bytes(data)
    with pytest.raises(RecordError, match=str(record)):
        load_result(record.parent)


@FUZZ
@given(cut=st.integers(min_value=0))
def test_fuzz_truncated_records(record: Path, cut: int) -> None:
    text = json.dumps(sample_result().to_dict(), indent=1)
    record.write_text(text[:cut % len(text)])
    with pytest.raises(RecordError, match="killed while saving"):
        load_result(record.parent)


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document."""
    out = [prefix]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(
        value, list) else []
    for key, inner in items:
        out.extend(json_paths(inner, (*prefix, key)))
    return out


BASE = json.loads(json.dumps(sample_result().to_dict()))
PATHS = json_paths(BASE)[1:]


@FUZZ
@given(where=st.sampled_from(PATHS), new=JSON, delete=st.booleans())
def test_fuzz_mutated_records(record: Path, tmp_path_factory: pytest.TempPathFactory,
                              where: tuple[Any, ...], new: Any, delete: bool) -> None:
    """Replace or delete one value anywhere in a good record: it loads and works, or
    it is refused with a RecordError, never anything else."""
    data = json.loads(json.dumps(BASE))
    parent = data
    for key in where[:-1]:
        parent = parent[key]
    if delete:
        del parent[where[-1]]
    else:
        parent[where[-1]] = new
    write_record(record, data)
    try:
        loaded = load_result(record.parent)
    except RecordError as err:
        assert str(record) in str(err)
        event("refused")
        return
    event("loaded")
    use(loaded, tmp_path_factory.mktemp("again"))


class Marker:
    """A pickle that would create a file when unpickled (what an attacker would send)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


# -- checkpoints --------------------------------------------------------------------------------
CKPT_EXP = Experiment(mode="sync", workers=2, dataset="iris", model="linear", steps=20,
                      optimizer="adam", checkpoint_every=5)


def sample_state(exp: Experiment = CKPT_EXP) -> dict[str, Any]:
    """What the model's holder saves (see strategies/common.py), built without a run."""
    params = torch.arange(15, dtype=torch.float32)
    return {"step": 5, "samples": 80, "config": exp.to_dict(), "params": params,
            "optimizer": {"t": 5, "m": torch.zeros(15), "v": torch.ones(15)}}


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    return checkpoint.save(tmp_path / "run" / checkpoint.FOLDER, sample_state())


def refused(path: Path, says: str, exp: Experiment = CKPT_EXP) -> CheckpointError:
    """Loading ``path`` (and checking it against ``exp``) raises a CheckpointError that
    names the file and says ``says``; nothing in its folder changes."""
    before = snapshot(path.parent)
    with pytest.raises(CheckpointError) as info:
        checkpoint.check_compatible(exp, checkpoint.load(path))
    assert str(path) in str(info.value) and says in str(info.value), str(info.value)
    assert isinstance(info.value, ValueError) and snapshot(path.parent) == before
    return info.value


def torch_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_a_saved_checkpoint_loads_and_fits(ckpt: Path) -> None:
    state = checkpoint.load(checkpoint.find(ckpt.parent.parent))
    checkpoint.check_compatible(CKPT_EXP, state)
    assert state.path == ckpt and state["step"] == 5 and torch.equal(
        state["params"], sample_state()["params"])


def test_a_pickled_object_is_refused_and_never_run(ckpt: Path, tmp_path: Path) -> None:
    """A checkpoint whose pickle would run code (here: create a marker file) is refused
    before anything is unpickled."""
    marker = tmp_path / "marker"
    state = sample_state()
    state["optimizer"] = {"t": Marker(marker)}
    ckpt.write_bytes(torch_bytes(state))
    with pytest.raises(AssertionError):  # the test's own check: the pickle really is armed
        assert pickle.loads(pickle.dumps(Marker(marker))) and not marker.exists()
    marker.unlink()
    err = refused(ckpt, "holds Python objects other than tensors and plain values")
    assert "(it asks for " in str(err) and "unpickling can run any code" in str(err)
    assert not marker.exists()
    ckpt.write_bytes(pickle.dumps(Marker(marker)))  # a bare pickle, not torch's zip
    refused(ckpt, "is not a checkpoint")
    assert not marker.exists()


def test_torch_load_is_always_weights_only() -> None:
    """Every torch.load in ddlkit passes weights_only=True (grep, so a new one is caught)."""
    package = Path(checkpoint.__file__).parents[1]
    calls = [(p, line) for p in package.rglob("*.py") for line in p.read_text().splitlines()
             if "torch.load(" in line]
    assert calls and all("weights_only=True" in line for _, line in calls), calls


@pytest.mark.parametrize("data, says", [
    (b"", "is empty; a kill while saving cannot cause this"),
    (b"garbage" * 10, "is not a checkpoint (not a torch.save file); resume_from takes"),
    (b"PK\x03\x04" + b"garbage" * 10, "is cut off or damaged"),
    (torch_bytes([1, 2]), "holds a list, not a ddlkit checkpoint (a dict of step, samples"),
    (torch_bytes({"step": 1}), "has no 'samples': it is not a ddlkit checkpoint; resume_from "
                               "takes the record folder"),
    (torch_bytes({**sample_state(), "step": "5"}), "its 'step' should be a step number, not "
                                                   "str '5'"),
    (torch_bytes({**sample_state(), "params": torch.zeros(2, 2)}),
     "its 'params' should be a flat tensor of floats, not a torch.float32 tensor of shape"),
    (torch_bytes({**sample_state(), "config": {"lr": torch.ones(1)}}), "Experiment fields"),
    (torch_bytes({**sample_state(), "config": {"lr": [[[[[[[[[[1]]]]]]]]]]}}), "Experiment "),
    (torch_bytes({**sample_state(), "step": 2**70}), "its 'step' should be a step number"),
    (torch_bytes({**sample_state(), "params": torch.arange(15.0).to_sparse()}),
     "its 'params' should be a flat tensor of floats"),
    (torch_bytes({**sample_state(), "optimizer": {"m": torch.zeros(3)}}),
     "its optimizer['m'] is a torch.float32 tensor of shape (3,), unlike the parameters"),
    (torch_bytes({**sample_state(), "optimizer": {}}), "its optimiser state does not fit the "
                                                       "experiment's adam optimiser (KeyError"),
    (torch_bytes({**sample_state(), "params": torch.zeros(15, dtype=torch.float64),
                  "optimizer": {"t": 1, "m": torch.zeros(15, dtype=torch.float64),
                                "v": torch.zeros(15, dtype=torch.float64)}}),
     "its parameters are torch.float64, but the experiment trains in float32"),
])
def test_a_damaged_or_foreign_checkpoint_says_what_is_wrong(ckpt: Path, data: bytes, says: str
                                                            ) -> None:
    ckpt.write_bytes(data)
    refused(ckpt, says)


def test_a_cut_off_checkpoint(ckpt: Path) -> None:
    whole = ckpt.read_bytes()
    for cut in (1, 100, len(whole) // 2, len(whole) - 1):
        ckpt.write_bytes(whole[:cut])
        refused(ckpt, "is cut off")


@pytest.mark.parametrize("field, value", [("mode", "allreduce"), ("model", "mlp"),
                                          ("dataset", "digits"), ("workers", 3), ("lr", 0.5)])
def test_a_checkpoint_of_another_experiment(ckpt: Path, field: str, value: Any) -> None:
    other = CKPT_EXP.replace(**{field: value})
    with pytest.raises(ConfigError, match=f"^{field}=.*as in the run being resumed "
                                          f"\\({ckpt};") as info:
        checkpoint.check_compatible(other, checkpoint.load(ckpt))
    assert isinstance(info.value, ValueError)
    checkpoint.check_compatible(CKPT_EXP.replace(steps=40, timeout_s=9.0),  # may change
                                checkpoint.load(ckpt))


def test_resume_from_a_damaged_checkpoint_is_refused_before_any_process(
        ckpt: Path, no_process_started: None) -> None:
    import ddlkit

    ckpt.write_bytes(b"\x00" * 50)
    with pytest.raises(ddlkit.CheckpointError, match="is not a checkpoint"):
        ddlkit.run(CKPT_EXP.replace(checkpoint_every=0), resume_from=ckpt.parent.parent)


def test_the_command_line_names_a_damaged_checkpoint(ckpt: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     no_process_started: None) -> None:
    from ddlkit.cli import main

    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit) as info:
        main(["run", "--mode", "sync", "--workers", "2", "--dataset", "iris", "--model",
              "linear", "--steps", "20", "--resume-from", str(ckpt.parent.parent),
              "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    assert f"{ckpt}: is not a checkpoint" in capsys.readouterr().err


def test_a_checkpoint_is_saved_atomically(ckpt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(ckpt.parent)
    half = torch_bytes({**sample_state(), "step": 10})[:100]

    def half_then_crash(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(half)
        raise RuntimeError("killed")

    monkeypatch.setattr(torch, "save", half_then_crash)
    with pytest.raises(RuntimeError, match="killed"):
        checkpoint.save(ckpt.parent, {**sample_state(), "step": 10})
    assert snapshot(ckpt.parent) == before
    monkeypatch.undo()
    assert checkpoint.load(ckpt)["step"] == 5


@FUZZ
@given(data=st.binary(max_size=400))
def test_fuzz_garbage_checkpoints(ckpt: Path, data: bytes) -> None:
    ckpt.write_bytes(data)
    with pytest.raises(CheckpointError, match=str(ckpt)):
        checkpoint.load(ckpt)


GOOD_CKPT = torch_bytes(sample_state())


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, len(GOOD_CKPT) - 1), st.integers(1, 255)),
                      min_size=1, max_size=4),
       cut=st.none() | st.integers(0, len(GOOD_CKPT)))
def test_fuzz_damaged_checkpoints(ckpt: Path, tmp_path: Path, flips: list[tuple[int, int]],
                                  cut: int | None) -> None:
    """A good checkpoint with a few bytes changed, maybe cut: it loads and fits, or it is
    refused with a CheckpointError or a ConfigError (another experiment), nothing else."""
    data = bytearray(GOOD_CKPT)
    for at, xor in flips:
        data[at] ^= xor
    ckpt.write_bytes(bytes(data[:cut]))
    try:
        checkpoint.check_compatible(CKPT_EXP, checkpoint.load(ckpt))
    except CheckpointError as err:
        assert str(ckpt) in str(err)
        event("refused: " + err.problem.split(" (")[0][:40])
    except ConfigError:
        event("another experiment")
    else:
        event("loaded")


@FUZZ
@given(key=st.sampled_from(["step", "samples", "config", "params", "optimizer", "extra"]),
       value=JSON | st.builds(torch.zeros, st.integers(0, 20)), delete=st.booleans())
def test_fuzz_unexpected_contents(ckpt: Path, key: str, value: Any, delete: bool) -> None:
    """A valid torch file whose checkpoint has one entry changed."""
    state = sample_state()
    if delete:
        state.pop(key, None)
    else:
        state[key] = value
    ckpt.write_bytes(torch_bytes(state))
    try:
        checkpoint.check_compatible(CKPT_EXP, checkpoint.load(ckpt))
    except CheckpointError as err:
        assert str(ckpt) in str(err)
    except ConfigError:
        pass


# -- exercise files -----------------------------------------------------------------------------
STUCK = ("import time\n"
         "def weighted_average(grads, counts):\n"
         "    end = time.monotonic() + 2.5  # swallows every interruption, then gives up\n"
         "    while time.monotonic() < end:\n"
         "        try:\n"
         "            while time.monotonic() < end:\n"
         "                pass\n"
         "        except BaseException:\n"
         "            pass\n"
         "    return grads[0]\n")
FILE = "ex01_weighted_average.py"


@pytest.fixture
def short_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "TIME_LIMIT_S", 0.5)
    monkeypatch.setattr(limits, "GRACE_S", 1.0)


@pytest.mark.parametrize("source, says", [
    ("def weighted_average(grads, counts)\n    return 1\n",
     f"check 1/3 failed: {FILE}, line 1: SyntaxError: expected ':'"),
    ("import torch\nx = 1 / 0\n",
     f"check 1/3 failed: ZeroDivisionError: division by zero ({FILE}, line 2)"),
    ("import sys\nsys.exit(3)\n",
     f"check 1/3 failed: importing {FILE} called exit() or sys.exit(3) (stopped at {FILE}, "
     "line 2); grading needs it to return instead"),
    ("x = 0\nwhile True:\n    x += 1\n",
     f"check 1/3 failed: importing {FILE} did not finish within the time limit of 0.5 s "
     f"(stopped at {FILE}, line "),  # 2 or 3: where the interpreter checks, by version
    ("def weighted_average(grads, counts):\n    while True:\n        pass\n",
     "check 1/3 failed: weighted_average() did not finish within the time limit of 0.5 s "
     f"(stopped at {FILE}, line "),
    ("def weighted_average(grads, counts):\n    exit()\n",
     f"weighted_average() called exit() or sys.exit() (stopped at {FILE}, line 2)"),
    ("class Logged:\n    def __init__(self, fn):\n        self.fn = fn\n"
     "    def __call__(self, *args):\n        return self.fn(*args)\n"
     "@Logged\ndef weighted_average(grads, counts):\n    while True:\n        pass\n",
     "check 1/3 failed: weighted_average() did not finish within the time limit of 0.5 s "
     f"(stopped at {FILE}, line "),
    ("import time\ndef weighted_average(grads, counts):\n    time.sleep(1.2)\n",
     f"weighted_average() did not finish within the time limit of 0.5 s (stopped at {FILE}, "
     "line 3)"),
    (STUCK, "weighted_average() did not finish within the time limit of 0.5 s and could not "
            "be stopped: does it catch every exception"),
], ids=["syntax", "raises-at-import", "exits-at-import", "loops-at-import", "loops",
        "exits", "loops-decorated", "sleeps", "swallows-every-interruption"])
def test_a_hostile_exercise_file_ends_in_a_verdict(tmp_path: Path, short_limit: None,
                                                   source: str, says: str) -> None:
    mine = tmp_path / FILE
    mine.write_text(source)
    before = snapshot(tmp_path)
    started = time.monotonic()
    verdict = grade("ex01", tmp_path)
    assert time.monotonic() - started < 0.5 + 1.0 + 1.0  # the limit, the grace, some slack
    assert not verdict.passed and says in verdict.summary(), verdict.summary()
    assert snapshot(tmp_path) == before  # the learner's file, byte for byte, and nothing new
    for helper in threading.enumerate():  # let STUCK's thread end, so no test inherits it
        if helper.name.startswith("ddlkit grading"):
            helper.join(5.0)


def test_the_time_limit_restores_grad_mode_and_returns_values(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text("import torch\ndef weighted_average(grads, counts):\n"
                                 "    return torch.is_grad_enabled()\n")
    learner = Learner(get_exercise("ex01"), tmp_path / FILE)
    with torch.no_grad():
        assert learner.module().weighted_average([], []) is False
    assert learner.module().weighted_average([], []) is True


SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
SOURCES = ["ex01_weighted_average.py", "ex07_ssp_gate.py", "ex01_weighted_average.ipynb"]


@FUZZ
@given(edits=st.dictionaries(st.sampled_from(SOURCES), st.binary(max_size=60), max_size=3),
       manifest=st.none() | st.binary(max_size=120), force_first=st.booleans())
def test_fuzz_build_keeps_every_changed_file(tmp_path_factory: pytest.TempPathFactory,
                                             edits: dict[str, bytes], manifest: bytes | None,
                                             force_first: bool) -> None:
    """``exercises build`` over a learner's folder: whatever the learner changed, and
    whatever became of the manifest, every changed file is kept byte for byte."""
    source, out = tmp_path_factory.mktemp("solutions"), tmp_path_factory.mktemp("exercises")
    for name in SOURCES:
        (source / name).write_bytes((SOLUTIONS / name).read_bytes())
    build(source, out, force=force_first)
    generated = snapshot(out)
    for name, data in edits.items():
        (out / name).write_bytes(data)
    if manifest is not None:
        (out / MANIFEST).write_bytes(manifest)
    report = build(source, out)
    after = snapshot(out)
    for name, data in edits.items():
        if data != generated[name]:
            assert after[name] == data and name in report.kept, (name, report)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# -- what a rank reads from torchrun's store ----------------------------------------------------
@FUZZ
@given(data=st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()) |
       st.lists(st.fixed_dictionaries({"type": st.sampled_from(["Ready", "Done", "Events",
                                                                "Left", "Exec"])}, optional={
           "rank": JSON, "output": JSON, "events": JSON, "reason": JSON}), max_size=3
       ).map(lambda v: json.dumps(v).encode()))
def test_fuzz_store_reports_are_messages_or_refused(data: bytes) -> None:
    """Whatever is in the store under a rank's key: ddlkit messages, or a ValueError (a
    pickle would have run code here)."""
    try:
        messages = from_json(data)
    except ValueError as err:
        assert str(err).startswith("not ddlkit messages")
        return
    assert all(isinstance(m, MESSAGE_TYPES) for m in messages)


def test_a_temp_file_left_by_a_killed_writer_goes_at_the_next_write(tmp_path: Path) -> None:
    from ddlkit.files import atomic_write

    target = tmp_path / "record.json"
    stale = tmp_path / ".record.json.abc123.tmp"  # what a SIGKILL mid-write leaves
    stale.write_bytes(b'{"half": ')
    atomic_write(target, b"{}")
    assert target.read_bytes() == b"{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]
