"""Exercise 12's end-to-end reference: one worker against 8 on the same 7,680 samples."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from ddlkit.analysis.reference import large_batch_sgd
from ddlkit.config import Experiment
from ddlkit.data import load_dataset
from ddlkit.train.models import batch_loss, build_model

SAMPLES = 32 * 8 * 30


def test_loss(exp: Experiment, params: np.ndarray) -> float:
    """Test loss of ``exp``'s model with the flat parameters ``params``."""
    data = load_dataset(exp.dataset)
    model = build_model(exp.model, data.info, exp.hidden, exp.seed, torch.float32)
    nn.utils.vector_to_parameters(torch.from_numpy(params), model.parameters())
    with torch.no_grad():
        return float(batch_loss(data.info, model, data.x_test, data.y_test)[0])


def race(schedule: Callable[[int], float]) -> tuple[float, float]:
    """(test loss of 1 worker at lr 0.05, test loss of 8 workers with ``schedule``)."""
    one = Experiment(mode="sync", workers=1, dataset="digits", model="mlp", batch_size=32,
                     lr=0.05, steps=SAMPLES // 32)
    many = one.replace(workers=8, steps=SAMPLES // (32 * 8))
    return (test_loss(one, large_batch_sgd(one)),
            test_loss(many, large_batch_sgd(many, lr_schedule=schedule)))
