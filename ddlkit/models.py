"""The models, and a flat view of their parameters that strategies send as one buffer."""
from __future__ import annotations

import torch
from torch import nn

from ddlkit.data.datasets import DatasetInfo

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def build_model(name: str, info: DatasetInfo, hidden: int, seed: int,
                dtype: torch.dtype = torch.float32) -> nn.Module:
    """``linear`` (linear/softmax regression) or ``mlp`` (one hidden ReLU layer).

    Initialisation is seeded and leaves the caller's global RNG untouched, so every rank
    (and a single-process reference) builds the identical model from the same seed.
    Classification models output logits: the loss applies the softmax itself.
    """
    outputs = info.n_classes if info.is_classification else 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "linear":
            model: nn.Module = nn.Linear(info.n_features, outputs)
        elif name == "mlp":
            model = nn.Sequential(nn.Linear(info.n_features, hidden), nn.ReLU(),
                                  nn.Linear(hidden, outputs))
        else:
            raise ValueError(f"model={name!r} is not allowed: one of 'linear', 'mlp'")
    return model.to(dtype)


def loss_fn(info: DatasetInfo, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean loss over a batch: cross-entropy on logits, or squared error for regression.

    Cross-entropy takes raw logits. Applying softmax first and then a loss that expects
    logits (the source article's Iris bug) silently squashes the gradients.
    """
    if info.is_classification:
        return nn.functional.cross_entropy(output, target)
    return nn.functional.mse_loss(output, target)


class FlatModel:
    """A module whose parameters live in one contiguous buffer, ``flat``.

    Each parameter is a view into ``flat``, so receiving new parameters into ``flat``
    updates the module with no copy. ``extra`` elements after the parameters hold a
    message header (e.g. a version number) so a whole message is one receive.
    """

    def __init__(self, module: nn.Module, extra: int = 0) -> None:
        self.module = module
        self.params = list(module.parameters())
        self.numel = sum(p.numel() for p in self.params)
        dtype = self.params[0].dtype
        self.buffer = torch.zeros(self.numel + extra, dtype=dtype)
        self.flat = self.buffer[: self.numel]
        self.tail = self.buffer[self.numel:]
        offset = 0
        with torch.no_grad():
            for p in self.params:
                k = p.numel()
                self.flat[offset: offset + k].copy_(p.reshape(-1))
                p.data = self.flat[offset: offset + k].view_as(p)
                offset += k

    def gradient_into(self, loss: torch.Tensor, out: torch.Tensor) -> None:
        """Backpropagate ``loss`` and write the flat gradient into ``out`` (length numel)."""
        grads = torch.autograd.grad(loss, self.params)
        torch.cat([g.reshape(-1) for g in grads], out=out)
