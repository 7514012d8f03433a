"""Shards: which labels (or how many samples) each worker trains on."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from ddlkit.config import Experiment
from ddlkit.data import label_distribution, load_dataset, make_shards
from ddlkit.plots._style import message, new_figure, run_color, style

#: annotate every cell with its count when the heatmap has at most this many cells
ANNOTATE_CELLS = 200


def shards(labels: np.ndarray, shards: Sequence[np.ndarray], n_classes: int,
           title: str = "Label distribution across workers") -> Figure:
    """Heatmap of samples per worker (rows) and class (columns), from ``label_distribution``."""
    counts = label_distribution(labels, shards, n_classes)
    workers = counts.shape[0]
    with style():
        fig = new_figure(max(6.5, 1.5 + 0.62 * n_classes), max(3.2, 1.6 + 0.5 * workers))
        ax = fig.add_subplot()
        image = ax.imshow(counts, cmap="Blues", aspect="auto", vmin=0, interpolation="nearest")
        bar = fig.colorbar(image, ax=ax, pad=0.02)
        bar.set_label("samples (count)")
        ax.set_xticks(range(n_classes), [str(c) for c in range(n_classes)])
        ax.set_yticks(range(workers), [f"worker {k + 1} ({int(counts[k].sum())})"
                                       for k in range(workers)])
        ax.set_xlabel("class (label id)")
        ax.set_ylabel("worker (samples in shard)")
        ax.set_title(title)
        ax.grid(False)
        if counts.size <= ANNOTATE_CELLS:
            high = counts.max() if counts.size else 0
            for (k, c), v in np.ndenumerate(counts):
                ax.text(c, k, str(v), ha="center", va="center", fontsize=11,
                        color="white" if v > 0.55 * high else "#222222")
    return fig


def shards_for(experiment: Experiment) -> Figure:
    """The shards an experiment's workers will train on, built exactly as a worker does."""
    data = load_dataset(experiment.dataset)
    info = data.info
    labels = data.y_train.numpy() if info.is_classification else None
    parts = make_shards(experiment.sharding, labels, info.n_train, experiment.workers,
                        seed=experiment.seed, dirichlet_alpha=experiment.dirichlet_alpha,
                        classes_per_worker=experiment.classes_per_worker,
                        size_ratio=experiment.size_ratio)
    # the label without its mode (nor a mode's setting such as H): sharding does not depend
    # on them; every field valid in some mode is valid in sync, which labels only its name
    label = experiment.replace(mode="sync").label()
    title = f"Shards · {experiment.dataset} · {label.split(' · ', 1)[1]}"
    if parts is not None and labels is not None:
        return shards(labels, parts, info.n_classes, title=title)
    with style():
        fig = new_figure(8, 4.5)
        ax = fig.add_subplot()
        ax.set_title(title)
        if parts is None:
            message(ax, "stream: no fixed shards.\nEach batch is drawn from one shared "
                        f"stream of all {info.n_train} training samples,\nby whichever "
                        "worker asks next.")
            return fig
        sizes = [len(p) for p in parts]
        x = np.arange(len(parts))
        bars = ax.bar(x, sizes, 0.65, color=run_color(1), gid="shard sizes")
        ax.bar_label(bars, [str(s) for s in sizes], padding=2)
        ax.set_xticks(x, [f"worker {k + 1}" for k in x],
                      rotation=30 if len(parts) > 6 else 0)
        ax.set_ylabel("samples in shard (count)")
        ax.set_ylim(0, max(sizes) * 1.15)
        ax.grid(axis="x", visible=False)
        ax.text(0.01, 0.98, f"{experiment.dataset} is a regression dataset: no labels, "
                "so shard sizes only", transform=ax.transAxes, va="top", fontsize=11,
                color="#444444")
    return fig
