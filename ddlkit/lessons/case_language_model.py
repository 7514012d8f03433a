"""The character language model after training: its bits per character, and text it writes.

- :func:`bits_per_char` turns a test loss in nats per character (what cross-entropy
  gives) into bits per character: loss / ln 2.
- :func:`unigram_bits_per_char` is the baseline: the entropy of the test text's own
  character frequencies, H = −Σ_c p(c) log₂ p(c). It is the best any model can do that
  ignores context (Shannon 1951, "Prediction and entropy of printed English"); a language
  model earns its keep by going clearly below it.
- :func:`sample` rebuilds the model from a run's final parameters and lets it write;
  :func:`sample_widget` does it from a prompt box and a temperature slider.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch import nn

from ddlkit.config import DTYPES, Experiment
from ddlkit.data import load_dataset
from ddlkit.data.text import TOPIC_GROUPS, decode, encode
from ddlkit.train.models import CharLSTM, batch_loss, build_model, single_threaded
from ddlkit.train.trainer import bits_per_char

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ddlkit.runtime.result import RunResult


def unigram_bits_per_char(split: str = "test") -> float:
    """Entropy in bits of the character frequencies of the ``text`` split's predicted
    characters (every character of a sequence but the first, as the model is scored)."""
    if split not in ("train", "test"):
        raise ValueError(f"split: {split!r} is not allowed; use 'train' or 'test'")
    data = load_dataset("text")
    ids = (data.x_test if split == "test" else data.x_train)[:, 1:].reshape(-1).numpy()
    p = np.bincount(ids, minlength=data.info.vocab_size) / ids.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def language_model(params: np.ndarray | torch.Tensor, exp: Experiment) -> CharLSTM:
    """The ``rnn`` model of ``exp`` holding ``params`` (e.g. ``result.final_params``)."""
    if exp.model != "rnn":
        raise ValueError(f"exp.model: {exp.model!r} is not allowed here; give the Experiment "
                         "of an 'rnn' run")
    info = load_dataset(exp.dataset).info
    model = build_model("rnn", info, exp.hidden, exp.seed, DTYPES[exp.dtype])
    flat = torch.as_tensor(np.asarray(params), dtype=DTYPES[exp.dtype])
    numel = sum(p.numel() for p in model.parameters())
    if flat.numel() != numel:
        raise ValueError(f"params: has {flat.numel()} numbers, but the model of this "
                         f"Experiment has {numel}; pass the run's own final_params")
    nn.utils.vector_to_parameters(flat, model.parameters())
    assert isinstance(model, CharLSTM)
    return model.eval()


@torch.no_grad()
def bits_per_char_by_topic(params: np.ndarray | torch.Tensor, exp: Experiment
                           ) -> dict[str, float]:
    """Test bits per character of the trained model on each topic's sequences alone."""
    model = language_model(params, exp)
    data = load_dataset(exp.dataset)
    out = {}
    with single_threaded():
        for topic, name in enumerate(TOPIC_GROUPS):
            mine = data.y_test == topic
            loss, _ = batch_loss(data.info, model, data.x_test[mine], data.y_test[mine])
            out[name] = bits_per_char(float(loss))
    return out


@torch.no_grad()
def sample(params: np.ndarray | torch.Tensor, exp: Experiment, prompt: str = "The ",
           n: int = 200, temperature: float = 0.7, seed: int = 0) -> str:
    """``prompt`` followed by ``n`` characters the trained model writes, one at a time.

    Each character is drawn from softmax(logits / ``temperature``): a low temperature picks
    the likeliest characters (safe, repetitive), 1.0 samples the model's own probabilities.
    The draw is seeded, so the same call gives the same text.
    """
    if not prompt:
        raise ValueError("prompt: give at least one character to start from")
    if not temperature > 0:
        raise ValueError(f"temperature: {temperature!r} is not allowed; it must be > 0")
    model = language_model(params, exp)
    generator = torch.Generator().manual_seed(seed)
    out: list[int] = []
    with single_threaded():
        logits, state = model.step(torch.from_numpy(encode(prompt)).unsqueeze(0), None)
        for _ in range(n):
            probs = torch.softmax(logits[0, -1].double() / temperature, dim=-1)
            nxt = int(torch.multinomial(probs, 1, generator=generator))
            out.append(nxt)
            logits, state = model.step(torch.tensor([[nxt]]), state)
    return prompt + decode(out)


def bits_per_char_figure(results: Sequence[RunResult], baseline: float | None = None) -> Figure:
    """Test bits per character against steps, one line per run; the unigram ``baseline``
    dashed (computed when not given)."""
    from ddlkit.plots._style import new_figure, run_labels, run_line, style

    baseline = unigram_bits_per_char() if baseline is None else baseline
    with style():
        fig = new_figure(8, 4.8)
        ax = fig.add_subplot()
        for i, (r, label) in enumerate(zip(results, run_labels(list(results)))):
            rows = [row for row in r.history if row.get("test_loss") is not None]
            ax.plot([row["step"] for row in rows],
                    [bits_per_char(row["test_loss"]) for row in rows], label=label,
                    **run_line(i))
        ax.axhline(baseline, color="#444444", linestyle=(0, (4, 3)), linewidth=1.6,
                   label=f"unigram baseline ({baseline:.2f} bits)")
        ax.set_xlabel("step (one gradient per worker)")
        ax.set_ylabel("test bits per character")
        ax.set_title("bits per character by step (lower is better)")
        ax.legend(loc="upper right")
    return fig


def sample_widget(params: np.ndarray | torch.Tensor, exp: Experiment, prompt: str = "The ",
                  n: int = 200) -> Any:
    """A prompt box, a temperature slider and a button that shows :func:`sample`'s text."""
    import html

    import ipywidgets as w

    box = w.Text(value=prompt, description="prompt")
    temperature = w.FloatSlider(value=0.7, min=0.1, max=1.5, step=0.05,
                                description="temperature")
    seed = w.IntText(value=0, description="seed")
    button = w.Button(description="Write", icon="pencil", button_style="success")
    out = w.HTML()

    def write(_: object = None) -> None:
        try:
            text = sample(params, exp, box.value, n, temperature.value, seed.value)
        except ValueError as err:
            out.value = f"<b>Cannot write:</b> {html.escape(str(err))}"
            return
        out.value = f"<pre style='white-space: pre-wrap'>{html.escape(text)}</pre>"

    button.on_click(write)
    write()
    return w.VBox([w.HBox([box, temperature, seed, button]), out])
