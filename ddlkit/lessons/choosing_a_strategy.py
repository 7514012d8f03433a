"""The strategy trade-off table, built from real runs, and the rules of thumb it supports.

:func:`build_table` turns RunResults into one row per run: mode, workers, straggler,
wall time, steps and bytes to a target test loss, the server's share of the traffic,
the busiest rank against the average, mean staleness and the final score. :data:`RULES`
holds the rules of thumb for choosing a strategy as data: each rule names the question
it answers and carries a check, so :func:`check_rules` can say whether the runs at hand
bear it out, with the numbers as evidence.

Times count from a run's first evaluation (step 0), so process start-up is excluded.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from ddlkit.analysis.metrics import bytes_to_loss, steps_to_loss, time_to_loss
from ddlkit.modes import MODES
from ddlkit.runtime.result import RunResult
from ddlkit.units import format_bytes


def rank_bytes(result: RunResult) -> list[int]:
    """Bytes each rank moved (sent plus received), in rank order."""
    return [r.bytes_sent + r.bytes_received for r in result.ranks]


def hot_spot(result: RunResult) -> float:
    """The busiest rank's bytes over the mean rank's: 1.0 means traffic is spread evenly.

    A parameter server with N workers gives (N + 1)/2: the server moves as much as all
    workers together. A ring all-reduce gives about 1.
    """
    per_rank = rank_bytes(result)
    mean = sum(per_rank) / len(per_rank) if per_rank else 0.0
    return max(per_rank) / mean if mean else math.nan


def server_share(result: RunResult) -> float | None:
    """The server's share of all bytes moved (sent plus received, every rank); None
    without a server. Every message has the server at one end, so a PS gives 1/2: as
    much as all the workers together."""
    if not MODES[result.config.mode].has_server:
        return None
    per_rank = rank_bytes(result)
    total = sum(per_rank)
    return per_rank[0] / total if total else math.nan


def mean_staleness(result: RunResult) -> float | None:
    """Mean staleness of the applied gradients; None for modes without staleness."""
    return float(np.mean(result.staleness)) if result.staleness else None


def wait_share(result: RunResult, ranks: Sequence[int]) -> float:
    """Of the time the given ranks spent computing, communicating and waiting, the share
    spent waiting for a peer."""
    totals = [result.ranks[r] for r in ranks]
    busy = sum(t.compute_s + t.comm_s + t.wait_s for t in totals)
    return sum(t.wait_s for t in totals) / busy if busy else math.nan


def straggler_ranks(result: RunResult) -> tuple[list[int], list[int]]:
    """(ranks of workers with the largest delay, ranks of the other workers); with no
    delay every worker is in the second list."""
    mode = MODES[result.config.mode]
    workers = [r for r in range(result.config.world_size) if mode.role(r) == "worker"]
    delays = result.config.worker_delays
    if not any(delays):
        return [], workers
    slow = max(delays)
    return ([r for r in workers if delays[mode.worker_index(r)] == slow],
            [r for r in workers if delays[mode.worker_index(r)] != slow])


# -- the table -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TradeoffRow:
    """One run's line in the trade-off table (``result`` is the run itself)."""

    label: str
    mode: str
    workers: int
    straggler: bool
    time_to_target_s: float | None
    steps_to_target: int | None
    bytes_to_target: int | None
    server_share: float | None
    hot_spot: float
    mean_staleness: float | None
    final_test_loss: float | None
    final_accuracy: float | None
    result: RunResult = field(repr=False, compare=False)

    @classmethod
    def of(cls, result: RunResult, target: float) -> TradeoffRow:
        final = result.final
        return cls(label=result.config.label(), mode=result.config.mode,
                   workers=result.config.workers, straggler=any(result.config.worker_delays),
                   time_to_target_s=time_to_loss(result, target),
                   steps_to_target=steps_to_loss(result, target),
                   bytes_to_target=bytes_to_loss(result, target),
                   server_share=server_share(result), hot_spot=hot_spot(result),
                   mean_staleness=mean_staleness(result),
                   final_test_loss=final.get("test_loss"), final_accuracy=final.get("accuracy"),
                   result=result)


#: (heading, how to show a row's value) for every column of the table
COLUMNS: tuple[tuple[str, Callable[[TradeoffRow], str]], ...] = (
    ("mode", lambda r: r.mode),
    ("workers", lambda r: str(r.workers)),
    ("straggler", lambda r: "yes" if r.straggler else "no"),
    ("time to target (s)", lambda r: _opt(r.time_to_target_s, "{:.2f}")),
    ("steps to target", lambda r: _opt(r.steps_to_target, "{}")),
    ("bytes to target", lambda r: "not reached" if r.bytes_to_target is None
     else format_bytes(r.bytes_to_target)),
    ("server share of bytes", lambda r: _opt(r.server_share, "{:.0%}")),
    ("busiest / mean rank", lambda r: f"{r.hot_spot:.2f}×"),
    ("mean staleness", lambda r: _opt(r.mean_staleness, "{:.2f}")),
    ("final accuracy", lambda r: _opt(r.final_accuracy, "{:.1%}")),
)


def _opt(value: float | int | None, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


@dataclass(frozen=True)
class TradeoffTable:
    """Rows of :class:`TradeoffRow` for one target test loss; shows as HTML in a notebook."""

    target: float
    rows: tuple[TradeoffRow, ...]

    def find(self, mode: str, straggler: bool) -> list[TradeoffRow]:
        """The rows of one mode, with or without a straggler."""
        return [r for r in self.rows if r.mode == mode and r.straggler == straggler]

    def cells(self) -> list[list[str]]:
        """The table as strings: a header line, then one line per run."""
        return [[h for h, _ in COLUMNS]] + [[show(r) for _, show in COLUMNS] for r in self.rows]

    def to_text(self) -> str:
        """A fixed-width plain-text table."""
        cells = self.cells()
        widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
        lines = [f"target test loss {self.target:g}"]
        for k, line in enumerate(cells):
            lines.append("  ".join(c.rjust(w) if k and i >= 3 else c.ljust(w)
                                   for i, (c, w) in enumerate(zip(line, widths))))
        return "\n".join(lines)

    def to_html(self) -> str:
        """An HTML table (no pandas needed)."""
        head, *body = self.cells()
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in line) + "</tr>"
                      for line in body)
        caption = f"Trade-offs, target test loss {self.target:g}"
        return (f"<table><caption>{html.escape(caption)}</caption><thead><tr>{th}</tr></thead>"
                f"<tbody>{trs}</tbody></table>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        return self.to_text()


def build_table(results: Sequence[RunResult], target: float) -> TradeoffTable:
    """One row per run, in the order given, measured against ``target`` test loss."""
    if not results:
        raise ValueError("results: got no run; pass RunResults")
    if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
        raise ValueError(f"target: {target!r} is not allowed; a test loss > 0")
    return TradeoffTable(float(target), tuple(TradeoffRow.of(r, target) for r in results))


# -- the rules of thumb ------------------------------------------------------------------------
#: a check's answer: holds (True, False, or None when the runs it needs are missing), evidence
Outcome = tuple[Optional[bool], str]
Check = Callable[[TradeoffTable], Outcome]


@dataclass(frozen=True)
class Rule:
    """A rule of thumb for choosing a strategy: the question it answers, the advice,
    and a check of the advice against a trade-off table (True, False, or None when the
    table lacks the runs it needs) with the evidence as text."""

    key: str
    question: str
    advice: str
    check: Check = field(repr=False)


@dataclass(frozen=True)
class RuleVerdict:
    """What the runs say about one rule."""

    rule: Rule
    holds: bool | None
    evidence: str

    def line(self) -> str:
        mark = {True: "✓", False: "✗", None: "?"}[self.holds]
        return f"{mark} {self.rule.advice}  [{self.evidence}]"


#: a ratio this close to its formula counts as equal (per-rank bytes are exact counts;
#: ring chunks round by one element)
RATIO_TOL = 0.05
#: async must reach the target in at most this share of sync's time to "beat" it
BEATS = 0.8
#: sync and all-reduce test losses agree to this relative tolerance at every step
SAME_LOSS_RTOL = 1e-4


def _no_hot_spot(t: TradeoffTable) -> Outcome:
    rows = [r for r in t.rows if r.mode == "allreduce"]
    if not rows:
        return None, "no all-reduce run"
    worst = max(r.hot_spot for r in rows)
    return worst <= 1 + RATIO_TOL, f"all-reduce busiest/mean {worst:.3f}×"


def _server_is_n_workers(t: TradeoffTable) -> Outcome:
    rows = [r for r in t.rows if MODES[r.mode].has_server]
    if not rows:
        return None, "no parameter-server run"
    parts, ok = [], True
    for r in rows:
        per_rank = rank_bytes(r.result)
        ratio = per_rank[0] / (sum(per_rank[1:]) / r.workers)
        ok &= abs(ratio - r.workers) <= RATIO_TOL * r.workers
        parts.append(f"{r.mode}{' straggler' if r.straggler else ''}: {ratio:.2f}")
    return ok, "server / mean worker bytes: " + ", ".join(parts)


def _async_beats_sync(t: TradeoffTable) -> Outcome:
    sync, asyn = t.find("sync", True), t.find("async", True)
    if not sync or not asyn:
        return None, "needs sync and async runs with a straggler"
    ts, ta = sync[0].time_to_target_s, asyn[0].time_to_target_s
    if ts is None or ta is None:
        return False, f"target not reached (sync {ts}, async {ta})"
    return ta <= BEATS * ts, f"to target: async {ta:.2f} s, sync {ts:.2f} s ({ta / ts:.2f}×)"


def _async_is_stale(t: TradeoffTable) -> Outcome:
    rows = [r for r in t.rows if r.mode == "async"]
    if not rows:
        return None, "no async run"
    values = [r.mean_staleness or 0.0 for r in rows]
    return min(values) > 0, "mean staleness " + ", ".join(f"{v:.2f}" for v in values)


def _same_updates(a: RunResult, b: RunResult) -> bool:
    """Whether two runs differ only in mode, all-reduce implementation or delays (which
    change who waits, not the maths of a synchronous step)."""
    def core(r: RunResult) -> object:
        return r.config.replace(mode="sync", allreduce_impl="ring", worker_delays=())
    return core(a) == core(b)


def _sync_equals_allreduce(t: TradeoffTable) -> Outcome:
    pairs = [(s, a) for s in t.rows if s.mode == "sync" for a in t.rows
             if a.mode == "allreduce" and _same_updates(s.result, a.result)]
    if not pairs:
        return None, "needs sync and all-reduce runs of the same experiment"
    worst = 0.0
    for s, a in pairs:
        ls = {row["step"]: row["test_loss"] for row in s.result.history}
        la = {row["step"]: row["test_loss"] for row in a.result.history}
        if ls.keys() != la.keys():
            return False, "the runs evaluated at different steps"
        worst = max(worst, max(abs(ls[k] - la[k]) / abs(ls[k]) for k in ls))
    return worst <= SAME_LOSS_RTOL, f"largest relative test-loss difference {worst:.1e}"


def _sync_waits(t: TradeoffTable) -> Outcome:
    rows = t.find("sync", True)
    if not rows:
        return None, "no sync run with a straggler"
    _, fast = straggler_ranks(rows[0].result)
    if not fast:
        return None, "every worker is equally slow: there is no fast worker to wait"
    share = wait_share(rows[0].result, fast)
    return share > 0.5, f"fast sync workers waited {share:.0%} of their time"


def _straggler_sends_less(t: TradeoffTable) -> Outcome:
    rows = t.find("async", True)
    if not rows:
        return None, "no async run with a straggler"
    r = rows[0].result
    slow, fast = straggler_ranks(r)
    if not fast:
        return None, "every worker is equally slow"
    g_slow = np.mean([r.ranks[k].messages_sent for k in slow])
    g_fast = np.mean([r.ranks[k].messages_sent for k in fast])
    return bool(g_slow < 0.5 * g_fast), (f"gradients sent: straggler {g_slow:.0f}, "
                                         f"others {g_fast:.0f} on average")


RULES: tuple[Rule, ...] = (
    Rule("sync-equals-allreduce", "Do I need exactly the maths of one big batch?",
         "Sync PS and all-reduce compute identical updates: the same loss at every step.",
         _sync_equals_allreduce),
    Rule("server-carries-n", "Will the server's network link become the bottleneck?",
         "A parameter server moves N times the bytes of one worker; it grows with N.",
         _server_is_n_workers),
    Rule("no-hot-spot", "Will the server's network link become the bottleneck?",
         "All-reduce has no hot spot: every rank moves about the same bytes.",
         _no_hot_spot),
    Rule("sync-waits", "Is one worker much slower than the others (a straggler)?",
         "In sync, the fast workers spend most of their time waiting for the straggler.",
         _sync_waits),
    Rule("async-beats-straggler", "Is one worker much slower than the others (a straggler)?",
         "With a straggler, async reaches the target loss sooner in wall time than sync.",
         _async_beats_sync),
    Rule("async-is-stale", "Can my training tolerate stale gradients?",
         "Async pays with staleness: gradients arrive computed on older parameters.",
         _async_is_stale),
    Rule("straggler-sends-less", "Can my training tolerate stale gradients?",
         "In async a straggler simply contributes fewer gradients (its data counts less).",
         _straggler_sends_less),
)


def check_rules(table: TradeoffTable, rules: Sequence[Rule] = RULES) -> list[RuleVerdict]:
    """Each rule's verdict on ``table``, with its evidence."""
    return [RuleVerdict(rule, *rule.check(table)) for rule in rules]


def verdicts_html(verdicts: Sequence[RuleVerdict]) -> str:
    """The verdicts as an HTML list, grouped by the question each answers."""
    out, question = [], None
    for v in verdicts:
        if v.rule.question != question:
            if question is not None:
                out.append("</ul>")
            question = v.rule.question
            out.append(f"<p><b>{html.escape(question)}</b></p><ul>")
        mark = {True: "✓", False: "✗", None: "?"}[v.holds]
        out.append(f"<li>{mark} {html.escape(v.rule.advice)} "
                   f"<i>({html.escape(v.evidence)})</i></li>")
    if question is not None:
        out.append("</ul>")
    return "".join(out)
