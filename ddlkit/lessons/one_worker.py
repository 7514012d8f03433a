"""The gradient of the squared loss for linear regression, derived by hand.

The source article's worked example (§4.2) is linear regression with the per-sample loss
L(θ; x, y) = (θᵀx − y)². By the chain rule, for each parameter θ_j

    ∂L/∂θ_j = 2 (θᵀx − y) · x_j,

and the mean over a batch of n samples, written for all parameters at once, is

    ∇θ = (2/n) · Xᵀ (Xθ − y).

The bias b is the parameter of a constant feature x_0 = 1, so ∂L/∂b = 2 (θᵀx + b − y).
The article's version, (1/|X_i|) Σ (θᵀx − y), drops the factor x_j (and the 2): it gives
every parameter the same number. :func:`article_formula` computes it, so a notebook can show
how far it is from the truth. :func:`check_against_autograd` compares the hand derivation
with PyTorch's autograd on the kit's own model, the independent reference.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import torch

from ddlkit.data import DATASETS, load_dataset
from ddlkit.train.models import build_model, loss_fn


def squared_loss_gradient(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor,
                          y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂/∂w, ∂/∂b) of the mean squared loss (1/n) Σ (wᵀx + b − y)², vectorised.

    ``weight`` has d elements (any shape, e.g. nn.Linear's [1, d]), ``bias`` one, ``x`` is
    [n, d] and ``y`` has n elements. The residual r = Xw + b − y gives ∂/∂w = (2/n) Xᵀr
    and ∂/∂b = (2/n) Σ r; both come back in the shapes of ``weight`` and ``bias``.
    """
    n = x.shape[0]
    residual = x @ weight.reshape(-1) + bias.reshape(()) - y.reshape(-1)
    grad_weight = (2.0 / n) * (x.T @ residual)
    grad_bias = (2.0 / n) * residual.sum()
    return grad_weight.reshape(weight.shape), grad_bias.reshape(bias.shape)


def article_formula(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor,
                    y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The source article's §4.2 gradient, (1/n) Σ (wᵀx + b − y) for every parameter.

    Wrong on purpose, for comparison: it lacks the factor x_j and the 2, so every weight
    gets the same value, whatever its feature.
    """
    residual = x @ weight.reshape(-1) + bias.reshape(()) - y.reshape(-1)
    mean = residual.mean()
    return torch.full_like(weight, float(mean)), mean.reshape(bias.shape)


def autograd_gradient(model: torch.nn.Module, x: torch.Tensor,
                      y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The gradient PyTorch's autograd finds for the kit's loss, one tensor per parameter."""
    loss = loss_fn(DATASETS["linreg"], model(x), y.reshape(-1, 1))
    return torch.autograd.grad(loss, list(model.parameters()))


@dataclass(frozen=True)
class GradientCheck:
    """Hand, autograd and article gradients of one batch, flattened as [w_1 … w_d, b]."""

    names: tuple[str, ...]
    hand: np.ndarray
    autograd: np.ndarray
    article: np.ndarray
    batch_size: int

    @property
    def max_abs_diff(self) -> float:
        """Largest |hand − autograd| over all parameters."""
        return float(np.abs(self.hand - self.autograd).max())

    @property
    def article_max_abs_diff(self) -> float:
        """Largest |article formula − autograd| over all parameters."""
        return float(np.abs(self.article - self.autograd).max())

    def matches(self, rtol: float = 1e-10, atol: float = 1e-12) -> bool:
        """Whether the hand gradient equals autograd's (float64, so the tolerance is tight)."""
        return bool(np.allclose(self.hand, self.autograd, rtol=rtol, atol=atol))

    def __str__(self) -> str:
        lines = [f"gradient of the mean squared loss over a batch of {self.batch_size}",
                 f"{'parameter':<10} {'by hand':>12} {'autograd':>12} {'article §4.2':>13}"]
        for name, h, a, s in zip(self.names, self.hand, self.autograd, self.article):
            lines.append(f"{name:<10} {h:>12.6f} {a:>12.6f} {s:>13.6f}")
        lines.append(f"largest |by hand − autograd| = {self.max_abs_diff:.1e}; "
                     f"largest |article − autograd| = {self.article_max_abs_diff:.2f}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("parameter", "by hand", "autograd",
                                                 "article §4.2 (no x<sub>j</sub>)"))
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{h:.6f}</td><td>{a:.6f}</td>"
                       f"<td>{s:.6f}</td></tr>"
                       for n, h, a, s in zip(self.names, self.hand, self.autograd, self.article))
        return (f"<table><caption>gradient of the mean squared loss, batch of "
                f"{self.batch_size}</caption><tr>{head}</tr>{rows}</table>"
                f"<p>largest |by hand − autograd| = {self.max_abs_diff:.1e}; "
                f"largest |article − autograd| = {self.article_max_abs_diff:.2f}</p>")


def check_against_autograd(batch_size: int = 32, seed: int = 0) -> GradientCheck:
    """Compare the hand gradient with autograd on a random ``linreg`` batch, in float64.

    The model is the kit's ``linear`` model at its seeded initial parameters, exactly what
    step 1 of a run starts from; the batch is ``batch_size`` training samples drawn with
    ``seed``.
    """
    data = load_dataset("linreg", dtype=torch.float64)
    if not 1 <= batch_size <= data.info.n_train:
        raise ValueError(f"batch_size: {batch_size} is not allowed; it must lie in "
                         f"[1, {data.info.n_train}]")
    idx = np.random.default_rng(seed).choice(data.info.n_train, batch_size, replace=False)
    x, y = data.x_train[idx], data.y_train[idx].reshape(-1)
    model = build_model("linear", data.info, hidden=1, seed=seed, dtype=torch.float64)
    if not isinstance(model, torch.nn.Linear):  # narrows the type for .weight and .bias
        raise TypeError(f"the 'linear' model is an nn.Linear, not {type(model).__name__}")
    weight, bias = model.weight.detach(), model.bias.detach()

    def flat(parts: tuple[torch.Tensor, ...]) -> np.ndarray:
        return torch.cat([p.reshape(-1) for p in parts]).detach().numpy()

    names = tuple(f"w_{j + 1}" for j in range(weight.numel())) + ("b",)
    return GradientCheck(names=names,
                         hand=flat(squared_loss_gradient(weight, bias, x, y)),
                         autograd=flat(autograd_gradient(model, x, y)),
                         article=flat(article_formula(weight, bias, x, y)),
                         batch_size=batch_size)
