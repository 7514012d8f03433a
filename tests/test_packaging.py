"""The packaging files agree with each other, and committed notebooks carry no outputs.

pyproject.toml (pip) and environment.yml (conda) list the same dependencies with the same
version bounds; the Makefile's torch pin lies inside pyproject's range; CI runs `make test`;
the README's first screen shows `make lab` and `make test`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement  # packaging comes with pytest
from packaging.specifiers import SpecifierSet

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10; pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIRS = ("notebooks", "solutions", "exercises")

# pip name -> conda-forge name, where they differ.
CONDA_NAME = {"torch": "pytorch"}
# Conda packages with no pip counterpart among ddlkit's requirements.
CONDA_ONLY = {"python", "pip"}


def parse_environment_yml(text: str) -> dict[str, object]:
    """Read the small subset of YAML that environment.yml uses.

    Top-level ``key: value`` pairs, top-level lists (``channels``, ``dependencies``) and one
    nested ``- pip:`` list inside ``dependencies``. Returns the scalars by key, plus
    ``channels``, ``dependencies`` (conda specs) and ``pip`` (pip lines). Anything else raises
    ``ValueError``, so a richer file is noticed rather than misread.
    """
    env: dict[str, object] = {"channels": [], "dependencies": [], "pip": []}
    section: str | None = None
    pip_indent: int | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        content = line.strip()
        if indent == 0:
            key, colon, value = content.partition(":")
            if not colon:
                raise ValueError(f"environment.yml line {number}: expected 'key:', got {raw!r}")
            section, pip_indent = key.strip(), None
            if value.strip():
                env[section] = value.strip()
            continue
        if not content.startswith("- ") or section not in ("channels", "dependencies"):
            raise ValueError(f"environment.yml line {number}: unsupported line {raw!r}")
        item = content[2:].strip().strip("'\"")
        if section == "channels":
            env["channels"].append(item)  # type: ignore[union-attr]
        elif item == "pip:":
            pip_indent = indent
        elif pip_indent is not None and indent > pip_indent:
            env["pip"].append(item)  # type: ignore[union-attr]
        else:
            pip_indent = None
            env["dependencies"].append(item)  # type: ignore[union-attr]
    return env


def split_conda_spec(spec: str) -> tuple[str, str]:
    """``"pytorch>=2.2,<3"`` -> ``("pytorch", ">=2.2,<3")``."""
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", spec.strip())
    if match is None:
        raise ValueError(f"not a conda package spec: {spec!r}")
    return match.group(1).lower(), match.group(2).replace(" ", "")


@pytest.fixture(scope="module")
def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def conda_env() -> dict[str, object]:
    return parse_environment_yml((ROOT / "environment.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def conda_specs(conda_env: dict[str, object]) -> dict[str, SpecifierSet]:
    specs: dict[str, SpecifierSet] = {}
    for spec in conda_env["dependencies"]:  # type: ignore[union-attr]
        name, version = split_conda_spec(spec)
        if name not in CONDA_ONLY:
            specs[name] = SpecifierSet(version)
    return specs


def pip_requirements(lines: list[str]) -> dict[str, SpecifierSet]:
    """Conda-side name -> version bounds for a list of PEP 508 requirement strings."""
    reqs = [Requirement(line) for line in lines]
    return {CONDA_NAME.get(r.name.lower(), r.name.lower()): r.specifier for r in reqs}


def test_runtime_dependencies_match_environment_yml(pyproject: dict, conda_specs: dict) -> None:
    runtime = pip_requirements(pyproject["project"]["dependencies"])
    for name, bounds in runtime.items():
        assert name in conda_specs, f"{name} is in pyproject.toml but not in environment.yml"
        assert conda_specs[name] == bounds, (
            f"{name}: pyproject.toml says {bounds}, environment.yml says {conda_specs[name]}"
        )


def test_dev_dependencies_match_environment_yml(pyproject: dict, conda_specs: dict) -> None:
    dev = pip_requirements(pyproject["project"]["optional-dependencies"]["dev"])
    for name, bounds in dev.items():
        assert name in conda_specs, f"dev tool {name} is not in environment.yml"
        assert conda_specs[name] == bounds, (
            f"{name}: pyproject.toml says {bounds}, environment.yml says {conda_specs[name]}"
        )


def test_environment_yml_has_nothing_extra(pyproject: dict, conda_specs: dict) -> None:
    extras = pyproject["project"]["optional-dependencies"]
    known = pip_requirements(pyproject["project"]["dependencies"] + extras["dev"])
    extra = sorted(set(conda_specs) - set(known))
    assert not extra, f"environment.yml lists packages pyproject.toml does not: {extra}"


def test_environment_yml_shape(conda_env: dict[str, object]) -> None:
    assert conda_env.get("name") == "ddlkit"
    assert "conda-forge" in conda_env["channels"]  # type: ignore[operator]
    deps = conda_env["dependencies"]
    assert "python=3.11" in deps  # type: ignore[operator]
    assert "pip" in deps  # type: ignore[operator]
    assert conda_env["pip"] == ["-e ."]


def test_line_parser_agrees_with_pyyaml(conda_env: dict[str, object]) -> None:
    """Cross-check the small parser above; PyYAML comes with JupyterLab's dependencies."""
    yaml = pytest.importorskip("yaml")
    full = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    conda = [d for d in full["dependencies"] if isinstance(d, str)]
    pip = [line for d in full["dependencies"] if isinstance(d, dict) for line in d["pip"]]
    assert full["name"] == conda_env["name"]
    assert full["channels"] == conda_env["channels"]
    assert conda == conda_env["dependencies"]
    assert pip == conda_env["pip"]


def test_dev_and_test_extras_are_the_same(pyproject: dict) -> None:
    extras = pyproject["project"]["optional-dependencies"]
    assert sorted(extras["dev"]) == sorted(extras["test"])


def test_makefile_torch_pin_is_inside_pyproject_range(pyproject: dict) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^TORCH_SPEC\s*\?=\s*(\S+)\s*$", makefile, flags=re.MULTILINE)
    assert match, "Makefile has no 'TORCH_SPEC ?= ...' line"
    pin = Requirement(match.group(1))
    versions = [s.version for s in pin.specifier if s.operator == "=="]
    assert pin.name == "torch" and len(versions) == 1, f"not an exact torch pin: {pin}"
    allowed = pip_requirements(pyproject["project"]["dependencies"])["pytorch"]
    assert allowed.contains(versions[0]), f"{pin} is outside pyproject's torch{allowed}"


def committed_notebooks() -> list[Path]:
    """Notebooks under notebooks/, solutions/ and exercises/: tracked ones in a git checkout,
    all of them otherwise (for example in an unpacked source archive)."""
    if (ROOT / ".git").exists():
        patterns = [f"{d}/*.ipynb" for d in NOTEBOOK_DIRS]
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", *patterns],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        paths = [ROOT / p for p in listed.split("\0") if p]
        return [p for p in paths if p.exists()]  # skip files deleted but not yet committed
    found = [p for d in NOTEBOOK_DIRS for p in (ROOT / d).rglob("*.ipynb")]
    return [p for p in found if ".ipynb_checkpoints" not in p.parts]


def test_committed_notebooks_have_no_outputs() -> None:
    problems = []
    for path in committed_notebooks():
        notebook = json.loads(path.read_text(encoding="utf-8"))
        for index, cell in enumerate(notebook.get("cells", [])):
            if cell.get("cell_type") != "code":
                continue
            if cell.get("outputs"):
                problems.append(f"{path.relative_to(ROOT)} cell {index}: has outputs")
            if cell.get("execution_count") is not None:
                problems.append(f"{path.relative_to(ROOT)} cell {index}: has an execution_count")
    assert not problems, "strip outputs before committing:\n" + "\n".join(problems)


def test_ci_runs_make_test() -> None:
    script = ROOT / ".ci" / "run"
    assert script.is_file()
    assert os.access(script, os.X_OK), ".ci/run is not executable"
    commands = [
        line.strip()
        for line in script.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert "make test" in commands, ".ci/run does not call 'make test'"


def test_readme_first_screen_shows_make_lab_and_make_test() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:15])
    assert "make lab" in first_screen
    assert "make test" in first_screen
