"""The ``text`` dataset: Python's own documentation, cut into short character sequences.

Every Python ships the text of its help topics in ``pydoc_data.topics`` (the pages
``help("assert")`` shows), so this corpus is real English technical prose that needs no
download. It is prepared like this, always the same way:

1. **Topics.** Each help page (``assert``, ``calls``, ``typesseq``, …) belongs to one of
   :data:`TOPIC_GROUPS` (statements, expressions, …): that group is the *topic label* of
   every sequence cut from the page. Label-based sharding (``label-skew``, ``dirichlet``)
   then splits the text by topic, a natural non-IID split.
2. **Cleaning.** Pages are split into paragraphs and a paragraph already seen on an
   earlier page (in alphabetical order) is dropped: several pages repeat whole sections of
   others (``specialnames`` contains ``customization``), and a repeat would let test text
   leak into training. Heading underlines and table rules are dropped, typographic quotes
   and dashes become ASCII, other characters outside :data:`VOCAB` are dropped, and runs
   of spaces become one space. Paragraphs end with a newline.
3. **Sequences.** Each page's text is cut into non-overlapping sequences of
   ``SEQUENCE_LENGTH + 1`` characters. A model reads the first ``SEQUENCE_LENGTH`` and
   predicts, at every position, the character that follows.
4. **Split.** The last :data:`TEST_FRACTION` of each page's sequences is test text, the
   rest training text, so no test sequence overlaps a training one. Exactly ``N_TRAIN``
   and ``N_TEST`` sequences are then drawn from the two pools with a fixed seed, so the
   dataset has the same size on every Python version (the wording may differ a little).
"""
from __future__ import annotations

import re
from functools import cache

import numpy as np

SEQUENCE_LENGTH = 32
"""Characters a model reads per sequence; each stored sequence has one more (the last target)."""

VOCAB = "\n" + "".join(chr(c) for c in range(32, 127))
"""The characters of the corpus: newline and printable ASCII (96 characters)."""

N_TRAIN = 6400
N_TEST = 512
TEST_FRACTION = 0.2
TEXT_SEED = 20131

TOPIC_GROUPS: tuple[str, ...] = ("statements", "expressions", "lexical", "data model",
                                 "built-in types", "execution")
"""The topic labels, in class-id order."""

_GROUP_OF_PAGE: dict[str, str] = {
    **dict.fromkeys(["assert", "assignment", "async", "augassign", "break", "class",
                     "compound", "continue", "del", "else", "for", "function", "global", "if",
                     "import", "nonlocal", "pass", "raise", "return", "try", "while", "with",
                     "yield"], "statements"),
    **dict.fromkeys(["atom-identifiers", "atom-literals", "attribute-references", "await",
                     "binary", "bitwise", "booleans", "calls", "comparisons", "conversions",
                     "dict", "exprlists", "in", "lambda", "lists", "operator-summary", "power",
                     "shifting", "slicings", "subscriptions", "unary"], "expressions"),
    **dict.fromkeys(["floating", "formatstrings", "id-classes", "identifiers", "imaginary",
                     "integers", "numbers", "strings"], "lexical"),
    **dict.fromkeys(["attribute-access", "callable-types", "context-managers", "customization",
                     "numeric-types", "objects", "sequence-types", "specialattrs",
                     "specialnames", "types"], "data model"),
    **dict.fromkeys(["string-methods", "truth", "typesfunctions", "typesmapping", "typesmethods",
                     "typesmodules", "typesseq", "typesseq-mutable"], "built-in types"),
    **dict.fromkeys(["debugger", "dynamic-features", "exceptions", "execmodel", "naming"],
                    "execution"),
}

_ASCII = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
          "\u2014": "-", "\u2026": "...", "\u00a0": " ", "\t": " "}
_RULE_LINE = re.compile(r"^[\s*=\-+~^|]+$")
_CHAR_ID = {c: i for i, c in enumerate(VOCAB)}


def topic_group(page: str, text: str = "") -> str:
    """The topic group of the help page called ``page``.

    Pages this module does not list (a newer Python may add some) are placed by their name
    or title: ``bltin-*`` and ``types*`` are built-in types, a title naming a statement is a
    statement, a title naming a literal is lexical; anything else is an expression.
    """
    if page in _GROUP_OF_PAGE:
        return _GROUP_OF_PAGE[page]
    title = text.strip().split("\n", 1)[0].lower()
    if page.startswith(("bltin-", "types")):
        return "built-in types"
    if "statement" in title:
        return "statements"
    if "literal" in title:
        return "lexical"
    return "expressions"


def clean_pages(pages: dict[str, str]) -> dict[str, str]:
    """Each page's cleaned text (step 2 above); pages left empty are omitted."""
    seen: set[str] = set()
    cleaned: dict[str, str] = {}
    for page in sorted(pages):
        paragraphs = []
        for raw in re.split(r"\n[ \t]*\n", pages[page]):
            key = raw.strip()
            if not key or key in seen:
                continue
            seen.add(key)
            lines = [line for line in raw.split("\n") if not _RULE_LINE.match(line)]
            text = "".join(_ASCII.get(c, c) for c in " ".join(lines))
            text = "".join(c for c in text if c in _CHAR_ID and c != "\n")
            text = re.sub(r" +", " ", text).strip()
            if text:
                paragraphs.append(text + "\n")
        if paragraphs:
            cleaned[page] = "".join(paragraphs)
    return cleaned


def encode(text: str) -> np.ndarray:
    """Character ids (int64) of ``text``; characters outside :data:`VOCAB` are an error."""
    bad = sorted({c for c in text if c not in _CHAR_ID})
    if bad:
        raise ValueError(f"text: characters {bad!r} are not in the vocabulary; allowed: "
                         "newline and printable ASCII")
    return np.fromiter((_CHAR_ID[c] for c in text), dtype=np.int64, count=len(text))


def decode(ids: np.ndarray | list[int]) -> str:
    """The text of a sequence of character ids."""
    return "".join(VOCAB[int(i)] for i in ids)


@cache
def text_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): sequences [n, SEQUENCE_LENGTH + 1] and topic ids [n].

    Read-only int64 arrays, built once per process.
    """
    from pydoc_data.topics import topics  # ships with every CPython

    pools: dict[str, tuple[list[np.ndarray], list[int]]] = {"train": ([], []), "test": ([], [])}
    width = SEQUENCE_LENGTH + 1
    for page, text in clean_pages(dict(topics)).items():
        ids = encode(text)
        count = ids.size // width
        if count == 0:
            continue
        n_test = int(round(TEST_FRACTION * count))
        label = TOPIC_GROUPS.index(topic_group(page, topics[page]))
        for k in range(count):
            split = "test" if k >= count - n_test else "train"
            pools[split][0].append(ids[k * width:(k + 1) * width])
            pools[split][1].append(label)
    rng = np.random.default_rng(TEXT_SEED)
    arrays = []
    for split, wanted in (("train", N_TRAIN), ("test", N_TEST)):
        sequences, labels = pools[split]
        if len(sequences) < wanted:
            raise RuntimeError(f"this Python's pydoc_data.topics gives only {len(sequences)} "
                               f"{split} sequences; the text dataset needs {wanted}")
        chosen = np.sort(rng.choice(len(sequences), size=wanted, replace=False))
        arrays += [np.stack([sequences[i] for i in chosen]),
                   np.asarray(labels, dtype=np.int64)[chosen]]
    for array in arrays:
        array.flags.writeable = False
    x_train, y_train, x_test, y_test = arrays
    return x_train, y_train, x_test, y_test
