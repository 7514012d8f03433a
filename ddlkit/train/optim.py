"""Optimisers on one flat parameter vector, written out so learners can read them.

They follow the update rules PyTorch documents for ``torch.optim.SGD`` and
``torch.optim.Adam`` (the tests check them against those), without the machinery a
general optimiser needs, which also keeps ``torch._dynamo`` out of worker start-up.
"""
from __future__ import annotations

import math
from typing import Any

import torch


class FlatOptimizer:
    """Base: owns a flat parameter tensor ``param`` and updates it from ``grad`` in place."""

    def __init__(self, param: torch.Tensor, lr: float) -> None:
        self.param = param
        self.lr = lr

    @torch.no_grad()
    def step(self, grad: torch.Tensor, gradients: int = 1) -> None:
        """Update ``param`` from ``grad``. ``gradients`` is how many workers' gradients
        this update folds in; plain optimisers ignore it, a learning-rate schedule counts
        it (see :class:`ddlkit.train.schedule.Scheduled`)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The optimiser's own state (not the parameters), for checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class SGD(FlatOptimizer):
    """θ ← θ − η g (Robbins & Monro 1951)."""

    @torch.no_grad()
    def step(self, grad: torch.Tensor, gradients: int = 1) -> None:
        self.param.add_(grad, alpha=-self.lr)


class Momentum(FlatOptimizer):
    """Heavy-ball momentum as in PyTorch: v ← μ v + g, θ ← θ − η v (Polyak 1964)."""

    def __init__(self, param: torch.Tensor, lr: float, momentum: float) -> None:
        super().__init__(param, lr)
        self.momentum = momentum
        self.velocity: torch.Tensor | None = None

    @torch.no_grad()
    def step(self, grad: torch.Tensor, gradients: int = 1) -> None:
        if self.velocity is None:
            self.velocity = grad.clone()
        else:
            self.velocity.mul_(self.momentum).add_(grad)
        self.param.add_(self.velocity, alpha=-self.lr)

    def state_dict(self) -> dict[str, Any]:
        return {"velocity": self.velocity}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        v = state["velocity"]
        self.velocity = None if v is None else v.clone()


class Adam(FlatOptimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1) with bias correction, β=(0.9, 0.999), ε=1e-8."""

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(param, lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.t = 0
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)

    @torch.no_grad()
    def step(self, grad: torch.Tensor, gradients: int = 1) -> None:
        self.t += 1
        self.m.lerp_(grad, 1 - self.beta1)
        self.v.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        bias1 = 1 - self.beta1 ** self.t
        bias2 = 1 - self.beta2 ** self.t
        denom = (self.v.sqrt() / math.sqrt(bias2)).add_(self.eps)
        self.param.addcdiv_(self.m, denom, value=-self.lr / bias1)

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "m": self.m, "v": self.v}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])
        self.m.copy_(state["m"])
        self.v.copy_(state["v"])


def make_optimizer(name: str, param: torch.Tensor, lr: float, momentum: float) -> FlatOptimizer:
    """``sgd``, ``momentum`` or ``adam`` over the flat tensor ``param``."""
    if name == "sgd":
        return SGD(param, lr)
    if name == "momentum":
        return Momentum(param, lr, momentum)
    if name == "adam":
        return Adam(param, lr)
    raise ValueError(f"optimizer={name!r} is not allowed: one of 'sgd', 'momentum', 'adam'")
