"""Tests of ddlkit.config: every bad Experiment is refused at construction, by name.

The bad values and the expected field names are written out by hand from the rules in the
Experiment docstring and the dataset sizes (iris has 112 training samples and 3 classes; text
has 6 topics), not derived from the validation code.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest

from ddlkit import ConfigError, Experiment


def bad(field: str, value: Any, shown: Any = None, **others: Any) -> Any:
    """A table row: ``field=value`` (with ``others``) must be refused, naming ``field``.

    ``shown`` is the offending value the message must contain, when it is not ``value``
    itself (for example the one negative delay in a list).
    """
    kwargs = {**others, field: value}
    shown = value if shown is None else shown
    return pytest.param(kwargs, field, shown, id=f"{field}={value!r}"
                        + "".join(f",{k}={v!r}" for k, v in others.items()))


BAD_CONFIGS = [
    # enum values
    bad("mode", "ssync"),
    bad("mode", "SYNC"),
    bad("dataset", "mnist"),
    bad("model", "resnet"),
    bad("sharding", "random"),
    bad("optimizer", "rmsprop"),
    bad("allreduce_impl", "tree"),
    bad("dtype", "float16"),
    # ranges and types of numbers
    bad("workers", 0),
    bad("workers", 17),
    bad("workers", True),
    bad("workers", 2.0),
    bad("steps", False),
    bad("steps", 0),
    bad("batch_size", True),
    bad("hidden", 0),
    bad("eval_every", 0),
    bad("seed", -1),
    bad("lr", math.nan),
    bad("lr", math.inf),
    bad("lr", -0.1),
    bad("lr", 0.0),
    bad("lr", "0.1"),
    bad("momentum", 1.0),
    bad("dirichlet_alpha", 0.0),
    bad("size_ratio", 0.5),
    bad("timeout_s", 0.5),
    # combinations
    bad("batch_size", 60, dataset="iris", workers=2),   # 120 > 112 training samples
    bad("batch_size", 8, dataset="iris", workers=16),   # 128 > 112
    bad("sharding", "label-skew", dataset="linreg"),   # regression has no labels
    bad("sharding", "dirichlet", dataset="linreg"),
    bad("classes_per_worker", 4, dataset="iris", sharding="label-skew"),  # iris has 3
    bad("classes_per_worker", 0),
    bad("model", "cnn", dataset="iris"),     # a CNN needs images: digits only
    bad("model", "cnn", dataset="linreg"),
    bad("model", "rnn"),                     # the language model needs dataset="text"
    bad("model", "mlp", dataset="text"),     # text is character ids: only the rnn reads it
    bad("classes_per_worker", 7, dataset="text", model="rnn", sharding="label-skew"),  # 6 topics
    # straggler delays
    bad("worker_delays", (0.0, 0.1, 0.2), shown=[0.0, 0.1, 0.2], workers=2),
    bad("worker_delays", (0.0,), shown=[0.0], workers=2),
    bad("worker_delays", (0.0, -0.1), shown=-0.1, workers=2),
    bad("worker_delays", (0.0, math.nan), shown=math.nan, workers=2),
    bad("worker_delays", "0,0", workers=2),
    # the staleness bound: a whole number 0…1_000_000, or None for ∞
    bad("staleness_bound", -1),
    bad("staleness_bound", 1_000_001),
    bad("staleness_bound", 1.5),
    bad("staleness_bound", True),
    bad("staleness_bound", "inf"),
    # keys from_dict does not know
    bad("learning_rate", 0.1),
    bad("num_workers", 4),
]


@pytest.mark.parametrize(("kwargs", "field", "shown"), BAD_CONFIGS)
def test_bad_config_is_refused_naming_field_and_value(
        kwargs: dict[str, Any], field: str, shown: Any, no_process_started: None) -> None:
    with pytest.raises(ConfigError) as info:
        Experiment.from_dict(kwargs)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.field == field
    assert field in str(err)
    assert repr(shown) in str(err)
    assert err.allowed and err.allowed in str(err)


def test_constructor_refuses_what_from_dict_refuses(no_process_started: None) -> None:
    known = {f.name for f in dataclasses.fields(Experiment)}
    rows = [p.values for p in BAD_CONFIGS if set(p.values[0]) <= known]
    assert len(rows) >= 25
    for kwargs, field, _ in rows:
        with pytest.raises(ConfigError) as info:
            Experiment(**kwargs)
        assert info.value.field == field, kwargs


def test_table_is_large_and_distinct() -> None:
    ids = [p.id for p in BAD_CONFIGS]
    assert len(ids) >= 25 and len(set(ids)) == len(ids)


# -- conversions ---------------------------------------------------------------------------
GOOD_CONFIGS = [
    Experiment(),
    Experiment(mode="async", workers=3, dataset="iris", model="linear",
               worker_delays=(0.0, 0.0, 0.05), timeout_s=30.0),
    Experiment(mode="allreduce", workers=4, sharding="dirichlet", dirichlet_alpha=0.3,
               optimizer="adam", dtype="float64", allreduce_impl="gloo", seed=7),
    Experiment(dataset="linreg", sharding="unbalanced", size_ratio=2.5, workers=1),
]


@pytest.mark.parametrize("exp", GOOD_CONFIGS, ids=lambda e: e.label())
def test_round_trip_through_json(exp: Experiment) -> None:
    d = exp.to_dict()
    assert {f.name for f in dataclasses.fields(Experiment)} == set(d)
    assert Experiment.from_dict(d) == exp
    text = json.dumps(d)  # JSON-serialisable, no custom encoder needed
    back = Experiment.from_dict(json.loads(text))
    assert back == exp
    assert isinstance(back.worker_delays, tuple)
    assert hash(back) == hash(exp)


def test_delays_given_as_list_become_a_tuple() -> None:
    exp = Experiment(workers=2, worker_delays=[0, 0.1])  # type: ignore[arg-type]
    assert exp.worker_delays == (0, 0.1)
    assert exp.to_dict()["worker_delays"] == [0, 0.1]


def test_replace_validates_again() -> None:
    exp = Experiment(dataset="iris", workers=2)
    assert exp.replace(workers=3).workers == 3
    assert exp.workers == 2
    with pytest.raises(ConfigError) as info:
        exp.replace(workers=0)
    assert info.value.field == "workers"
    with pytest.raises(ConfigError) as info:
        exp.replace(batch_size=100)  # 200 > 112 iris training samples
    assert info.value.field == "batch_size"
    with pytest.raises(ConfigError):
        dataclasses.replace(exp, mode="gossip")


def test_experiment_is_frozen() -> None:
    exp = Experiment()
    with pytest.raises(dataclasses.FrozenInstanceError):
        exp.lr = 1.0  # type: ignore[misc]
    assert exp.lr == 0.1


# -- labels ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("exp", "label"), [
    (Experiment(), "sync · 2 workers · iid"),
    (Experiment(mode="allreduce", workers=1), "allreduce · 1 worker · iid"),
    (Experiment(mode="async", workers=4, sharding="dirichlet", dirichlet_alpha=0.3),
     "async · 4 workers · dirichlet α=0.3"),
    (Experiment(workers=3, dataset="iris", sharding="label-skew", classes_per_worker=1),
     "sync · 3 workers · label-skew 1/worker"),
    (Experiment(sharding="unbalanced", size_ratio=4.0), "sync · 2 workers · unbalanced ×4"),
    (Experiment(workers=3, worker_delays=(0, 0, 0.05)), "sync · 3 workers · iid · straggler"),
    (Experiment(workers=2, worker_delays=(0, 0)), "sync · 2 workers · iid"),
])
def test_label(exp: Experiment, label: str) -> None:
    assert exp.label() == label


# -- s = ∞: one representation, read through staleness_limit ------------------------------------
@pytest.mark.parametrize(("bound", "limit"), [
    (0, 0), (2, 2), (9, 9), (10, None), (11, None), (1_000_000, None), (None, None)])
def test_staleness_limit_is_none_for_unbounded(bound: int | None, limit: int | None) -> None:
    """steps=10: None, or any bound ≥ 10, never blocks a worker (s = ∞)."""
    exp = Experiment(mode="ssp", steps=10, staleness_bound=bound)
    assert exp.staleness_limit == limit
    assert exp.label().split(" · ")[1] == ("s=∞" if limit is None else f"s={limit}")


def test_unbounded_staleness_is_json_null_and_old_records_load() -> None:
    exp = Experiment(mode="ssp", staleness_bound=None)
    text = json.dumps(exp.to_dict())
    assert '"staleness_bound": null' in text
    assert Experiment.from_dict(json.loads(text)) == exp
    old = Experiment(mode="ssp", staleness_bound=1_000_000).to_dict()  # the panel's old ∞
    assert Experiment.from_dict(old).staleness_limit is None
    del old["staleness_bound"]  # a record from before the setting existed
    assert Experiment.from_dict(old).staleness_bound == 2
