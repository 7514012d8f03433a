"""The case-study models (``cnn`` on digits, ``rnn`` on text), their data, and the Iris bugs.

The reference test is the engine's (tests/test_reference.py) extended to the new models:
a distributed sync or all-reduce run must end with the parameters of single-process
large-batch training (:mod:`ddlkit.analysis.reference`, an ordinary ``nn.Module`` and
``torch.optim``). Expected facts about the text corpus are written out by hand (its
vocabulary, sequence length, six topics), not read back from the code under test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import ddlkit
from ddlkit import ConfigError, Experiment
from ddlkit.analysis.reference import large_batch_sgd
from ddlkit.cli import main
from ddlkit.data import DATASETS, load_dataset, make_shards
from ddlkit.data import text as text_data
from ddlkit.lessons import case_iris_corrected as iris_bugs
from ddlkit.lessons import case_language_model as textgen
from ddlkit.train.models import FlatModel, batch_loss, build_model, loss_fn
from ddlkit.train.trainer import Trainer

STEPS = 8
CASES = {
    "cnn": dict(dataset="digits", model="cnn", hidden=64),
    "rnn": dict(dataset="text", model="rnn", hidden=32),
}


def experiment(case: str, mode: str, workers: int = 3, **kw) -> Experiment:
    settings = dict(sharding="unbalanced", size_ratio=4.0, optimizer="momentum", lr=0.05,
                    batch_size=8, steps=STEPS, eval_every=STEPS, seed=5)
    settings.update(kw)
    return Experiment(mode=mode, workers=workers, **CASES[case], **settings)


# -- the distributed runs equal one process with the large batch ---------------------------
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sync", "allreduce"])
@pytest.mark.parametrize("case", ["cnn", "rnn"])
def test_distributed_run_equals_large_batch_training(case: str, mode: str) -> None:
    exp = experiment(case, mode)
    result = ddlkit.run(exp)
    expected = large_batch_sgd(exp)
    assert result.status == "ok" and result.final_params is not None
    assert result.final_params.shape == expected.shape
    assert np.abs(result.final_params - expected).max() < 1e-6
    moved = np.abs(expected - large_batch_sgd(exp.replace(steps=1))).max()
    assert moved > 1e-3, "the check needs parameters that actually changed"


@pytest.mark.slow
def test_topic_sharded_sync_with_adam_equals_large_batch_training() -> None:
    """Topic shards (label-skew on text) have very unequal sizes; Adam amplifies any error."""
    exp = experiment("rnn", "sync", workers=4, sharding="label-skew", classes_per_worker=1,
                     optimizer="adam", lr=0.01, dtype="float64")
    result = ddlkit.run(exp)
    assert np.abs(result.final_params - large_batch_sgd(exp)).max() < 1e-10


@pytest.mark.slow
def test_language_model_rows_report_test_loss_and_accuracy() -> None:
    exp = experiment("rnn", "async", workers=2, steps=4, eval_every=2)
    result = ddlkit.run(exp)
    assert [row["step"] for row in result.history] == [0, 2, 4]
    for row in result.history:
        assert row["test_loss"] > 0 and 0 <= row["accuracy"] <= 1


# -- bad combinations are refused before any process starts --------------------------------
@pytest.mark.parametrize(("kwargs", "names"), [
    (dict(model="cnn", dataset="iris"), ["'linear'", "'mlp'", "'digits'"]),
    (dict(model="cnn", dataset="linreg"), ["'linear'", "'mlp'", "'digits'"]),
    (dict(model="rnn", dataset="digits"), ["'cnn'", "'text'"]),
    (dict(model="rnn", dataset="iris"), ["'text'"]),
    (dict(model="mlp", dataset="text"), ["'rnn'"]),
    (dict(model="linear", dataset="text"), ["'rnn'"]),
])
def test_model_that_cannot_read_the_dataset_is_refused(
        kwargs: dict, names: list[str], no_process_started: None) -> None:
    with pytest.raises(ConfigError) as info:
        Experiment(**kwargs)
    assert info.value.field == "model"
    message = str(info.value)
    assert message.startswith(f"model={kwargs['model']!r} is not allowed")
    assert f"dataset {kwargs['dataset']!r}" in message
    for name in names:
        assert name in message


def test_cli_refuses_a_cnn_on_iris(capsys: pytest.CaptureFixture[str],
                                   no_process_started: None) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--model", "cnn", "--dataset", "iris", "--steps", "2"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--model" in err and "'digits'" in err


def test_text_topics_bound_classes_per_worker(no_process_started: None) -> None:
    ok = Experiment(dataset="text", model="rnn", sharding="label-skew", classes_per_worker=6)
    assert ok.classes_per_worker == 6
    with pytest.raises(ConfigError) as info:
        ok.replace(classes_per_worker=7)
    assert info.value.field == "classes_per_worker" and "from 1 to 6" in str(info.value)


def test_build_model_refuses_a_mismatch_too() -> None:
    with pytest.raises(ValueError, match="cnn"):
        build_model("cnn", DATASETS["iris"], 64, 0)
    with pytest.raises(ValueError, match="rnn"):
        build_model("rnn", DATASETS["digits"], 64, 0)
    with pytest.raises(ValueError, match="mlp"):
        build_model("mlp", DATASETS["text"], 64, 0)


# -- the text corpus -------------------------------------------------------------------------
def test_text_dataset_shape_vocabulary_and_topics() -> None:
    info = DATASETS["text"]
    data = load_dataset("text", torch.float64)
    assert info.is_text and info.is_classification
    assert info.vocab_size == 96 and info.n_features == 33 and info.n_classes == 6
    for x, y, n in ((data.x_train, data.y_train, info.n_train),
                    (data.x_test, data.y_test, info.n_test)):
        assert x.shape == (n, 33) and x.dtype == torch.int64
        assert int(x.min()) >= 0 and int(x.max()) < 96
        assert y.shape == (n,) and set(y.tolist()) == set(range(6))
    assert len(text_data.TOPIC_GROUPS) == 6


def test_vocabulary_is_newline_and_printable_ascii() -> None:
    assert sorted(text_data.VOCAB) == sorted("\n" + "".join(map(chr, range(32, 127))))
    assert len(set(text_data.VOCAB)) == 96


def test_test_text_is_not_training_text() -> None:
    """Pages repeat whole sections of other pages. Without dropping the repeats, 9% of the
    test sequences begin with 24 characters found in the training text; with it, 3%
    (stock phrases such as a traceback header recur in any real text)."""
    data = load_dataset("text")
    train = "\0".join(text_data.decode(row) for row in data.x_train.numpy())
    found = sum(text_data.decode(row[:24]) in train for row in data.x_test.numpy())
    assert found <= 0.05 * data.info.n_test


def test_text_is_readable_and_fixed() -> None:
    first = load_dataset("text").x_train
    again = load_dataset("text").x_train
    assert torch.equal(first, again)
    words = " ".join(text_data.decode(row) for row in first[:200].numpy())
    for word in (" the ", " of ", " is "):
        assert word in words


def test_encode_and_decode_round_trip() -> None:
    line = 'if x:\n    raise ValueError("no")'
    assert text_data.decode(text_data.encode(line)) == line
    with pytest.raises(ValueError, match="vocabulary"):
        text_data.encode("naïve")


def test_clean_pages_drops_repeated_paragraphs_and_rules() -> None:
    pages = {"a": "Title\n*****\n\nShared   paragraph.\n\nOnly in a — here.",
             "b": "Other\n=====\n\nShared   paragraph.\n\n+---+---+\n| x | y |\n+---+---+"}
    cleaned = text_data.clean_pages(pages)
    assert cleaned["a"] == "Title\nShared paragraph.\nOnly in a - here.\n"
    assert cleaned["b"] == "Other\n| x | y |\n"


def test_pages_not_listed_get_a_topic_by_name_or_title() -> None:
    assert text_data.topic_group("assert") == "statements"
    assert text_data.topic_group("bltin-new-object") == "built-in types"
    assert text_data.topic_group("match", 'The "match" statement\n***') == "statements"
    assert text_data.topic_group("bytes-literals", "Bytes literals\n***") == "lexical"
    assert text_data.topic_group("walrus", "Assignment expressions\n***") == "expressions"


def test_topic_shards_split_the_text_by_topic() -> None:
    data = load_dataset("text")
    topics = data.y_train.numpy()
    shards = make_shards("label-skew", topics, data.info.n_train, 6, seed=0,
                         classes_per_worker=1)
    assert [len(set(topics[s].tolist())) for s in shards] == [1] * 6


# -- the models -------------------------------------------------------------------------------
def test_cnn_reads_digits_as_images() -> None:
    info = DATASETS["digits"]
    model = build_model("cnn", info, hidden=64, seed=0)
    out = model(load_dataset("digits").x_train[:5])
    assert out.shape == (5, 10)
    # conv 1→8 (3×3) + conv 8→16 (3×3) + linear 64→10
    assert sum(p.numel() for p in model.parameters()) == (9 * 8 + 8) + (72 * 16 + 16) + 650
    conv = model.features[0]
    assert isinstance(conv, nn.Conv2d) and conv.in_channels == 1


def test_language_model_predicts_every_next_character() -> None:
    info = DATASETS["text"]
    model = build_model("rnn", info, hidden=32, seed=0)
    x = load_dataset("text").x_train[:4]
    logits = model(x[:, :-1])
    assert logits.shape == (4, 32, 96)
    loss, _ = batch_loss(info, model, x, torch.zeros(4, dtype=torch.int64))
    by_hand = -torch.log_softmax(logits, dim=-1).gather(2, x[:, 1:, None]).mean()
    assert torch.allclose(loss, by_hand, atol=1e-6)
    assert torch.allclose(loss_fn(info, logits, x[:, 1:]), by_hand, atol=1e-6)


def test_language_model_is_causal() -> None:
    """Changing a later character must not change the predictions before it."""
    model = build_model("rnn", DATASETS["text"], hidden=16, seed=0)
    x = load_dataset("text").x_test[:2, :-1].clone()
    before = model(x)
    x[:, 20] = (x[:, 20] + 1) % 96
    after = model(x)
    assert torch.equal(before[:, :20], after[:, :20])
    assert not torch.equal(before[:, 20:], after[:, 20:])


def test_flat_buffer_drives_the_lstm() -> None:
    flat = FlatModel(build_model("rnn", DATASETS["text"], hidden=16, seed=0))
    x = load_dataset("text").x_test[:2, :-1]
    before = flat.module(x).detach().clone()
    with torch.no_grad():
        flat.flat.mul_(0.5)
    assert not torch.allclose(before, flat.module(x))


def test_trainer_metrics_add_bits_per_char_for_text_only() -> None:
    text = Trainer(Experiment(dataset="text", model="rnn", hidden=16), worker_index=-1)
    row = text.metrics()
    assert set(row) == {"test_loss", "accuracy", "bits_per_char"}
    assert row["bits_per_char"] == pytest.approx(row["test_loss"] / math.log(2))
    assert row["bits_per_char"] == pytest.approx(math.log2(96), abs=0.3)  # untrained: uniform
    assert text.evaluate() == (row["test_loss"], row["accuracy"])
    digits = Trainer(Experiment(dataset="digits", model="cnn"), worker_index=-1)
    assert set(digits.metrics()) == {"test_loss", "accuracy"}


# -- measuring and sampling the language model ----------------------------------------------
def test_unigram_baseline_is_the_entropy_of_the_test_characters() -> None:
    ids = load_dataset("text").x_test[:, 1:].reshape(-1).numpy()
    counts = np.bincount(ids)
    p = counts[counts > 0] / ids.size
    expected = float(-(p * np.log2(p)).sum())
    assert textgen.unigram_bits_per_char() == pytest.approx(expected)
    assert 3.5 < expected < math.log2(96)
    assert textgen.bits_per_char(math.log(2) * 3.0) == pytest.approx(3.0)


def test_sample_is_seeded_and_starts_with_the_prompt() -> None:
    exp = Experiment(dataset="text", model="rnn", hidden=16)
    model = build_model("rnn", DATASETS["text"], 16, exp.seed)
    params = nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    a = textgen.sample(params, exp, prompt="The ", n=40, seed=1)
    assert a.startswith("The ") and len(a) == 44
    assert a == textgen.sample(params, exp, prompt="The ", n=40, seed=1)
    assert a != textgen.sample(params, exp, prompt="The ", n=40, seed=2)
    with pytest.raises(ValueError, match="params"):
        textgen.sample(params[:-1], exp)
    with pytest.raises(ValueError, match="rnn"):
        textgen.sample(params, Experiment())


def test_rebuilt_language_model_scores_like_the_trainer() -> None:
    exp = Experiment(dataset="text", model="rnn", hidden=16)
    trainer = Trainer(exp, worker_index=-1)
    rebuilt = textgen.language_model(trainer.model.flat.detach().numpy(), exp)
    data = load_dataset("text")
    with torch.no_grad():
        loss, _ = batch_loss(data.info, rebuilt, data.x_test, data.y_test)
    assert float(loss) == pytest.approx(trainer.metrics()["test_loss"], rel=1e-6)


# -- the Iris bugs -----------------------------------------------------------------------------
def test_article_loss_has_a_floor_and_the_fix_does_not() -> None:
    g = iris_bugs.gradient_by_margin(np.array([-10.0, 0.0, 30.0]))
    assert g["article_loss"][-1] == pytest.approx(math.log(1 + 2 / math.e), abs=1e-6)
    assert iris_bugs.loss_floor(3) == pytest.approx(0.5514, abs=1e-4)
    assert g["fixed_loss"][-1] < 1e-9


def test_article_loss_starves_confidently_wrong_samples() -> None:
    g = iris_bugs.gradient_by_margin(np.array([-8.0]))
    assert g["fixed_grad"][0] > 1.2   # p − onehot: about √(1 + 2·0.5²) ≈ 1.22
    assert g["article_grad"][0] < 1e-3


def test_article_loss_gradient_by_hand() -> None:
    """At margin 0 (p uniform) the article's gradient is J·(softmax(p) − y) = (1/K)·(… )."""
    g = iris_bugs.gradient_by_margin(np.array([0.0]))
    p = np.full(3, 1 / 3)
    jacobian = np.diag(p) - np.outer(p, p)
    inner = np.exp(p) / np.exp(p).sum() - np.array([1.0, 0.0, 0.0])
    assert g["article_grad"][0] == pytest.approx(np.linalg.norm(jacobian @ inner), rel=1e-9)


def test_plain_sgd_trains_worse_with_the_article_loss() -> None:
    article = iris_bugs.train_one_process("article", steps=60, optimizer="sgd", lr=0.1)
    fixed = iris_bugs.train_one_process("fixed", steps=60, optimizer="sgd", lr=0.1)
    assert article.test_loss[0] == fixed.test_loss[0]  # same start
    assert fixed.test_loss[-1] < 0.8 * article.test_loss[-1]
    assert min(article.reported_loss) > iris_bugs.loss_floor(3)


# -- the figures and the sampling widget -------------------------------------------------------
def test_figures_draw() -> None:
    from ddlkit.runtime.result import RunResult

    fig = iris_bugs.bug1_figure(curves=[iris_bugs.train_one_process("fixed", steps=3)])
    assert len(fig.axes) == 3
    run = RunResult(config=Experiment(dataset="text", model="rnn"),
                    history=[{"step": 0, "test_loss": 4.0}, {"step": 10, "test_loss": 2.5}])
    fig = textgen.bits_per_char_figure([run], baseline=4.7)
    (ax,) = fig.axes
    assert ax.get_ylabel() == "test bits per character"
    assert list(ax.lines[0].get_ydata()) == pytest.approx([4.0 / math.log(2), 2.5 / math.log(2)])


def test_sample_widget_writes_on_creation() -> None:
    exp = Experiment(dataset="text", model="rnn", hidden=16)
    model = build_model("rnn", DATASETS["text"], 16, exp.seed)
    params = nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    box = textgen.sample_widget(params, exp, prompt="Hi", n=10)
    shown = box.children[1].value
    assert shown.startswith("<pre") and "Hi" in shown
