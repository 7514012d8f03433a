"""The prepared-dataset cache: same arrays as a fresh preparation, and no scikit-learn import."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ddlkit.data import cache
from ddlkit.data.datasets import _split_and_standardise


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DDLKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("name", ["iris", "digits", "linreg"])
def test_cached_arrays_equal_a_fresh_preparation(name: str, cache_dir: Path) -> None:
    assert cache.load(name) is None
    fresh = _split_and_standardise(name)
    cache.save(name, fresh)
    loaded = cache.load(name)
    assert loaded is not None
    for a, b in zip(fresh, loaded):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    assert [p.name for p in cache_dir.iterdir()] == [cache.path(name).name]  # no temp left


def test_a_broken_or_unwritable_cache_is_ignored(cache_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir.mkdir()
    cache.path("iris").write_bytes(b"not an npz file")
    assert cache.load("iris") is None
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("DDLKIT_CACHE", str(blocker / "sub"))
    cache.save("iris", _split_and_standardise("iris"))  # does not raise
    assert cache.load("iris") is None


def test_second_cold_start_does_not_import_sklearn(cache_dir: Path) -> None:
    code = ("import sys; from ddlkit.data import load_dataset; d = load_dataset('digits'); "
            "print(int('sklearn' in sys.modules), float(d.x_train.sum()))")
    env = {**os.environ, "DDLKIT_CACHE": str(cache_dir)}
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=120, check=True).stdout.split() for _ in range(2)]
    assert runs[0][0] == "1" and runs[1][0] == "0"
    assert runs[0][1] == runs[1][1]  # the same data either way
