"""The hand-derived squared-loss gradient against autograd, and the article's formula against both.

Reference values come from torch.autograd on an ordinary nn.Linear, and from a plain loop
over samples and parameters written straight from ∂(θᵀx − y)²/∂θ_j = 2(θᵀx − y)x_j.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ddlkit.lessons import one_worker as linreg_maths


def random_problem(n: int, d: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    weight = torch.randn(1, d, generator=g, dtype=torch.float64)
    bias = torch.randn(1, generator=g, dtype=torch.float64)
    return weight, bias, x, y


@pytest.mark.parametrize(("n", "d", "seed"), [(1, 1, 0), (5, 3, 1), (64, 8, 2), (7, 20, 3)])
def test_hand_gradient_equals_autograd(n: int, d: int, seed: int) -> None:
    weight, bias, x, y = random_problem(n, d, seed)
    layer = nn.Linear(d, 1).double()
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    loss = nn.functional.mse_loss(layer(x), y.reshape(-1, 1))
    loss.backward()
    grad_w, grad_b = linreg_maths.squared_loss_gradient(weight, bias, x, y)
    assert grad_w.shape == weight.shape and grad_b.shape == bias.shape
    torch.testing.assert_close(grad_w, layer.weight.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_b, layer.bias.grad, rtol=1e-12, atol=1e-12)


def test_hand_gradient_equals_the_per_sample_formula() -> None:
    weight, bias, x, y = random_problem(6, 4, 5)
    w, b, xs, ys = weight.reshape(-1).tolist(), float(bias), x.tolist(), y.tolist()
    expected_w = [0.0] * len(w)
    expected_b = 0.0
    for xi, yi in zip(xs, ys):
        r = sum(wj * xj for wj, xj in zip(w, xi)) + b - yi
        for j, xj in enumerate(xi):
            expected_w[j] += 2 * r * xj / len(xs)
        expected_b += 2 * r / len(xs)
    grad_w, grad_b = linreg_maths.squared_loss_gradient(weight, bias, x, y)
    np.testing.assert_allclose(grad_w.reshape(-1).numpy(), expected_w, rtol=1e-12)
    assert float(grad_b) == pytest.approx(expected_b, rel=1e-12)


def test_article_formula_gives_every_weight_the_same_value() -> None:
    weight, bias, x, y = random_problem(10, 5, 7)
    grad_w, grad_b = linreg_maths.article_formula(weight, bias, x, y)
    residual = x @ weight.reshape(-1) + bias - y
    assert torch.all(grad_w == grad_w.reshape(-1)[0])
    assert float(grad_b) == pytest.approx(float(residual.mean()))
    right_w, _ = linreg_maths.squared_loss_gradient(weight, bias, x, y)
    assert not torch.allclose(grad_w, right_w)


def test_check_against_autograd_on_the_kit_model() -> None:
    check = linreg_maths.check_against_autograd(batch_size=32, seed=0)
    assert check.names == tuple(f"w_{j}" for j in range(1, 9)) + ("b",)
    assert check.hand.shape == check.autograd.shape == check.article.shape == (9,)
    assert check.matches()
    assert check.max_abs_diff < 1e-12
    assert check.article_max_abs_diff > 1.0  # the article's formula is far off
    assert "article" in str(check) and "<table>" in check._repr_html_()


def test_check_uses_the_initial_model_of_a_run() -> None:
    """With the whole training set as the batch, the order of samples no longer matters,
    so the gradient can be rebuilt independently from the model a run starts with."""
    from ddlkit.data import load_dataset
    from ddlkit.train.models import build_model

    data = load_dataset("linreg", dtype=torch.float64)
    model = build_model("linear", data.info, hidden=1, seed=4, dtype=torch.float64)
    nn.functional.mse_loss(model(data.x_train), data.y_train).backward()
    expected = torch.cat([model.weight.grad.reshape(-1), model.bias.grad]).numpy()
    check = linreg_maths.check_against_autograd(batch_size=data.info.n_train, seed=4)
    np.testing.assert_allclose(check.autograd, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(check.hand, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch_size", [0, 901])
def test_bad_batch_size_is_refused(batch_size: int) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        linreg_maths.check_against_autograd(batch_size=batch_size)
