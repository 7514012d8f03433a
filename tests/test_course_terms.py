"""Every course notebook has a bilingual terms table, and each of its terms is in the glossary."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|")


def _words(term: str) -> str:
    """A term without its parenthesis, in lower case: 'latency (α)' → 'latency'."""
    return re.sub(r"\s*\(.*?\)", "", term).strip().lower()


def glossary_terms() -> set[str]:
    text = (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8")
    terms = set()
    for line in text.splitlines():
        m = ROW.match(line)
        if m and not set(m.group(1)) <= set("-: "):
            terms.add(_words(m.group(1)))
            terms.update(_words(t) for t in m.group(1).split(","))
    return terms


def terms_table(nb: Path) -> list[tuple[str, str]]:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and "## Terms" in src:
            rows = [ROW.match(line) for line in src.split("## Terms", 1)[1].splitlines()]
            return [(m.group(1), m.group(2)) for m in rows
                    if m and m.group(1) != "English" and not set(m.group(1)) <= set("-: ")]
    return []


@pytest.mark.parametrize("nb", NOTEBOOKS[1:], ids=lambda p: p.name)
def test_each_notebook_has_its_terms_in_english_and_chinese(nb: Path) -> None:
    rows = terms_table(nb)
    assert rows, f"{nb.name} has no '## Terms' table"
    for english, chinese in rows:
        assert re.search(r"[\u4e00-\u9fff]", chinese), f"{nb.name}: {english!r} has no Chinese"


def test_the_last_two_notebooks_use_the_glossary_words() -> None:
    known = glossary_terms()
    for nb in NOTEBOOKS[-2:]:
        for english, _ in terms_table(nb):
            assert _words(english) in known, f"{nb.name}: {english!r} is not in the glossary"
