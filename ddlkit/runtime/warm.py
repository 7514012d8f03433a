"""Warm start for worker processes: importing this module does the slow first-time work.

The forkserver imports it once before forking any worker (see :mod:`ddlkit.runtime.processes`),
so workers inherit the loaded offline datasets (scikit-learn's, and the ``text`` corpus cut
from ``pydoc_data``) instead of each importing and parsing them again. Nothing else should
import it.
"""
from ddlkit.data.datasets import DATASETS, load_dataset

for _name in DATASETS:
    load_dataset(_name)
