"""The source article's Iris example: its two bugs, measured, and the fix.

**Bug 1: softmax, then a loss that expects logits.** The article's network ends in a softmax
layer, so it outputs probabilities p = softmax(z), and its loss is told ``from_logits=True``,
so the loss applies softmax *again*: it computes cross-entropy(softmax(p)). Nothing raises;
training just goes worse:

- p lies in [0, 1], so softmax(p) can never be near one-hot. With K classes the loss cannot
  fall below ln(1 + (K − 1)/e) (0.551 for K = 3), however good the model (:func:`loss_floor`).
- The gradient reaching the logits z is the softmax Jacobian times a bounded vector. When the
  model is confidently *wrong* (p_true ≈ 0) that Jacobian is ≈ 0, so the samples that most
  need correcting get almost no gradient (:func:`gradient_by_margin`). With the logits
  passed straight to cross-entropy the gradient is p − onehot(y), largest exactly there.

**Bug 2: a distribution strategy that distributes nothing.** The article creates a
``MirroredStrategy`` but builds the model outside its scope and trains in a plain loop: no
replica, no split of the data, no averaging of gradients. One process does all the work.
The fix in ddlkit is a real run: N worker processes, each with its own shard, whose
gradients are averaged every step.

Everything here runs in this process; it is for the notebook's comparison, not for workers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch import nn

from ddlkit.data import load_dataset
from ddlkit.train.models import build_model, single_threaded

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: the article's training settings: Adam, learning rate 0.01, batches of 32
SEED_LR = 0.01
SEED_BATCH = 32
#: the article's hidden layers have 64 units; ddlkit's ``mlp`` has one such layer
SEED_HIDDEN = 64

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def article_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Bug 1: the article's loss. The softmax layer's output goes into a cross-entropy that
    applies softmax again (Keras ``from_logits=True``, like ``F.cross_entropy``)."""
    probabilities = torch.softmax(logits, dim=-1)  # the article's last layer
    return nn.functional.cross_entropy(probabilities, target)


def fixed_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The fix: the network outputs logits and the loss applies softmax once."""
    return nn.functional.cross_entropy(logits, target)


LOSSES: dict[str, LossFn] = {"article": article_loss, "fixed": fixed_loss}


def loss_floor(n_classes: int) -> float:
    """The lowest value :func:`article_loss` can take: ln(1 + (K − 1)/e), reached when the
    model is perfectly sure and right (p = onehot, so softmax(p) gives the true class
    e/(e + K − 1))."""
    if n_classes < 2:
        raise ValueError(f"n_classes: {n_classes} is not allowed; it must be >= 2")
    return math.log(1 + (n_classes - 1) / math.e)


def gradient_by_margin(margins: np.ndarray, n_classes: int = 3) -> dict[str, np.ndarray]:
    """Loss and gradient size with respect to the logits, for one sample, by its margin.

    The sample's logits are (m, 0, …, 0) with the true class first: m ≫ 0 is confidently
    right, m ≪ 0 confidently wrong. Returns ``margin`` and, for ``article`` and ``fixed``,
    the loss and the gradient norm ‖∂loss/∂z‖ (keys ``article_loss``, ``article_grad``,
    ``fixed_loss``, ``fixed_grad``), computed by autograd in float64.
    """
    m = torch.as_tensor(np.asarray(margins, dtype=np.float64))
    logits = torch.zeros(m.numel(), n_classes, dtype=torch.float64)
    logits[:, 0] = m
    logits.requires_grad_(True)
    target = torch.zeros(m.numel(), dtype=torch.int64)
    out: dict[str, np.ndarray] = {"margin": m.numpy()}
    for name, fn in LOSSES.items():
        # sum of per-sample losses: each row's gradient is that sample's own gradient
        per_sample = torch.stack([fn(logits[i:i + 1], target[i:i + 1]) for i in range(m.numel())])
        (grad,) = torch.autograd.grad(per_sample.sum(), logits)
        out[f"{name}_loss"] = per_sample.detach().numpy()
        out[f"{name}_grad"] = grad.norm(dim=1).numpy()
    return out


@dataclass(frozen=True)
class Curve:
    """One single-process training run on iris, measured on the test set at every step.

    ``test_loss`` is the true cross-entropy of the model's predictions and ``accuracy``
    the share predicted right, the same measures whichever loss trained the model;
    ``reported_loss`` is the training loss function's own value, what the article prints.
    """

    loss: str
    optimizer: str
    steps: list[int]
    test_loss: list[float]
    accuracy: list[float]
    reported_loss: list[float]

    @property
    def label(self) -> str:
        return f"{self.loss} loss · {self.optimizer}"


def train_one_process(loss: str, steps: int = 150, lr: float = SEED_LR,
                      optimizer: str = "adam", seed: int = 0) -> Curve:
    """Train ddlkit's iris ``mlp`` in this process for ``steps`` batches of 32 with ``loss``
    (``"article"`` or ``"fixed"``), walking a new shuffle of the training set every epoch.

    Both losses start from the same seeded model and see the same batches, so the only
    difference is the loss. ``optimizer`` is ``"adam"`` (the article's) or ``"sgd"``.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss: {loss!r} is not allowed; use one of {sorted(LOSSES)}")
    data = load_dataset("iris")
    model = build_model("mlp", data.info, SEED_HIDDEN, seed)
    params = list(model.parameters())
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr)
    else:
        raise ValueError(f"optimizer: {optimizer!r} is not allowed; use 'adam' or 'sgd'")
    rng = np.random.default_rng(seed)
    curve = Curve(loss, optimizer, [], [], [], [])

    def record(step: int) -> None:
        with torch.no_grad():
            logits = model(data.x_test)
            curve.steps.append(step)
            curve.test_loss.append(float(fixed_loss(logits, data.y_test)))
            curve.accuracy.append(float((logits.argmax(1) == data.y_test).double().mean()))
            curve.reported_loss.append(float(LOSSES[loss](logits, data.y_test)))

    with single_threaded():
        record(0)
        order = torch.empty(0, dtype=torch.int64)
        for step in range(1, steps + 1):
            if order.numel() < SEED_BATCH:  # a new epoch
                order = torch.from_numpy(rng.permutation(data.info.n_train))
            idx, order = order[:SEED_BATCH], order[SEED_BATCH:]
            opt.zero_grad()
            LOSSES[loss](model(data.x_train[idx]), data.y_train[idx]).backward()
            opt.step()
            record(step)
    return curve


def bug1_figure(margins: np.ndarray | None = None, curves: list[Curve] | None = None
                ) -> Figure:
    """Left: loss by margin; middle: gradient size by margin (:func:`gradient_by_margin`);
    right: the true test cross-entropy of ``curves`` by step, if given. Returns a Figure."""
    from ddlkit.plots._style import new_figure, run_line, style

    margins = np.linspace(-8, 8, 161) if margins is None else margins
    g = gradient_by_margin(margins)
    labels = {"article": "article: softmax, then from_logits loss", "fixed": "fixed: logits"}
    with style():
        fig = new_figure(16 if curves else 11, 4.6)
        axes = fig.subplots(1, 3 if curves else 2)
        for i, name in enumerate(("article", "fixed")):
            line = {**run_line(i), "marker": None}
            axes[0].plot(g["margin"], g[f"{name}_loss"], label=labels[name], **line)
            axes[1].plot(g["margin"], g[f"{name}_grad"], label=labels[name], **line)
        axes[0].axhline(loss_floor(3), color="#444444", linestyle=":", linewidth=1.4,
                        label=f"floor of the article's loss ({loss_floor(3):.3f})")
        axes[0].set_title("loss of one sample")
        axes[0].set_ylabel("cross-entropy (nats)")
        axes[1].set_title("gradient reaching the logits")
        axes[1].set_ylabel("‖∂loss/∂logits‖")
        for ax in axes[:2]:
            ax.set_xlabel("margin: true logit − other logits (← wrong · right →)")
        axes[0].legend(loc="upper right", fontsize=10)
        if curves:
            for c in curves:
                colour = run_line(0 if c.loss == "article" else 1)["color"]
                axes[2].plot(c.steps, c.test_loss, label=c.label, color=colour,
                             linestyle="-" if c.optimizer == "sgd" else "--")
            axes[2].set_title("training on iris, one process")
            axes[2].set_xlabel("step (batch of 32)")
            axes[2].set_ylabel("test cross-entropy (nats)")
            axes[2].set_yscale("log")
            axes[2].legend(loc="upper right", fontsize=10)
    return fig
