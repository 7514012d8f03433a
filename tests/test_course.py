"""``ddlkit course DIR`` writes a learner's course folder and never overwrites their work;
``ddlkit grade`` finds the learner's file in a course folder, and never in the package.

These run from the checkout (the course comes from the repository's own folders);
``tests/portable/test_wheel.py`` does the same from an installed wheel.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import ddlkit.exercises.grading
import ddlkit.paths
from ddlkit.cli import main
from ddlkit.exercises import exercise_path, get_exercise, grade, load
from ddlkit.tools import course
from ddlkit.tools.course import MANIFEST, CourseError, default_folder, write_course

ROOT = Path(__file__).resolve().parents[1]
EX01 = "exercises/ex01_weighted_average.py"


def expected_files() -> dict[str, bytes]:
    """What a course holds, read straight from the repository (an independent listing)."""
    paths = [*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("exercises/ex[0-9][0-9]_*.py"),
             *ROOT.glob("exercises/ex[0-9][0-9]_*.ipynb"), ROOT / "docs" / "glossary.md"]
    return {p.relative_to(ROOT).as_posix(): p.read_bytes() for p in paths}


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A course source we may change: a copy of the repository's course files."""
    src = tmp_path / "source"
    for relative, content in expected_files().items():
        (src / relative).parent.mkdir(parents=True, exist_ok=True)
        (src / relative).write_bytes(content)
    return src


# -- writing -------------------------------------------------------------------------------------
def test_writes_notebooks_exercises_and_glossary(tmp_path: Path) -> None:
    report = write_course(tmp_path / "course")
    folder = tmp_path / "course"
    assert report.fresh and report.source == ROOT and report.folder == folder
    assert tree(folder) == expected_files()
    assert sorted(report.added) == sorted(expected_files())
    assert not report.kept and not report.updated
    assert "BEGIN SOLUTION" not in (folder / EX01).read_text()  # the stubs, not the solutions
    manifest = json.loads((folder / MANIFEST).read_text())
    assert sorted(manifest["files"]) == sorted(expected_files())
    assert manifest["written_by"] == f"ddlkit {ddlkit.__version__}"


def test_every_path_a_notebook_reads_exists_in_the_course(tmp_path: Path) -> None:
    """Relative links and ``Path("…")`` reads in the notebooks resolve inside the course."""
    folder = tmp_path / "course"
    write_course(folder)
    pattern = re.compile(r"\]\((?!https?:|#|mailto:)([^)#\s]+)|Path\(\"([^\"]+)\"\)")
    checked = 0
    for notebook in folder.glob("*/*.ipynb"):
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            for link, read in pattern.findall("".join(cell["source"])):
                target = notebook.parent / (link or read)
                assert target.exists(), f"{notebook.relative_to(folder)} reads {link or read}"
                checked += 1
    assert checked > 20  # lessons link the glossary and each other; notebook 00 reads it


def test_second_run_keeps_the_learners_file_and_says_why(tmp_path: Path) -> None:
    folder = tmp_path / "course"
    write_course(folder)
    (folder / EX01).write_text("# my answer\n")
    (folder / "notebooks" / "mine.ipynb").write_text("{}")  # not a course file: ignored
    report = write_course(folder)
    assert not report.fresh and not report.added and not report.updated
    assert [(k.path, k.reason) for k in report.kept] == [
        (EX01, "you changed it since ddlkit wrote it")]
    assert (folder / EX01).read_text() == "# my answer\n"
    assert len(report.unchanged) == len(expected_files()) - 1


def test_upgrade_adds_new_updates_untouched_keeps_changed(tmp_path: Path, source: Path) -> None:
    folder = tmp_path / "course"
    write_course(folder, source)
    (folder / EX01).write_text("# my answer\n")
    (folder / "notebooks" / "01_one_worker.ipynb").unlink()  # deleted: comes back
    # the next release: a new notebook, and new versions of three files
    (source / "notebooks" / "99_new.ipynb").write_text('{"cells": []}')
    for relative in (EX01, "docs/glossary.md", "notebooks/02_sharing_data.ipynb"):
        (source / relative).write_text(f"new {relative}\n")
    (source / "notebooks" / "16_learning_rate_scaling.ipynb").unlink()  # dropped
    report = write_course(folder, source)
    assert sorted(report.added) == ["notebooks/01_one_worker.ipynb", "notebooks/99_new.ipynb"]
    assert sorted(report.updated) == ["docs/glossary.md", "notebooks/02_sharing_data.ipynb"]
    assert {k.path: k.reason for k in report.kept} == {
        EX01: "you changed it since ddlkit wrote it",
        "notebooks/16_learning_rate_scaling.ipynb":
            f"no longer part of the course in ddlkit {ddlkit.__version__}; left as it is"}
    assert (folder / EX01).read_text() == "# my answer\n"
    assert (folder / "docs/glossary.md").read_text() == "new docs/glossary.md\n"
    assert (folder / "notebooks/16_learning_rate_scaling.ipynb").is_file()
    # the learner's file is still theirs on the run after, and the dropped one is forgotten
    again = write_course(folder, source)
    assert [k.path for k in again.kept] == [EX01] and not again.added and not again.updated


def test_a_file_that_was_there_before_is_kept(tmp_path: Path) -> None:
    folder = tmp_path / "course"
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "glossary.md").write_text("my own notes\n")
    (folder / "notebooks" / "00_welcome.ipynb").mkdir(parents=True)  # a folder in its place
    report = write_course(folder)
    assert {k.path: k.reason for k in report.kept} == {
        "docs/glossary.md": "it was already there, not written by `ddlkit course`",
        "notebooks/00_welcome.ipynb": "something that is not a file is in its place"}
    assert (folder / "docs" / "glossary.md").read_text() == "my own notes\n"


def test_a_broken_manifest_overwrites_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "course"
    write_course(folder)
    (folder / EX01).write_text("# my answer\n")
    (folder / MANIFEST).write_text("{not json")
    report = write_course(folder)
    assert [k.path for k in report.kept] == [EX01]
    assert (folder / EX01).read_text() == "# my answer\n"


def test_bad_folders_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    with pytest.raises(CourseError, match=r"a_file is a file, not a folder"):
        write_course(a_file)
    with pytest.raises(CourseError, match=r"cannot create .*a_file/course: Not a directory"):
        write_course(a_file / "course")
    with pytest.raises(CourseError, match="where the course comes from"):
        write_course(ROOT)
    monkeypatch.setattr(course, "_writable", lambda folder: False)  # root may write anywhere
    with pytest.raises(CourseError, match=r"cannot write into .*locked: permission denied"):
        write_course(tmp_path / "locked")


def test_without_a_course_source_it_says_so(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setattr(course, "course_source", lambda: None)
    with pytest.raises(CourseError, match="has no course"):
        write_course(tmp_path / "course")
    with pytest.raises(CourseError, match="holds no course"):
        write_course(tmp_path / "course", tmp_path)


def test_the_packaged_course_comes_first(monkeypatch: pytest.MonkeyPatch, source: Path) -> None:
    """In a wheel, ``ddlkit/_course`` is the source; in a checkout, the repository."""
    assert ddlkit.paths.checkout_root() == ROOT
    assert ddlkit.paths.course_source() == ROOT  # the checkout has no ddlkit/_course
    monkeypatch.setattr(ddlkit.paths, "PACKAGED_COURSE", source)
    assert ddlkit.paths.course_source() == source
    monkeypatch.setattr(ddlkit.paths, "PACKAGE", source / "site-packages" / "ddlkit")
    assert ddlkit.paths.checkout_root() is None


def test_default_folder(tmp_path: Path) -> None:
    assert default_folder(tmp_path) == tmp_path / "ddlkit-course"
    write_course(tmp_path / "ddlkit-course")
    assert default_folder(tmp_path / "ddlkit-course") == tmp_path / "ddlkit-course"


# -- the command ---------------------------------------------------------------------------------
def test_cli_course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["course"]) == 0  # no DIR, no course here: ./ddlkit-course
    out = capsys.readouterr().out
    n_ex = len([f for f in expected_files() if f.startswith("exercises/")])
    assert f"wrote the course into {tmp_path / 'ddlkit-course'}: 1 in docs/, {n_ex} in " \
           "exercises/" in out
    assert "python -m ddlkit lab" in out
    (tmp_path / "ddlkit-course" / EX01).write_text("# mine\n")
    monkeypatch.chdir(tmp_path / "ddlkit-course")
    assert main(["course"]) == 0  # in a course folder: that one
    out = capsys.readouterr().out
    assert f"kept    {EX01}: you changed it since ddlkit wrote it" in out
    assert "0 added, 0 updated" in out and "1 kept" in out
    assert main(["course", str(tmp_path / "ddlkit-course" / EX01)]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


def test_cli_lists_what_it_kept_on_a_fresh_folder(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "glossary.md").write_text("my notes\n")
    assert main(["course", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote the course into {tmp_path}: 0 in docs/" not in out
    assert f"wrote the course into {tmp_path}: " in out
    assert "kept    docs/glossary.md: it was already there, not written by `ddlkit course`" in out
    assert "rename it and run this command again" in out


# -- grading in a course folder ----------------------------------------------------------------
def test_grade_finds_the_course_folders_exercises(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "course"
    write_course(folder)
    ex = get_exercise("ex01")
    for where in (folder, folder / "notebooks", folder / "exercises"):
        monkeypatch.chdir(where)
        assert exercise_path(ex) == folder / EX01
    monkeypatch.chdir(folder)
    assert main(["grade", "ex01"]) == 1
    assert capsys.readouterr().out.startswith("not implemented yet: Exercise 1")
    shutil.copy(ROOT / "solutions" / "ex01_weighted_average.py", folder / EX01)
    assert main(["grade", "ex01"]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["grade", "ex01", "--dir", "course/exercises"]) == 0
    capsys.readouterr()


def test_an_installed_ddlkit_never_grades_its_own_package(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    """Installed (no checkout), with no course around: say where it looked, suggest a course."""
    monkeypatch.setattr(ddlkit.exercises.grading, "checkout_root", lambda: None)
    monkeypatch.chdir(tmp_path)
    ex = get_exercise("ex01")
    assert exercise_path(ex) == tmp_path / EX01
    verdict = grade("ex01")
    assert verdict.problem == (
        f"there is no file {ex.filename} in {tmp_path}, nor in an exercises/ folder there or "
        "in a folder above it; to get the exercises, write the course with `python -m ddlkit "
        "course DIR`, then grade in DIR: `python -m ddlkit grade ex01`")
    assert "graded" not in repr(verdict)  # nothing was
    with pytest.raises(FileNotFoundError, match="python -m ddlkit course DIR"):
        load("ex01")
    assert main(["grade", "ex01"]) == 1
    assert "cannot grade: there is no file" in capsys.readouterr().out
    assert main(["grade", "ex01", "--dir", "solutions"]) == 1  # not looked up in a repository
    assert f"there is no file {Path('solutions') / ex.filename}" in capsys.readouterr().out
