"""The house keeps its floors: imports point down the layers, and no file imports itself
back through others. ``ddlkit/ARCHITECTURE.md`` explains the layers; this test is where
they are written down, once.

An import counts wherever it stands (inside a function too); only imports under
``if TYPE_CHECKING:`` do not, since they never run. They do count for cycles: two files
that need each other's names, even only for type hints, are one concept split in two.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ddlkit"

#: bottom to top: a module may import its own layer's package(s) and anything below.
#: Within one layer, a package imports only itself (``data`` never imports ``comm``).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("ddlkit.errors", "ddlkit.units", "ddlkit.faults", "ddlkit._moved",  # no ddlkit imports
     "ddlkit.paths", "ddlkit.files"),
    ("ddlkit.data", "ddlkit.comm"),                             # primitives
    ("ddlkit.modes",),                                          # the mode registry
    ("ddlkit.config",),                                         # Experiment: one run, validated
    ("ddlkit.train",),                                          # one rank's training
    ("ddlkit.strategies",),                                     # how ranks cooperate
    ("ddlkit.runtime",),                                        # processes, pool, records
    ("ddlkit",),                                                # the public API (__init__)
    ("ddlkit.analysis",),                                       # formulas, references, metrics
    ("ddlkit.plots",),                                          # figures
    ("ddlkit.widgets",),                                        # the panel
    ("ddlkit.lessons", "ddlkit.exercises", "ddlkit.bench", "ddlkit.tools"),
    ("ddlkit.cli",),                                            # the command line
    ("ddlkit.launch", "ddlkit.__main__"),                       # entry points
)

#: at most this many .py files directly in ddlkit/ (issue 13)
MAX_TOP_LEVEL = 20


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def unit_of(module: str) -> str:
    """The layer entry a module belongs to: the longest matching name in LAYERS."""
    best = ""
    for layer in LAYERS:
        for name in layer:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best = name
    if not best:
        raise AssertionError(f"{module} is in no layer: add its package to LAYERS")
    return best


def layer_of(module: str) -> int:
    unit = unit_of(module)
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def imports_of(module: str, path: Path | None = None, type_checking: bool = False) -> set[str]:
    """The ddlkit modules ``module`` imports (as files: ``from pkg import sub`` is ``pkg.sub``),
    with those under ``if TYPE_CHECKING:`` only when ``type_checking``. ``path`` is its
    file (default: the module's own)."""
    path = MODULES[module] if path is None else path
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set() if type_checking else _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES and "." in t:
                t = t.rpartition(".")[0]
            if t in MODULES and t != module:
                found.add(t)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        unit_of(module)


def wrong_imports(module: str, targets: set[str]) -> list[str]:
    """The imports of ``module`` that point up the layers, or sideways into another package."""
    here, unit = layer_of(module), unit_of(module)
    wrong = []
    for target in sorted(targets):
        there, other = layer_of(target), unit_of(target)
        if there > here or (there == here and other != unit):
            wrong.append(f"{target} (layer {there}: {other})")
    return wrong


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    wrong = wrong_imports(module, GRAPH[module])
    assert not wrong, (f"{module} (layer {layer_of(module)}: {unit_of(module)}) imports "
                       f"upward or sideways: {', '.join(wrong)}. See ddlkit/ARCHITECTURE.md.")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as a list of modules that ends where it starts, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_no_import_cycles_counting_type_checking_imports() -> None:
    cycle = find_cycle({m: imports_of(m, type_checking=True) for m in MODULES})
    assert cycle is None, "import cycle through TYPE_CHECKING: " + " → ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_an_upward_import_is_caught() -> None:
    """The checker itself: the faults issue 13 found are reported."""
    assert wrong_imports("ddlkit.strategies.sync_ps", {"ddlkit.runtime.session"})
    assert wrong_imports("ddlkit.comm.network", {"ddlkit.config"})
    assert wrong_imports("ddlkit.train.trainer", {"ddlkit.lessons.case_language_model"})
    assert wrong_imports("ddlkit.data.datasets", {"ddlkit.comm.events"})  # sideways
    assert not wrong_imports("ddlkit.plots._timeline", {"ddlkit.runtime.result", "ddlkit.units"})


def test_imports_are_read_everywhere_but_type_checking(tmp_path: Path) -> None:
    """A function-level import counts; one under ``if TYPE_CHECKING:`` does not."""
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from ddlkit.runtime import session\n"
              "def f():\n    from ddlkit.train import trainer\n")
    probe = tmp_path / "probe.py"
    probe.write_text(source, encoding="utf-8")
    found = imports_of("ddlkit.strategies.probe", probe)
    assert found == {"ddlkit.train.trainer"}
    assert wrong_imports("ddlkit.strategies.probe", found) == []


def test_few_files_at_the_top() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, f"{len(top)} files directly in ddlkit/: {top}"


def test_nothing_inside_ddlkit_uses_an_old_path() -> None:
    from ddlkit._moved import MOVED

    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if module == "ddlkit._moved":
            continue
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in MOVED:
                pytest.fail(f"{module} imports the old path {node.module}")
            if isinstance(node, ast.Import):
                for a in node.names:
                    assert a.name not in MOVED, f"{module} imports the old path {a.name}"


def test_every_lesson_module_is_named_like_a_notebook() -> None:
    notebooks = {p.stem.split("_", 1)[1] for p in (PACKAGE.parent / "notebooks").glob("*.ipynb")}
    lessons = {p.stem for p in (PACKAGE / "lessons").glob("*.py")} - {"__init__"}
    assert lessons <= notebooks, f"lesson modules without a notebook: {lessons - notebooks}"
