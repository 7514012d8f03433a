"""Exercises: generated from ``solutions/``, graded against independent references.

A learner writes code in ``exercises/exNN_name.py`` and grades it from the notebook next
to it, or from a shell::

    from ddlkit.exercises import grade
    grade("ex04")                       # -> Verdict: "Exercise 4: 3/3 checks passed"

    python -m ddlkit grade ex04         # exit code 0 when every check passes

Exercise code is an importable ``.py`` file, not a notebook cell, because code that runs in
a worker process must be importable: the grader's job loads the learner's file by path
inside each worker. ``python -m ddlkit exercises build`` (``make exercises``) regenerates
``exercises/`` from ``solutions/`` (see :mod:`ddlkit.exercises.build`).
"""
from ddlkit.exercises.build import BuildError, BuildReport, build
from ddlkit.exercises.grading import (
    CheckFailed,
    Exercise,
    all_exercises,
    exercise_path,
    get_exercise,
    grade,
    load,
    load_file,
)
from ddlkit.exercises.verdict import CheckResult, Verdict

__all__ = ["BuildError", "BuildReport", "build", "CheckFailed", "CheckResult", "Exercise",
           "Verdict", "all_exercises", "exercise_path", "get_exercise", "grade", "load",
           "load_file"]
