"""The models, and a flat view of their parameters that strategies send as one buffer."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from ddlkit.data.datasets import DatasetInfo

LSTMState = tuple[torch.Tensor, torch.Tensor]


#: character embedding size of the ``rnn`` model
EMBEDDING_DIM = 16


class DigitsCNN(nn.Module):
    """A small CNN for 8×8 images given as flat features (the ``digits`` data).

    conv 3×3 (1 → c) · ReLU · max-pool 2 → conv 3×3 (c → 2c) · ReLU · max-pool 2 → linear.
    With c = hidden // 8 the image shrinks 8×8 → 4×4 → 2×2, so ``hidden`` features (for
    a multiple of 8) reach the linear layer that outputs the class logits.
    """

    def __init__(self, image_shape: tuple[int, ...], n_classes: int, hidden: int) -> None:
        super().__init__()
        channels, height, width = image_shape
        c = max(1, hidden // 8)
        self.image_shape = tuple(image_shape)
        self.features = nn.Sequential(
            nn.Conv2d(channels, c, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten())
        self.classify = nn.Linear(2 * c * (height // 4) * (width // 4), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x.reshape(-1, *self.image_shape)))


class CharLSTM(nn.Module):
    """A character-level language model: embedding → one LSTM layer → logits per position.

    ``forward(ids)`` takes character ids [n, T] and returns next-character logits
    [n, T, vocab]: position t has read characters 0…t. ``step`` does the same from a given
    LSTM state, for generating text one character at a time. (An LSTM, not a GRU: on CPU
    PyTorch's LSTM runs about three times faster per step.)
    """

    def __init__(self, vocab_size: int, hidden: int, embedding_dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.step(ids, None)[0]

    def step(self, ids: torch.Tensor, state: LSTMState | None
             ) -> tuple[torch.Tensor, LSTMState]:
        """(logits [n, T, vocab], the LSTM state after the last position), from ``state``."""
        out, state = self.lstm(self.embed(ids), state)
        return self.out(out), state


def build_model(name: str, info: DatasetInfo, hidden: int, seed: int,
                dtype: torch.dtype = torch.float32) -> nn.Module:
    """``linear`` (linear/softmax regression), ``mlp`` (one hidden ReLU layer), ``cnn``
    (:class:`DigitsCNN`, for image data) or ``rnn`` (:class:`CharLSTM`, for text).

    Initialisation is seeded and leaves the caller's global RNG untouched, so every rank
    (and a single-process reference) builds the identical model from the same seed.
    Classification models output logits: the loss applies the softmax itself.
    """
    outputs = info.n_classes if info.is_classification else 1
    if (name == "rnn") != info.is_text or (name == "cnn" and not info.image_shape):
        raise ValueError(f"model={name!r} cannot train on dataset {info.name!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "linear":
            model: nn.Module = nn.Linear(info.n_features, outputs)
        elif name == "mlp":
            model = nn.Sequential(nn.Linear(info.n_features, hidden), nn.ReLU(),
                                  nn.Linear(hidden, outputs))
        elif name == "cnn":
            model = DigitsCNN(info.image_shape, outputs, hidden)
        elif name == "rnn":
            model = CharLSTM(info.vocab_size, hidden)
        else:
            raise ValueError(f"model={name!r} is not allowed: one of 'linear', 'mlp', 'cnn', "
                             "'rnn'")
    return model.to(dtype)


def loss_fn(info: DatasetInfo, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean loss over a batch: cross-entropy on logits, or squared error for regression.

    Cross-entropy takes raw logits. Applying softmax first and then a loss that expects
    logits (the source article's Iris bug) silently squashes the gradients. For text the
    output is [n, T, vocab] logits, the target [n, T] next characters, and the mean runs
    over all n·T predicted characters.
    """
    if info.is_text:
        return nn.functional.cross_entropy(output.reshape(-1, output.shape[-1]),
                                           target.reshape(-1))
    if info.is_classification:
        return nn.functional.cross_entropy(output, target)
    return nn.functional.mse_loss(output, target)


def batch_loss(info: DatasetInfo, model: nn.Module, x: torch.Tensor,
               y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss, output) of ``model`` on one batch of ``info``'s data.

    A text sample is a character sequence: the model reads all but its last character and
    is scored on predicting characters 1…T (``y``, the topic, plays no part). Any other
    sample is scored on its target ``y``.
    """
    if info.is_text:
        output = model(x[:, :-1])
        return loss_fn(info, output, x[:, 1:]), output
    output = model(x)
    return loss_fn(info, output, y), output


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the torch work inside on one intra-op thread, then restore the thread count.

    For small models trained or used in the notebook's own process (references, sampling):
    on a busy 2-core machine their small operations ran 10–40× slower on two threads than on
    one, the threads spinning while they wait for each other. Workers always use one.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
