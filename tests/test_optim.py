"""ddlkit's flat optimisers against torch.optim, the trusted reference."""
from __future__ import annotations

import pytest
import torch

from ddlkit.train.optim import make_optimizer


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_flat_optimizer_matches_torch(name: str) -> None:
    g = torch.Generator().manual_seed(0)
    start = torch.randn(50, generator=g)
    grads = [torch.randn(50, generator=g) for _ in range(20)]
    mine = start.clone()
    opt = make_optimizer(name, mine, lr=0.05, momentum=0.9)
    ref = start.clone().requires_grad_(True)
    torch_opt = {"sgd": lambda: torch.optim.SGD([ref], lr=0.05),
                 "momentum": lambda: torch.optim.SGD([ref], lr=0.05, momentum=0.9),
                 "adam": lambda: torch.optim.Adam([ref], lr=0.05)}[name]()
    for grad in grads:
        opt.step(grad)
        ref.grad = grad.clone()
        torch_opt.step()
    assert torch.allclose(mine, ref.detach(), atol=1e-6, rtol=0)
    assert (mine - start).abs().max() > 0.1  # it moved


def test_unknown_optimizer_is_named() -> None:
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        make_optimizer("rmsprop", torch.zeros(1), 0.1, 0.9)
