"""Old module paths (before the layout by layers) still import for one release, with a
warning that names the new path (``ddlkit/_moved.py``)."""
from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

from ddlkit._moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_still_imports_with_a_warning(old: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=MOVED[old][0].replace(".", r"\.")):
        module = importlib.import_module(old)
    for new in MOVED[old]:
        target = importlib.import_module(new)
        public = [n for n in vars(target) if not n.startswith("_")]
        missing = [n for n in public if not hasattr(module, n)]
        assert not missing, f"{old} lacks {missing} of {new}"


def test_a_single_move_is_the_same_module() -> None:
    """Monkeypatching or isinstance checks through the old path see the real module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import ddlkit.models as old  # noqa: F401 - the old path on purpose
    from ddlkit.train import models

    assert old is models


def test_old_names_a_script_used() -> None:
    """The imports an old script or notebook wrote, in a fresh interpreter."""
    code = ("from ddlkit.models import build_model\n"
            "from ddlkit.reference import large_batch_sgd\n"
            "from ddlkit.stragglers import RandomDelay, batch_sizes, step_times\n"
            "from ddlkit.lr_scaling import lr_at, scaling_experiments\n"
            "from ddlkit.comm.compression import ErrorFeedback, GradientCodec\n"
            "from ddlkit.comm.topk import TopK\n"
            "from ddlkit.context import Context, Reporter\n"
            "from ddlkit import tradeoffs, cost\n"
            "print(tradeoffs.time_to_loss.__module__, cost.n_params.__module__)\n")
    out = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", code],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ddlkit.analysis.metrics", "ddlkit.analysis.cost"]


def test_an_unknown_old_path_is_still_an_error() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("ddlkit.no_such_module")
