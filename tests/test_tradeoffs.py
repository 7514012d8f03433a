"""The trade-off table and the rules of thumb: on hand-made results, then on real runs."""
from __future__ import annotations

import math

import pytest

import ddlkit
from ddlkit.comm.accounting import RankTotals
from ddlkit.lessons import choosing_a_strategy as tradeoffs
from ddlkit.runtime.result import RunResult


def fake(mode: str = "sync", workers: int = 2, losses: tuple[float, ...] = (2.0, 1.0, 0.5),
         dt: float = 1.0, rank_bytes: tuple[int, ...] | None = None,
         staleness: tuple[int, ...] = (), delays: tuple[float, ...] = (),
         waits: tuple[float, ...] | None = None, msgs: tuple[int, ...] | None = None
         ) -> RunResult:
    """A RunResult with evaluations every ``dt`` seconds (from t = 5 s, as after start-up)
    and the given per-rank bytes, each split evenly into sent and received."""
    exp = ddlkit.Experiment(mode=mode, workers=workers, dataset="iris", steps=10,
                            eval_every=5, worker_delays=delays)
    world = exp.world_size
    rank_bytes = rank_bytes or tuple([1000] * world)
    waits = waits or tuple([0.0] * world)
    msgs = msgs or tuple([10] * world)
    ranks = [RankTotals(rank=r, role="server" if mode != "allreduce" and r == 0 else "worker",
                        bytes_sent=b // 2, bytes_received=b - b // 2, messages_sent=m,
                        compute_s=1.0, comm_s=0.0, wait_s=w)
             for r, (b, w, m) in enumerate(zip(rank_bytes, waits, msgs))]
    history = [{"step": 5 * i, "samples": 0, "t": 5.0 + dt * i, "train_loss": None,
                "test_loss": loss, "accuracy": 0.5 + 0.1 * i, "bytes": 100 * i}
               for i, loss in enumerate(losses)]
    return RunResult(config=exp, history=history, ranks=ranks, staleness=list(staleness))


# -- the per-run helpers ---------------------------------------------------------------------
def test_time_steps_and_bytes_to_loss() -> None:
    r = fake(losses=(2.0, 1.0, 0.5), dt=0.5)
    assert tradeoffs.time_to_loss(r, 1.0) == pytest.approx(0.5)  # from the first evaluation
    assert tradeoffs.steps_to_loss(r, 1.0) == 5
    assert tradeoffs.bytes_to_loss(r, 1.0) == 100
    assert tradeoffs.time_to_loss(r, 2.0) == 0.0
    assert tradeoffs.time_to_loss(r, 0.4) is None
    assert tradeoffs.steps_to_loss(r, 0.4) is None
    assert tradeoffs.bytes_to_loss(r, 0.4) is None


def test_hot_spot_and_server_share() -> None:
    ps = fake("sync", workers=3, rank_bytes=(600, 200, 200, 200))
    assert tradeoffs.hot_spot(ps) == pytest.approx(2.0)  # (N + 1) / 2
    assert tradeoffs.server_share(ps) == pytest.approx(0.5)
    ring = fake("allreduce", workers=3, rank_bytes=(300, 300, 300))
    assert tradeoffs.hot_spot(ring) == pytest.approx(1.0)
    assert tradeoffs.server_share(ring) is None


def test_staleness_and_waiting() -> None:
    assert tradeoffs.mean_staleness(fake("async", staleness=(0, 1, 2, 3))) == 1.5
    assert tradeoffs.mean_staleness(fake("sync")) is None
    r = fake("sync", workers=3, delays=(0.0, 0.0, 0.05), waits=(0.0, 3.0, 3.0, 0.0))
    slow, fast = tradeoffs.straggler_ranks(r)
    assert (slow, fast) == ([3], [1, 2])
    assert tradeoffs.wait_share(r, fast) == pytest.approx(0.75)
    assert tradeoffs.straggler_ranks(fake("allreduce", workers=2)) == ([], [0, 1])


# -- the table --------------------------------------------------------------------------------
def test_table_rows_text_and_html() -> None:
    runs = [fake("sync", workers=2, rank_bytes=(400, 200, 200)),
            fake("async", workers=2, staleness=(1, 1), losses=(2.0, 3.0, 3.0))]
    table = tradeoffs.build_table(runs, target=1.0)
    sync, asyn = table.rows
    assert (sync.mode, sync.workers, sync.straggler) == ("sync", 2, False)
    assert sync.time_to_target_s == 1.0 and asyn.time_to_target_s is None
    assert sync.final_accuracy == pytest.approx(0.7)
    assert table.find("async", False) == [asyn]
    text = table.to_text()
    assert "not reached" in text and "1.00" in text and "50%" in text
    page = table._repr_html_()
    assert page.startswith("<table>") and page.count("<tr>") == 3
    with pytest.raises(ValueError, match="target"):
        tradeoffs.build_table(runs, target=math.nan)
    with pytest.raises(ValueError, match="results"):
        tradeoffs.build_table([], target=1.0)


# -- the rules ----------------------------------------------------------------------------------
def test_rules_say_when_runs_are_missing() -> None:
    table = tradeoffs.build_table([fake("sync", rank_bytes=(400, 200, 200))], target=1.0)
    verdicts = {v.rule.key: v for v in tradeoffs.check_rules(table)}
    assert verdicts["no-hot-spot"].holds is None
    assert verdicts["async-beats-straggler"].holds is None
    assert verdicts["server-carries-n"].holds is True
    assert all(v.line()[0] in "✓✗?" for v in verdicts.values())


def test_rules_can_fail() -> None:
    """Each check can say no: async slower than sync, a lopsided ring, no staleness."""
    straggle = (0.0, 0.05)
    runs = [fake("sync", delays=straggle, dt=1.0, waits=(0.0, 0.1, 0.0)),
            fake("async", delays=straggle, dt=2.0, staleness=(0, 0)),
            fake("allreduce", rank_bytes=(900, 100)),
            fake("sync", losses=(2.0, 1.0, 0.6))]
    table = tradeoffs.build_table(runs, target=1.0)
    verdicts = {v.rule.key: v for v in tradeoffs.check_rules(table)}
    for key in ("async-beats-straggler", "no-hot-spot", "async-is-stale", "sync-waits",
                "straggler-sends-less", "sync-equals-allreduce"):
        assert verdicts[key].holds is False, verdicts[key]
    html = tradeoffs.verdicts_html(list(verdicts.values()))
    assert html.count("<ul>") == len({r.question for r in tradeoffs.RULES})


def test_every_rule_holds_on_real_runs() -> None:
    """The notebook-6 grid, shortened: the rules of thumb hold on real processes."""
    base = ddlkit.Experiment(workers=3, dataset="digits", steps=12, eval_every=3,
                             timeout_s=60.0)
    runs = [ddlkit.run(base.replace(mode=mode, lr=0.1 if mode == "async" else 0.3,
                                    worker_delays=delays))
            for delays in ((), (0.0, 0.0, 0.03)) for mode in ("sync", "async", "allreduce")]
    table = tradeoffs.build_table(runs, target=1.4)
    verdicts = tradeoffs.check_rules(table)
    assert all(v.holds for v in verdicts), "\n".join(v.line() for v in verdicts)
    for row in table.rows:
        assert row.time_to_target_s is not None, row
        assert (row.server_share is None) == (row.mode == "allreduce")
        if row.server_share is not None:
            assert row.server_share == pytest.approx(0.5, abs=1e-3)


def test_equal_delays_are_not_a_straggler_to_judge() -> None:
    slow = (0.05, 0.05)
    table = tradeoffs.build_table([fake("sync", delays=slow), fake("async", delays=slow,
                                                                   staleness=(1,))], 1.0)
    verdicts = {v.rule.key: v for v in tradeoffs.check_rules(table)}
    assert verdicts["sync-waits"].holds is None
    assert verdicts["straggler-sends-less"].holds is None
