"""Warm start for worker processes: importing this module does the slow first-time work.

The forkserver imports it once before forking any worker (see :mod:`ddlkit.launcher`),
so workers inherit its results instead of each paying for them again: the offline
datasets are loaded, and every optimiser takes one step on a scratch tensor (the first
``step()`` lazily imports ``torch._dynamo``, which costs seconds). Nothing else should
import it.
"""
import torch

from ddlkit.data.datasets import DATASETS, load_dataset
from ddlkit.models import make_optimizer

for _name in DATASETS:
    load_dataset(_name)

for _opt in ("sgd", "momentum", "adam"):
    _p = torch.zeros(4)
    _p.grad = torch.ones(4)
    make_optimizer(_opt, _p, 0.1, 0.9).step()
del _p, _opt, _name
