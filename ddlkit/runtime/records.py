"""Reading a ``record.json`` back from disk, trusting nothing in it.

:func:`read_fields` returns the record's fields once each one is checked: a file that is
cut off, is not JSON, comes from a newer ddlkit or has a field of the wrong kind raises a
:class:`~ddlkit.errors.RecordError` naming the file, the field and what to do, instead of
a ``KeyError`` deep inside a plot later. :func:`read_params` does the same for
``final_params.npy``, which is read without unpickling anything.
"""
from __future__ import annotations

import dataclasses
import json
import re
import zipfile
from pathlib import Path
from typing import Any, Callable, TypeGuard, get_type_hints

import numpy as np

from ddlkit.comm.accounting import RankTotals
from ddlkit.comm.events import Event
from ddlkit.errors import RecordError

CUT_OFF = ("the run may have been killed while saving it, or the copy was cut short; "
           "run the experiment again")
NOT_A_RECORD = ("load_result reads the record.json that ddlkit.run(record_dir=...) or "
                "python -m ddlkit run --out writes")
EDITED = ("it was not written this way by ddlkit (edited by hand?); put back the file ddlkit "
          "wrote, or run the experiment again")

#: a check of one value: None when it is fine, else what the value should be
Check = Callable[[Any], "str | None"]


def is_int(value: Any) -> TypeGuard[int]:
    """An integer that fits in 64 bits (JSON allows any; a record holds no larger)."""
    return isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63


def is_number(value: Any) -> bool:
    return is_int(value) or isinstance(value, float)


def kind(value: Any) -> str:
    """What a JSON value is, in words: ``a list``, ``the string 'x'``, ``the number 3``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r:.40}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, dict):
        return "an object"
    return "a list" if isinstance(value, list) else type(value).__name__


def _typed(annotation: Any) -> Callable[[Any], bool]:
    return {int: is_int, float: is_number, str: lambda v: isinstance(v, str)}[annotation]


#: each event field and rank-totals field, and how to check a value of it (from their types)
EVENT_CHECKS = {name: _typed(t) for name, t in get_type_hints(Event).items()}
RANK_CHECKS = {name: _typed(t) for name, t in get_type_hints(RankTotals).items()}
RANK_REQUIRED = [f.name for f in dataclasses.fields(RankTotals)
                 if f.default is dataclasses.MISSING]


def one_of(test: Callable[[Any], bool], what: str) -> Check:
    return lambda v: None if test(v) else f"{what}, not {kind(v)}"


def list_of(item: Check, what: str) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list):
            return f"a list of {what}, not {kind(value)}"
        for i, x in enumerate(value):
            problem = item(x)
            if problem is not None:
                return f"a list of {what}, but item {i} is not: it should be {problem}"
        return None
    return check


def _history_row(row: Any) -> str | None:
    if not isinstance(row, dict):
        return f"an object, not {kind(row)}"
    for key in ("step", "samples", "t"):
        if not is_number(row.get(key)):
            return f"an object with a number {key!r}, not {kind(row.get(key))}"
    for key, value in row.items():
        if not (value is None or is_number(value)):
            return f"an object of numbers, but {key!r} is {kind(value)}"
    return None


def _rank_totals(row: Any) -> str | None:
    if not isinstance(row, dict):
        return f"an object, not {kind(row)}"
    for key in RANK_REQUIRED:
        if key not in row:
            return f"an object with {key!r}"
    for key, value in row.items():
        if key not in RANK_CHECKS:
            return f"an object of {', '.join(RANK_CHECKS)}, but it has {key!r}"
        if not RANK_CHECKS[key](value):
            return f"an object whose {key!r} is a {'text' if key == 'role' else 'number'}, " \
                   f"not {kind(value)}"
    return None


def _lost(entry: Any) -> str | None:
    if not isinstance(entry, dict) or not is_int(entry.get("rank")):
        return "an object with an integer 'rank'"
    if "step" in entry and not is_int(entry["step"]):
        return f"an object whose 'step' is an integer, not {kind(entry['step'])}"
    if "how" in entry and not isinstance(entry["how"], str):
        return f"an object whose 'how' is a text, not {kind(entry['how'])}"
    return None


def _events(value: Any) -> str | None:
    if not isinstance(value, dict) or not isinstance(value.get("fields"), list):
        return f'an object with "fields" and "rows", not {kind(value)}'
    names = value["fields"]
    if sorted(map(str, names)) != sorted(EVENT_CHECKS) or len(set(names)) != len(names):
        return f"an object whose fields are {list(EVENT_CHECKS)}, not {names}"
    rows = value.get("rows")
    if not isinstance(rows, list):
        return f'an object whose "rows" is a list, not {kind(rows)}'
    checks = [EVENT_CHECKS[name] for name in names]
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(names):
            return f"an object whose rows are lists of {len(names)} values; row {i} is not"
        for name, check, x in zip(names, checks, row):
            if not check(x):
                return f"an object of events, but row {i} has {name} = {kind(x)}"
    return None


#: every field of a record: (required, check); unknown fields are ignored
FIELDS: dict[str, tuple[bool, Check]] = {
    "config": (True, one_of(lambda v: isinstance(v, dict), "an object of Experiment fields")),
    "status": (True, one_of(lambda v: isinstance(v, str), "a text")),
    "error": (True, one_of(lambda v: v is None or isinstance(v, str), "a text or null")),
    "error_detail": (False, one_of(lambda v: v is None or isinstance(v, str), "a text or null")),
    "wall_time_s": (True, one_of(is_number, "a number of seconds")),
    "first_event_s": (False, one_of(lambda v: v is None or is_number(v), "a number or null")),
    "history": (True, list_of(_history_row, "rows")),
    "ranks": (True, list_of(_rank_totals, "per-rank totals")),
    "events": (True, _events),
    "staleness": (True, list_of(one_of(is_int, "an integer"), "integers")),
    "lost": (False, list_of(_lost, "lost ranks")),
    "applied": (False, list_of(list_of(one_of(is_int, "a rank"), "ranks"), "lists of ranks")),
    "dropped": (False, list_of(list_of(one_of(is_int, "a rank"), "ranks"), "lists of ranks")),
    "meta": (False, one_of(lambda v: isinstance(v, dict), "an object")),
}


def read_fields(path: Path, version: int) -> dict[str, Any]:
    """The checked top-level fields of the record at ``path`` (format ``version`` or older);
    an optional field that is absent is absent from the result."""
    data = parse(path)
    if not isinstance(data, dict):
        raise RecordError(path, f"holds {kind(data)}, not the JSON object a record is",
                          NOT_A_RECORD)
    fmt = data.get("format")
    if not is_int(fmt) or fmt < 1:
        problem = "has no \"format\" field" if "format" not in data else \
            f"has \"format\": {json.dumps(fmt)[:40]}, not a format number"
        raise RecordError(path, f"{problem}: it is not a record ddlkit wrote", NOT_A_RECORD)
    if fmt > version:
        raise RecordError(path, f"was written by a newer ddlkit (record format {fmt}; this "
                          f"ddlkit reads format {version} and older)",
                          "upgrade ddlkit (git pull, then make install) to read it")
    for name, (required, check) in FIELDS.items():
        if name not in data:
            if required:
                raise RecordError(path, f'has no "{name}" field', EDITED)
            continue
        wrong = check(data[name])
        if wrong is not None:
            raise RecordError(path, f'"{name}" should be {wrong}', EDITED)
    return {name: data[name] for name in FIELDS if name in data}


def parse(path: Path) -> Any:
    """The JSON in ``path``; a :class:`RecordError` says whether it is cut off or damaged."""
    raw = path.read_bytes()
    if not raw.strip():
        raise RecordError(path, "is empty", CUT_OFF)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RecordError(path, f"is not text (byte {err.start} is not UTF-8), so it is not "
                          "a record", NOT_A_RECORD) from None
    try:
        return json.loads(text)
    except RecursionError:
        raise RecordError(path, "is nested too deeply to be a record", NOT_A_RECORD) from None
    except json.JSONDecodeError as err:
        body, rest = text.strip(), text[err.pos:].strip()
        ends_early = (err.msg.startswith("Unterminated string")  # or a literal cut short:
                      or re.fullmatch(r"[-+.\w]*", rest) is not None)
        if body.startswith("{") and ends_early:
            raise RecordError(path, f"was cut off: it ends at line {body.count(chr(10)) + 1} "
                              "in the middle of the record", CUT_OFF) from None
        raise RecordError(path, f"is not valid JSON (line {err.lineno}, column {err.colno}: "
                          f"{err.msg})", EDITED if body.startswith("{") else NOT_A_RECORD
                          ) from None
    except ValueError as err:  # a number too long for Python to read
        raise RecordError(path, f"cannot be read as JSON ({err})", EDITED) from None


def read_params(path: Path) -> np.ndarray:
    """The final parameters in ``path`` (a ``.npy`` file), without unpickling anything."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise RecordError(path, f"cannot be read as a NumPy array ({err})", CUT_OFF) from None
    if not isinstance(loaded, np.ndarray):  # an .npz archive under the .npy name
        loaded.close()
        raise RecordError(path, "holds an .npz archive, not one array", EDITED)
    if loaded.ndim != 1 or not np.issubdtype(loaded.dtype, np.number):
        raise RecordError(path, f"holds a {loaded.dtype} array of shape {loaded.shape}, not "
                          "the flat vector of numbers final parameters are", EDITED)
    return loaded
