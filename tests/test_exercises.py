"""Exercises: generated from solutions/ without drift, and every grader tested both ways.

Each exercise's grader must pass on ``solutions/`` and fail on the generated stub in
``exercises/`` with the stub's ``NotImplementedError("Exercise N: …")``, not some other
crash: a grader that passes on a stub is a defect. ``pytest -m ex04`` runs one exercise's
tests. Distributed graders start real gloo processes, so each is run as few times as we can.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ddlkit.cli import main
from ddlkit.exercises import (
    BuildError,
    all_exercises,
    build,
    exercise_path,
    get_exercise,
    grade,
    load,
)
from ddlkit.exercises.build import MANIFEST, stub_notebook, stub_source
from ddlkit.exercises.grading import EXERCISE_MODULES
from ddlkit.paths import checkout_root

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS, EXERCISES = ROOT / "solutions", ROOT / "exercises"


def per_exercise() -> list[object]:
    """One parameter per exercise, carrying its marker (``pytest -m ex03``)."""
    return [pytest.param(key, marks=getattr(pytest.mark, key), id=key) for key in EXERCISE_MODULES]


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# -- generation -------------------------------------------------------------------------------
def test_exercises_folder_is_generated_from_solutions(tmp_path: Path) -> None:
    build(SOLUTIONS, tmp_path)
    generated, committed = files(tmp_path), files(EXERCISES)
    assert sorted(committed) == sorted(generated), "run `make exercises`"
    for name, content in generated.items():
        assert committed[name] == content, f"exercises/{name} is stale: run `make exercises`"


def test_build_is_deterministic(tmp_path: Path) -> None:
    build(SOLUTIONS, tmp_path / "a")
    build(SOLUTIONS, tmp_path / "b")
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_every_exercise_has_module_notebook_and_grading_cell() -> None:
    for ex in all_exercises():
        for folder in (SOLUTIONS, EXERCISES):
            assert (folder / ex.filename).is_file()
            notebook = json.loads((folder / f"{ex.stem}.ipynb").read_text(encoding="utf-8"))
            last = "".join(notebook["cells"][-1]["source"])
            assert f'grade("{ex.key}")' in last, f"{folder.name}/{ex.stem}.ipynb"
            code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
            assert all(not c["outputs"] and c["execution_count"] is None for c in code)


SOLUTION = '''def area(width: int, height: int) -> int:
    """The area."""
    x = 1  # kept
    # BEGIN SOLUTION
    # HINT: multiply.
    #   Two lines of hint.
    # a comment that is part of the answer
    return width * height
    # END SOLUTION
'''


def test_stub_keeps_signature_docstring_and_hint() -> None:
    stub = stub_source(SOLUTION, 7)
    assert stub == '''def area(width: int, height: int) -> int:
    """The area."""
    x = 1  # kept
    # HINT: multiply.
    #   Two lines of hint.
    raise NotImplementedError("Exercise 7: implement area()")
'''


def test_region_outside_a_function_and_malformed_regions() -> None:
    assert stub_source("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", 2) == (
        'raise NotImplementedError("Exercise 2: write this part")\n')
    with pytest.raises(BuildError, match="line 1: # BEGIN SOLUTION is never closed"):
        stub_source("# BEGIN SOLUTION\nx = 1\n", 1, "f.py")
    with pytest.raises(BuildError, match="line 2: # END SOLUTION without"):
        stub_source("x = 1\n# END SOLUTION\n", 1, "f.py")
    with pytest.raises(BuildError, match="inside another region"):
        stub_source("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", 1, "f.py")


def test_notebook_stub_strips_outputs_and_stubs_code_cells() -> None:
    notebook = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# BEGIN SOLUTION stays in prose"]},
        {"cell_type": "code", "execution_count": 3, "metadata": {"tags": ["raises-exception"],
                                                                 "scrolled": True},
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}],
         "source": ["y = 2\n", "# BEGIN SOLUTION\n", "y = 3\n", "# END SOLUTION"]},
    ], "metadata": {"widgets": {}}, "nbformat": 4, "nbformat_minor": 5}
    out = json.loads(stub_notebook(json.dumps(notebook), 9))
    prose, code = out["cells"]
    assert prose["source"] == ["# BEGIN SOLUTION stays in prose"]
    assert code["outputs"] == [] and code["execution_count"] is None
    assert code["metadata"] == {"tags": ["raises-exception"]}
    assert "".join(code["source"]) == (
        'y = 2\nraise NotImplementedError("Exercise 9: write this part")\n')
    assert "widgets" not in out["metadata"]


def test_build_keeps_a_learners_work_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "exercises"
    build(SOLUTIONS, out)
    mine = out / "ex04_ring_all_reduce.py"
    mine.write_text(mine.read_text() + "# my work\n")
    (SOURCE := tmp_path / "solutions").mkdir()
    for name, content in files(SOLUTIONS).items():  # an instructor edits every solution
        (SOURCE / name).write_bytes(content.replace(b"Exercise", b"Exercise:") if
                                    name.endswith(".py") else content)
    report = build(SOURCE, out)
    assert report.kept == ["ex04_ring_all_reduce.py"]
    assert mine.read_text().endswith("# my work\n")
    assert "ex01_weighted_average.py" in report.written  # untouched files are regenerated
    assert build(SOURCE, out).kept == ["ex04_ring_all_reduce.py"]  # still protected
    assert build(SOURCE, out, force=True).written == ["ex04_ring_all_reduce.py"]
    assert (out / MANIFEST).is_file()


# -- grading both ways -------------------------------------------------------------------------
@pytest.mark.parametrize("key", per_exercise())
def test_solution_passes(key: str) -> None:
    verdict = grade(key, SOLUTIONS)
    assert verdict.passed, repr(verdict)
    n = get_exercise(key).number
    total = len(verdict.checks)
    assert verdict.summary() == f"Exercise {n}: {total}/{total} checks passed"


@pytest.mark.parametrize("key", per_exercise())
def test_stub_fails_as_not_implemented(key: str) -> None:
    verdict = grade(key, EXERCISES)
    n = get_exercise(key).number
    assert not verdict.passed
    assert verdict.not_implemented is not None, repr(verdict)
    assert verdict.not_implemented.startswith(f"Exercise {n}: implement "), repr(verdict)
    assert verdict.summary().startswith(f"not implemented yet: Exercise {n}: ")


# Wrong answers, and a phrase the verdict must contain.
WRONG = {
    "ex01": ("import torch\n"
             "def weighted_average(grads, counts):\n"
             "    return torch.stack(grads).mean(0)\n",
             "check 1/3 failed: for gradient 1.0 (1 sample) and 3.0 (3 samples) you return "
             "[2.0]: that is the unweighted mean"),
    "ex04": ("import torch\n"
             "def ring_all_reduce(comm, tensor):  # correct, but everyone sends everything\n"
             "    total, incoming = tensor.clone(), torch.empty_like(tensor)\n"
             "    peers = [p for p in range(comm.world_size) if p != comm.rank]\n"
             "    handles = [comm.isend(tensor, p) for p in peers]\n"
             "    for p in peers:\n"
             "        comm.recv(incoming, p)\n"
             "        total += incoming\n"
             "    for h in handles:\n"
             "        h.wait()\n"
             "    tensor.copy_(total)\n",
             "check 3/3 failed: ring_all_reduce on 3 ranks, length 1000: rank 0 sent 2000 "
             "values"),
    "ex10": ("def backup_step(arrivals, backup):  # drops the last listed, not the last to arrive\n"
             "    k = len(arrivals) - backup\n"
             "    kept, late = arrivals[:k], arrivals[k:]\n"
             "    avg = sum(n * g for _, _, n, g in kept) / sum(n for _, _, n, _ in kept)\n"
             "    return avg, sorted(a[1] for a in kept), sorted(a[1] for a in late)\n",
             "those are the last in the list, not the last to arrive; sort by time"),
    "ex02": ("import numpy as np\n"
             "def dirichlet_shards(labels, workers, alpha, seed)\n"
             "    pass\n",
             "ex02_dirichlet_shards.py, line 2: SyntaxError"),
    "ex11": ("def ps_step_time(workers, n_params, itemsize, alpha_s, beta_s_per_byte,\n"
             "                 t_compute_s):  # one push, as if the pushes did not meet\n"
             "    message = alpha_s + n_params * itemsize * beta_s_per_byte\n"
             "    return t_compute_s + message + workers * message\n",
             "You charge the server's link with one push: the N pushes arrive together and "
             "cross its one link one after another (incast)"),
    "ex08": ("def average_models(comm, model, samples):  # the source article's plain mean\n"
             "    comm.all_reduce(model)\n"
             "    model /= comm.world_size\n"
             "    return samples * comm.world_size\n",
             "check 1/4 failed: 2 ranks with 1, 3 samples: rank 0's model differs from "
             "Σ n_i θ_i / Σ n_i by 1.49: that is the unweighted mean"),
}


@pytest.mark.parametrize("key", [pytest.param(k, marks=getattr(pytest.mark, k), id=k)
                                 for k in WRONG])
def test_wrong_answer_gets_a_precise_reason(key: str, tmp_path: Path) -> None:
    source, reason = WRONG[key]
    (tmp_path / get_exercise(key).filename).write_text(source)
    verdict = grade(key, tmp_path)
    assert not verdict.passed and verdict.not_implemented is None
    assert reason in verdict.summary(), repr(verdict)


# -- finding and loading the learner's file -----------------------------------------------------
def test_default_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ex = get_exercise("ex03")
    assert get_exercise(3) is ex and get_exercise("ex03_sync_server_step") is ex
    monkeypatch.chdir(SOLUTIONS)  # a notebook grades the file next to it
    assert exercise_path(ex) == SOLUTIONS / ex.filename
    monkeypatch.chdir(ROOT)
    assert exercise_path(ex) == EXERCISES / ex.filename
    monkeypatch.chdir(tmp_path)  # in a checkout, the repository's exercises/ comes last
    assert checkout_root() == ROOT
    assert exercise_path(ex) == EXERCISES / ex.filename
    assert exercise_path(ex, "solutions") == SOLUTIONS / ex.filename
    with pytest.raises(ValueError, match="unknown exercise 'ex99'"):
        get_exercise("ex99")


def test_load_sees_an_edit_saved_within_the_same_second(tmp_path: Path) -> None:
    path = tmp_path / "ex01_weighted_average.py"
    path.write_text("def weighted_average(grads, counts):\n    return 1\n")
    assert load("ex01", tmp_path).weighted_average([], []) == 1
    path.write_text("def weighted_average(grads, counts):\n    return 2\n")  # same size
    assert load("ex01", tmp_path).weighted_average([], []) == 2


def test_missing_file_is_a_verdict_not_an_exception(tmp_path: Path) -> None:
    verdict = grade("ex01", tmp_path)
    assert not verdict.passed
    assert verdict.summary().startswith("Exercise 1: cannot grade: there is no file")
    assert "cannot grade" in verdict._repr_html_()


# -- command line ----------------------------------------------------------------------------
def test_cli_grade(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grade", "ex01", "--dir", str(SOLUTIONS)]) == 0
    assert capsys.readouterr().out.startswith("Exercise 1: 3/3 checks passed\n")
    assert main(["grade", "1", "--dir", str(EXERCISES)]) == 1
    assert capsys.readouterr().out.startswith("not implemented yet: Exercise 1: implement "
                                              "weighted_average()")
    with pytest.raises(SystemExit) as info:
        main(["grade", "ex99"])
    assert info.value.code == 2
    assert "ex01, ex02" in capsys.readouterr().err


def test_cli_exercises_build_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    out = tmp_path / "ex"
    argv = ["exercises", "build", "--source", str(SOLUTIONS), "--out", str(out)]
    assert main(argv) == 0
    assert files(out) == files(EXERCISES)
    capsys.readouterr()
    (out / "ex01_weighted_average.py").write_text("# my answer\n")
    assert main(argv) == 1
    assert "kept" in capsys.readouterr().err
    assert (out / "ex01_weighted_average.py").read_text() == "# my answer\n"
    assert main(["exercises", "list"]) == 0
    assert "ex04  ex04_ring_all_reduce.py" in capsys.readouterr().out
